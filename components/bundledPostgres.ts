import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PostgresAdminConnection } from "./database";

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
        });

        const container = new docker.Container(name, {
            name: args.containerName,
            image: image.imageId,
            envs: [
                pulumi.interpolate`POSTGRES_USER=${args.adminUser}`,
                pulumi.interpolate`POSTGRES_PASSWORD=${password}`,
                `PGDATA=${DATA_DIR}`,
                `PGPORT=${args.port}`,
            ],
            volumes: [{ volumeName: volume.name, containerPath: DATA_DIR }],
            networksAdvanced: [{ name: args.network, aliases: [args.alias] }],
            ports: [{ internal: args.port, external: args.adminPort, ip: "127.0.0.1" }],
            healthcheck: {
                // Over TCP: while the image initialises a new cluster, its temporary server
                // answers on the Unix socket only, and then restarts.
                tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", String(args.port), "-U", args.adminUser, "-d", "postgres"],
                interval: "5s",
                timeout: "3s",
                retries: 10,
                startPeriod: "10s",
                startInterval: "1s",
            },
            wait: true,
            waitTimeout: 120,
            restart: "unless-stopped",
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
