import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { BackupConfig } from "./config";
import { dockerEndpoint } from "./discovery";
import { clearLeftover, oneShotEngine } from "./leftover";
import type { ServerConnection } from "./server";
import { gated } from "./settle";

/** Where the tools containers see backup.location. */
export const BACKUP_DIR = "/backups";
/**
 * The server role's password, for libpq (PGPASSFILE), uploaded into the tools containers:
 * a file, not an environment variable, so that `docker inspect` does not show it.
 */
export const PGPASS_FILE = "/run/secrets/caldav.pgpass";

/** A .pgpass line for any host, port, database and user (`:` and `\` escaped). */
export function pgpassLine(password: string): string {
    return `*:*:*:*:${password.replace(/[\\:]/g, (c) => `\\${c}`)}\n`;
}

/** `lib.sh` followed by `<name>.sh` of components/backup-scripts, with BACKUP_DIR set. */
function backupScript(name: "dump" | "record" | "restore" | "list" | "verify"): string {
    const read = (file: string) => fs.readFileSync(path.join(__dirname, "backup-scripts", `${file}.sh`), "utf8");
    return `BACKUP_DIR=${BACKUP_DIR}\n${read("lib")}\n${read(name)}`;
}

/** The dump before an image change: see backup-scripts/dump.sh. */
export const DUMP_SCRIPT = backupScript("dump");
/** Records the image once the server runs healthy on the data: backup-scripts/record.sh. */
export const RECORD_SCRIPT = backupScript("record");
/** Restores a dump all or nothing (the rollback tool): backup-scripts/restore.sh. */
export const RESTORE_SCRIPT = backupScript("restore");
/** Lists a stack's dumps, newest first (the rollback tool): backup-scripts/list.sh. */
export const LIST_SCRIPT = backupScript("list");
/** Prints the schema's table count and state (the rollback tool): backup-scripts/verify.sh. */
export const VERIFY_SCRIPT = backupScript("verify");

/** The name of a dump file: sequence number, UTC time, 12 hex of the image that used the data. */
export const DUMP_FILE = /^caldav-\d{6}-\d{8}T\d{6}Z-([0-9a-f]{12}|unknown)\.dump$/;

/** A RunError: Pulumi prints its message without a stack trace. */
export class BackupError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "BackupError";
    }
}

/** What the tools containers share: image, network, the backups and the server's own connection. */
interface ToolsArgs {
    /** Image ID of backup.image. */
    tools: pulumi.Input<string>;
    network: pulumi.Input<string>;
    /** Docker volume name or host directory of backup.location. */
    location: { kind: "volume" | "hostPath"; source: pulumi.Input<string> };
    database: ServerConnection;
    /** The stack's directory in backup.location. */
    stack: string;
    /** The image the server is about to run (dump) or runs (record). */
    deploying: { id: pulumi.Input<string>; reference: pulumi.Input<string> };
}

/**
 * A one-shot container of the tools image that runs `script` to its end during the `up`;
 * `done` fails the deployment, with `failed`'s message, when the script exits non-zero.
 */
function runOnce(
    name: string,
    containerName: string,
    args: ToolsArgs,
    script: string,
    extraEnv: Record<string, pulumi.Input<string>>,
    failed: (exitCode: number, urn: string) => string,
    opts: pulumi.CustomResourceOptions,
): { containerName: pulumi.Output<string>; done: pulumi.Output<pulumi.Resource[]> } {
    const db = args.database;
    const environment: Record<string, pulumi.Input<string>> = {
        PGHOST: db.host,
        PGPORT: String(db.port),
        PGDATABASE: db.name,
        PGUSER: db.user,
        PGPASSFILE: PGPASS_FILE,
        CALDAV_DB_SCHEMA: db.schema,
        STACK: args.stack,
        ...extraEnv,
        // What changes with the image: a change runs the script again.
        DEPLOYING_IMAGE: args.deploying.id,
        DEPLOYING_REFERENCE: args.deploying.reference,
    };
    // The engine the docker provider talks to, read with the program's config.
    const endpoint = dockerEndpoint();
    const container = new docker.Container(name, {
        name: containerName,
        image: args.tools,
        command: ["sh", "-c", script],
        envs: Object.entries(environment).map(([key, value]) => pulumi.interpolate`${key}=${value}`),
        uploads: [{ file: PGPASS_FILE, content: pulumi.secret(pulumi.output(db.password).apply(pgpassLine)), permissions: "0600" }],
        networksAdvanced: [{ name: args.network }],
        volumes: [args.location.kind === "volume"
            ? { volumeName: args.location.source, containerPath: BACKUP_DIR }
            : { hostPath: args.location.source, containerPath: BACKUP_DIR }],
        // Runs once, to the end, during the `up`; it is not a service.
        attach: true,
        mustRun: false,
        restart: "no",
    }, {
        ...opts,
        // Fixed name: the old one goes before the next runs.
        deleteBeforeReplace: true,
        // One left by a killed `up` holds the name: removed once it has ended, and the create retried.
        hooks: { onError: [new pulumi.ErrorHook(`${name}-leftover`, clearLeftover(containerName, args.stack, () => oneShotEngine(endpoint)))] },
    });
    const inputs = [args.tools, args.network, args.location.source, db.password, ...Object.values(environment)];
    const done = gated(inputs, pulumi.all([container.exitCode, container.urn])).apply(([code, urn]) => {
        if (code !== undefined && code !== 0) {
            throw new BackupError(failed(code, urn));
        }
        return [];
    });
    return { containerName: gated(inputs, container.name), done };
}

