# Shared by dump.sh, record.sh and restore.sh, which run in the tools image
# (backup.image: sh, psql, pg_dump, pg_restore) with the server's own connection
# (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD), CALDAV_DB_SCHEMA, STACK and
# the backups mounted at BACKUP_DIR. Each script is this file followed by its own.
#
# Where things are:
# - the dumps of a stack: $BACKUP_DIR/$STACK/caldav-<seq>-<UTC time>-<image>.dump,
#   each with a .image file (ID and reference of the image that used the data);
#   <seq> (6 digits) orders them, never the clock;
# - which image's data the schema holds: the schema's own comment,
#   "calendars-caldav deployed=<image ID> reference=<reference>", plus
#   " pending=<dump file>" from the dump before an image change until the new
#   image runs. It lives with the data: a dump carries it and a restore brings it
#   back, whatever backup.location is.
set -eu
umask 077

fail() { # <exit code> <message>
    code=$1
    shift
    echo "$*" >&2
    exit "$code"
}

# psql: no psqlrc, stop at the first error, unaligned tuples only.
q() { psql -X -q -v ON_ERROR_STOP=1 -tA -v schema="$CALDAV_DB_SCHEMA" "$@"; }

table_count() {
    echo "SELECT count(*) FROM pg_tables WHERE schemaname = :'schema';" | q
}

# The schema's comment ("" when the schema or its comment does not exist).
deployment_state() {
    echo "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = :'schema';" | q
}

# field <state> <name>: the value of name=... in a state.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# set_state <state>: the schema's comment (the server's role owns the schema).
set_state() {
    echo "COMMENT ON SCHEMA :\"schema\" IS :'state';" | q -v state="$1" >/dev/null
}

# label <image ID>: the 12 hex digits that name a dump, or "unknown".
label() {
    case $1 in
    sha256:*) printf '%s\n' "$1" | cut -c8-19 ;;
    *) echo unknown ;;
    esac
}

stack_dir() { printf '%s/%s\n' "$BACKUP_DIR" "$STACK"; }

# The dumps in the current directory, oldest first (the glob sorts by sequence number).
dumps() {
    for f in caldav-[0-9][0-9][0-9][0-9][0-9][0-9]-*.dump; do
        if [ -f "$f" ]; then echo "$f"; fi
    done
}
