import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { BackupConfig } from "./config";
import type { ServerConnection } from "./server";

export interface PreUpgradeDumpArgs extends Omit<BackupConfig, "enabled"> {
    /** The image the server is about to run: a new one is what triggers a dump. */
    deploying: { id: pulumi.Input<string>; reference: pulumi.Input<string> };
    /** Name of the one-shot dump container (fixed, so that operators find its logs). */
    containerName: string;
    network: pulumi.Input<string>;
    /** How the dump connects: the server's own role and database. */
    database: ServerConnection;
}

/** A RunError: Pulumi prints its message without a stack trace. */
export class BackupError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "BackupError";
    }
}

/** Where the dump container sees backup.location. */
export const BACKUP_DIR = "/backups";
/**
 * Written after each run: the image the server is about to run (its ID, then the reference
 * it was deployed as, one per line), i.e. the one the next dump is taken from.
 */
export const DEPLOYED_MARKER = ".deployed-image";

// Runs in the tools image (sh, psql, pg_dump). Writes
//   caldav-<UTC time>-<12 hex of the image ID the data was used by>.dump   (pg_dump --format=custom)
//   caldav-<...>.image   (that image's ID and reference: what a rollback redeploys)
// atomically (write, then rename), keeps the newest KEEP dumps, and records the image
// being deployed for the next run. Nothing secret is printed; PGPASSWORD comes from env.
export const DUMP_SCRIPT = `set -eu
cd ${BACKUP_DIR} 2>/dev/null && touch .writable 2>/dev/null && rm -f .writable || {
    echo "backup.location is not a writable directory: no dump taken, nothing deployed" >&2; exit 3; }
tables=$(psql -X -v ON_ERROR_STOP=1 -tAc "SELECT count(*) FROM information_schema.tables WHERE table_schema = '$CALDAV_DB_SCHEMA'")
if [ "$tables" -gt 0 ]; then
    previous=$(cat ${DEPLOYED_MARKER} 2>/dev/null || echo unknown)
    label=$(printf '%s\\n' "$previous" | head -n 1 | sed 's/^sha256://' | cut -c1-12)
    name="caldav-$(date -u +%Y%m%dT%H%M%SZ)-$label"
    pg_dump --format=custom --schema="$CALDAV_DB_SCHEMA" --file="$name.dump.partial"
    mv "$name.dump.partial" "$name.dump"
    printf '%s\\n' "$previous" > "$name.image"
    echo "dumped $PGDATABASE schema $CALDAV_DB_SCHEMA (used by image $label) to backup.location as $name.dump"
    ls -1 caldav-*.dump | sort -r | tail -n +$((KEEP + 1)) | while read -r old; do
        rm -f "$old" "\${old%.dump}.image"
        echo "removed $old (backup.keep $KEEP)"
    done
else
    echo "schema $CALDAV_DB_SCHEMA has no tables yet: nothing to dump"
fi
printf '%s\\n%s\\n' "$DEPLOYING_IMAGE" "$DEPLOYING_REFERENCE" > ${DEPLOYED_MARKER}.partial
mv ${DEPLOYED_MARKER}.partial ${DEPLOYED_MARKER}`;

/**
 * A pg_dump of the CalDAV schema, taken by a one-shot container whenever the
 * image the server is about to run changes (a new image is a schema migration at
 * its first start), into backup.location. `done` resolves only once the dump
 * succeeded: the server waits for it, so a failed dump stops the `up` before the
 * running server is touched.
 */
export class PreUpgradeDump extends pulumi.ComponentResource {
    /** Resolves (to no dependency) once the dump succeeded; fails the deployment otherwise. */
    public readonly done: pulumi.Output<pulumi.Resource[]>;
    public readonly containerName: pulumi.Output<string>;

    constructor(name: string, args: PreUpgradeDumpArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:PreUpgradeDump", name, {}, opts);

        const tools = new docker.RemoteImage(`${name}-tools`, {
            name: args.image,
            keepLocally: true,
        }, { parent: this });

        let source: pulumi.Input<string>;
        if (args.location.kind === "volume") {
            const volume = new docker.Volume(`${name}-volume`, { name: args.location.name }, {
                parent: this,
                // Holds the dumps: `pulumi destroy` forgets the volume, never deletes it.
                retainOnDelete: true,
            });
            source = volume.name;
        } else {
            source = args.location.path;
        }

        const db = args.database;
        const environment: Record<string, pulumi.Input<string>> = {
            PGHOST: db.host,
            PGPORT: String(db.port),
            PGDATABASE: db.name,
            PGUSER: db.user,
            PGPASSWORD: pulumi.secret(db.password),
            CALDAV_DB_SCHEMA: db.schema,
            KEEP: String(args.keep),
            // What changes with the image: a change triggers a new dump.
            DEPLOYING_IMAGE: args.deploying.id,
            DEPLOYING_REFERENCE: args.deploying.reference,
        };
        const dump = new docker.Container(`${name}-container`, {
            name: args.containerName,
            image: tools.imageId,
            command: ["sh", "-c", DUMP_SCRIPT],
            envs: Object.entries(environment).map(([key, value]) => pulumi.interpolate`${key}=${value}`),
            networksAdvanced: [{ name: args.network }],
            volumes: [args.location.kind === "volume"
                ? { volumeName: source, containerPath: BACKUP_DIR }
                : { hostPath: source, containerPath: BACKUP_DIR }],
            // Runs once, to the end, during the `up`; it is not a service.
            attach: true,
            mustRun: false,
            restart: "no",
        }, {
            parent: this,
            // Fixed name: the old one goes before the next runs.
            deleteBeforeReplace: true,
        });

        this.containerName = dump.name;
        this.done = pulumi.all([dump.exitCode, dump.urn]).apply(([code, urn]) => {
            if (code !== undefined && code !== 0) {
                throw new BackupError(dumpFailedMessage(args.containerName, code, urn));
            }
            return [];
        });
        this.registerOutputs({ containerName: this.containerName });
    }
}

/** What to do when the dump before an image change failed. */
export function dumpFailedMessage(containerName: string, exitCode: number, urn: string): string {
    return `the dump before the image change failed (exit code ${exitCode}), so the CalDAV server was not replaced: ` +
        `it still runs the previous image. \`docker logs ${containerName}\` says why (backup.location not writable, ` +
        `PostgreSQL unreachable, pg_dump of backup.image older than the server). Fix the cause, then take the dump ` +
        `again and deploy with: pulumi up --replace '${urn}'. To deploy without a dump, set backup.enabled false.`;
}