export interface PreUpgradeDumpArgs extends Omit<BackupConfig, "enabled"> {
    /** The image the server is about to run: a new one is what triggers a dump. */
    deploying: { id: pulumi.Input<string>; reference: pulumi.Input<string> };
    /** Name of the one-shot dump container (fixed, so that operators find its logs). */
    containerName: string;
    network: pulumi.Input<string>;
    /** How the dump connects: the server's own role and database. */
    database: ServerConnection;
    /** The stack's name: its directory in backup.location, so that stacks may share one. */
    stack: string;
}

/**
 * A pg_dump of the CalDAV schema, taken by a one-shot container before the server runs
 * an image other than the one whose data the schema holds (a new image is a schema
 * migration at its first start), into backup.location. `done` resolves only once the
 * dump succeeded (or was not needed): the server waits for it, so a failed dump stops
 * the `up` before the running server is touched. Which image's data the schema holds is
 * recorded in the schema itself, once the server runs healthy (DeploymentRecord).
 */
export class PreUpgradeDump extends pulumi.ComponentResource {
    /** Resolves (to no dependency) once the dump succeeded; fails the deployment otherwise. */
    public readonly done: pulumi.Output<pulumi.Resource[]>;
    public readonly containerName: pulumi.Output<string>;
    /** What the DeploymentRecord after the server shares with the dump. */
    public readonly tools: ToolsArgs;

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
                // A new default name (caldav.containerName renamed) must not trade the dumps
                // for an empty volume: the volume keeps the name it was created with.
                ignoreChanges: ["name"],
            });
            source = volume.name;
        } else {
            source = args.location.path;
        }

        this.tools = {
            tools: tools.imageId,
            network: args.network,
            location: { kind: args.location.kind, source },
            database: args.database,
            stack: args.stack,
            deploying: args.deploying,
        };
        const dump = runOnce(`${name}-container`, args.containerName, this.tools, DUMP_SCRIPT, { KEEP: String(args.keep) },
            (code, urn) => dumpFailedMessage(args.containerName, code, urn), { parent: this });

        this.containerName = dump.containerName;
        this.done = dump.done;
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

export interface DeploymentRecordArgs {
    /** What the dump connects with, and the image the server now runs. */
    tools: ToolsArgs;
    /** Name of the one-shot container. */
    containerName: string;
    /**
     * ID of the server's container, healthy once created: the record runs after it, and
     * again whenever it is created anew (also with an image recorded before, as when an
     * unfinished upgrade is reverted).
     */
    serverId: pulumi.Input<string>;
}

/**
 * Once the server runs healthy on a new image, records in the schema's comment that the
 * schema now holds that image's data, and ends the unfinished upgrade the dump marked:
 * the next dump is labelled with this image, and one is taken only when the image changes.
 */
export class DeploymentRecord extends pulumi.ComponentResource {
    /** Resolves once recorded; fails the deployment otherwise. */
    public readonly done: pulumi.Output<pulumi.Resource[]>;

    constructor(name: string, args: DeploymentRecordArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:DeploymentRecord", name, {}, opts);
        const record = runOnce(`${name}-container`, args.containerName, args.tools, RECORD_SCRIPT, { SERVER_CONTAINER: args.serverId },
            (code) => `the CalDAV server runs healthy, but recording its image in the schema failed (exit code ${code}): ` +
                `\`docker logs ${args.containerName}\` says why; the next dump would be labelled with the previous image. ` +
                "Fix the cause and run pulumi up again.",
            { parent: this });
        this.done = record.done;
        this.registerOutputs({ containerName: record.containerName });
    }
}
