import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PostgresAdminConnection } from "./database";
import { goDuration } from "./duration";

export interface BundledPostgresArgs {
    /** Pinned official `postgres` image. */
    image: string;
    containerName: string;
    volumeName: string;
    network: pulumi.Input<string>;
    /** Name of the server on the network (what the CalDAV container connects to). */
    alias: string;
    port: number;
    adminUser: string;
    /** Host port, bound on 127.0.0.1 only, for the `@pulumi/postgresql` provider. */
    adminPort: number;
    adminHost: string;
}

// Mounted at the data directory itself (and PGDATA pointed there): images up to 17
// declare this path as a VOLUME, so mounting any parent would leave the data in an
// anonymous volume that disappears with the container.
const DATA_DIR = "/var/lib/postgresql/data";

/** Written once the admin password is the stack's; the health check waits for it. */
const PASSWORD_APPLIED = "/tmp/calendars-admin-password-applied";

/**
 * The admin password, as a root-only file the image reads (POSTGRES_PASSWORD_FILE, as the
 * official image does): not an environment variable, which `docker inspect` would show.
 */
export const PASSWORD_FILE = "/run/secrets/postgres-password";

// Runs the image's own entrypoint, then sets the admin role's password from
// POSTGRES_PASSWORD_FILE (read by psql itself, never on a command line), marks it applied
// only when that worked, and passes a stop on as PostgreSQL's fast shutdown.
const APPLY_ADMIN_PASSWORD = [
    `rm -f ${PASSWORD_APPLIED}`,
    "docker-entrypoint.sh postgres & pid=$!",
    "trap 'kill -INT $pid' INT TERM",
    'until pg_isready -q -h 127.0.0.1 -p "$PGPORT" -U "$POSTGRES_USER" -d postgres; do kill -0 $pid || exit 1; sleep 1; done',
    'if printf \'%s\\n\' \'\\set password `cat "$POSTGRES_PASSWORD_FILE"`\' "ALTER ROLE \\"$POSTGRES_USER\\" PASSWORD :\'password\';" | ' +
        'psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PGPORT" -U "$POSTGRES_USER" -d postgres; ' +
        `then touch ${PASSWORD_APPLIED}; else echo "could not set the admin password: the health check stays failing" >&2; fi`,
    // A trapped signal interrupts `wait`: keep waiting until PostgreSQL has shut down cleanly.
    "status=0; while kill -0 $pid 2>/dev/null; do wait $pid; status=$?; done; exit $status",
].join("\n");

/** A PostgreSQL server for a self-contained (dev) stack, standing in for the Messages one. */
export class BundledPostgres extends pulumi.ComponentResource {
    /** Connection for the provider; resolves once the server is healthy. */
    public readonly admin: PostgresAdminConnection;

    constructor(name: string, args: BundledPostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:BundledPostgres", name, {}, opts);

        const password = pulumi.secret(new random.RandomPassword(`${name}-admin`, {
            length: 40,
            special: false,
        }, { parent: this }).result);
        const image = new docker.RemoteImage(name, { name: args.image, keepLocally: true }, { parent: this });
        const volume = new docker.Volume(name, { name: args.volumeName }, {
            parent: this,
            // Holds the data: `pulumi destroy` leaves it; deleting it is an explicit `docker volume rm`.
            retainOnDelete: true,
            // A new default name (caldav.containerName renamed) must not trade the data for an
            // empty volume: the volume keeps the name it was created with.
            ignoreChanges: ["name"],
        });

        const container = new docker.Container(name, {
            name: args.containerName,
            image: image.imageId,
            envs: [
                pulumi.interpolate`POSTGRES_USER=${args.adminUser}`,
                `POSTGRES_PASSWORD_FILE=${PASSWORD_FILE}`,
                `PGDATA=${DATA_DIR}`,
                `PGPORT=${args.port}`,
            ],
            uploads: [{ file: PASSWORD_FILE, content: password, permissions: "0600" }],
            volumes: [{ volumeName: volume.name, containerPath: DATA_DIR }],
            networksAdvanced: [{ name: args.network, aliases: [args.alias] }],
            ports: [{ internal: args.port, external: args.adminPort, ip: "127.0.0.1" }],
            // The image applies the password only when it creates the cluster. The volume
            // outlives `pulumi destroy`, the generated password does not: the next stack would
            // be locked out of its own data. So every start sets the admin password to the
            // stack's own, over the socket (trusted locally), before the health check passes.
            command: ["sh", "-c", APPLY_ADMIN_PASSWORD],
            healthcheck: {
                // Over TCP: while the image initialises a new cluster, its temporary server
                // answers on the Unix socket only, and then restarts.
                tests: ["CMD-SHELL", `test -f ${PASSWORD_APPLIED} && pg_isready -h 127.0.0.1 -p ${args.port} -U ${args.adminUser} -d postgres`],
                interval: goDuration(5),
                timeout: goDuration(3),
                retries: 10,
                startPeriod: goDuration(10),
                startInterval: goDuration(1),
            },
            wait: true,
            waitTimeout: 120,
            restart: "unless-stopped",
            // A replacement or destroy stops the server (SIGINT: fast shutdown, a clean
            // checkpoint) before removing it, instead of killing it mid-write or mid-initdb;
            // so does a stop of the container or of the daemon.
            destroyGraceSeconds: 60,
            stopTimeout: 60,
        }, {
            parent: this,
            // Fixed container name: the old container must be gone before the new one starts.
            deleteBeforeReplace: true,
        });

        this.admin = {
            // Derived from the container so that the provider waits for a healthy server.
            host: container.id.apply(() => args.adminHost),
            port: args.adminPort,
            user: args.adminUser,
            password,
            sslmode: "disable",
        };
        this.registerOutputs({ containerName: container.name });
    }
}
