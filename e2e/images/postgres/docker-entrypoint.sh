#!/bin/sh
# Entry point of the stand-in postgres image: the parts of the official image's
# contract that this project relies on (POSTGRES_USER, POSTGRES_PASSWORD or
# POSTGRES_PASSWORD_FILE, POSTGRES_DB, PGDATA, PGPORT, initdb scripts), written for
# Debian's packages.
set -eu
# As in the official image: options alone are for postgres; only `postgres` sets up and
# runs the server, any other command (sh, psql, pg_dump) runs as it is.
case "${1:-postgres}" in
-*) set -- postgres "$@" ;;
postgres) ;;
*) exec "$@" ;;
esac
# As the official image: the password from POSTGRES_PASSWORD, or read from the file
# POSTGRES_PASSWORD_FILE names (read here, as root, before dropping privileges).
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -z "${POSTGRES_PASSWORD:-}" ] || { echo "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both" >&2; exit 1; }
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set (as with the official postgres image)}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
PGPORT=${PGPORT:-5432}
export PGDATA PGPORT

as_postgres() { runuser -u postgres -- "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising a new cluster in $PGDATA (superuser $POSTGRES_USER)"
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # Setup runs on the socket only, as the official image does.
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $PGPORT" -w start >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        as_postgres psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
        *.sql) echo "running $f"; as_postgres psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
        *.sh)
            echo "running $f"
            # shellcheck disable=SC1090 # init scripts mounted by the user
            . "$f"
            ;;
        esac
    done
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "cluster initialised"
fi

[ $# -gt 0 ] && shift
# exec without an intermediate process (as gosu does in the official image): signals
# reach PostgreSQL itself (TERM: smart shutdown, INT: fast shutdown).
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -p "$PGPORT" -c listen_addresses='*' "$@"
