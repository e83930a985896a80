# The dump before an image change (PreUpgradeDump). Also needs KEEP, DEPLOYING_IMAGE
# and DEPLOYING_REFERENCE (the image the server is about to run). Exit codes: 0 dumped
# or nothing to dump; 3 backup.location unusable; other: psql/pg_dump failed. On any
# failure the server is not replaced (the program waits for this container).
dir=$(stack_dir)
if ! { mkdir -p "$dir" && cd "$dir" && touch .writable && rm -f .writable; } 2>/dev/null; then
    fail 3 "backup.location is not a writable directory ($dir): no dump taken, nothing deployed"
fi
# What an interrupted run left: never a dump a rollback could pick.
rm -f ./*.partial

tables=$(table_count)
state=$(deployment_state)
deployed=$(field "$state" deployed)
reference=$(field "$state" reference)
pending=$(field "$state" pending)
if [ -z "$deployed" ] && [ -f "$BACKUP_DIR/.deployed-image" ]; then
    # Written by versions before the state moved into the schema.
    deployed=$(sed -n 1p "$BACKUP_DIR/.deployed-image")
    reference=$(sed -n 2p "$BACKUP_DIR/.deployed-image")
fi

if [ "$tables" -eq 0 ]; then
    echo "schema $CALDAV_DB_SCHEMA has no tables yet: nothing to dump"
    exit 0
fi
if [ -n "$pending" ]; then
    echo "the upgrade from image $(label "$deployed") has not finished: $pending holds the data from before it;" \
        "no new dump, none removed (the state clears once an image has run healthy on this data)"
    exit 0
fi
if [ "$deployed" = "$DEPLOYING_IMAGE" ]; then
    echo "schema $CALDAV_DB_SCHEMA already holds the data of image $(label "$deployed"): no image change, nothing to dump"
    exit 0
fi

last=$(dumps | tail -n 1 | cut -c8-13 | sed 's/^0*//')
name=$(printf 'caldav-%06d-%s-%s' $((${last:-0} + 1)) "$(date -u +%Y%m%dT%H%M%SZ)" "$(label "$deployed")")
pg_dump --format=custom --schema="$CALDAV_DB_SCHEMA" --file="$name.dump.partial"
# The whole archive reads back (not only its table of contents).
pg_restore --file=/dev/null "$name.dump.partial" ||
    fail 4 "the dump just taken does not read back with pg_restore: no dump kept, nothing deployed"
printf '%s\n%s\n' "${deployed:-unknown}" "${reference:-unknown}" >"$name.image.partial"
mv "$name.image.partial" "$name.image"
mv "$name.dump.partial" "$name.dump"
set_state "calendars-caldav deployed=${deployed:-unknown} reference=${reference:-unknown} pending=$name.dump"
echo "dumped $PGDATABASE schema $CALDAV_DB_SCHEMA (data of image $(label "$deployed")) to $STACK/$name.dump in backup.location"

# The newest KEEP dumps stay, by sequence number: the one just taken is the newest.
dumps | sort -r | tail -n +$((KEEP + 1)) | while read -r old; do
    [ "$old" != "$name.dump" ] || continue
    rm -f "$old" "${old%.dump}.image"
    echo "removed $STACK/$old (backup.keep $KEEP)"
done
