# Restores DUMP (a file name in the stack's directory) into the schema: MODE=check only
# proves the dump restorable; MODE=apply replaces the schema with it in one transaction.
# All or nothing: the whole archive is turned into SQL before the database is touched,
# and the drop, the restore and the state are one transaction, so any failure leaves
# the schema as it was. Exit codes: 4 the dump cannot be used (nothing changed);
# 5 the restore failed and was rolled back (nothing changed); 6 restored, but the
# schema has no table afterwards.
cd "$(stack_dir)" 2>/dev/null || fail 4 "no dumps of stack $STACK in backup.location: nothing was changed"
if [ ! -f "$DUMP" ] || [ ! -f "${DUMP%.dump}.image" ]; then
    fail 4 "$DUMP or its .image file is missing: nothing was changed"
fi
image=$(sed -n 1p "${DUMP%.dump}.image")
reference=$(sed -n 2p "${DUMP%.dump}.image")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! pg_restore --file="$work/restore.sql" "$DUMP" 2>"$work/error"; then
    fail 4 "$DUMP cannot be read by the tools image ($(pg_restore --version)): $(head -c 500 "$work/error"). Nothing was changed."
fi
grep -q '^CREATE TABLE ' "$work/restore.sql" ||
    fail 4 "$DUMP holds no table of schema $CALDAV_DB_SCHEMA: nothing was changed"
if [ "$MODE" = check ]; then
    echo "$DUMP reads back whole ($(grep -c '^CREATE TABLE ' "$work/restore.sql") tables)"
    exit 0
fi

printf '%s\n' 'SET client_min_messages = warning;' 'DROP SCHEMA IF EXISTS :"schema" CASCADE;' >"$work/drop.sql"
echo "COMMENT ON SCHEMA :\"schema\" IS :'state';" >"$work/state.sql"
if ! q --single-transaction -v state="calendars-caldav deployed=$image reference=$reference" \
    -f "$work/drop.sql" -f "$work/restore.sql" -f "$work/state.sql" >/dev/null 2>"$work/error"; then
    fail 5 "restoring $DUMP failed and was rolled back, nothing was changed: $(head -c 500 "$work/error")"
fi
tables=$(table_count)
[ "$tables" -gt 0 ] || fail 6 "restored $DUMP, but schema $CALDAV_DB_SCHEMA has no table"
echo "restored $DUMP: $tables tables in schema $CALDAV_DB_SCHEMA, data of image $(label "$image")"
