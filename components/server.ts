import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { CaldavServerConfig } from "./config";
import { goDuration } from "./duration";
import { gated } from "./settle";

/** How the CalDAV server reaches its database (PG* and CALDAV_DB_SCHEMA); the dump uses the same. */
export interface ServerConnection {
    /** Host and port on the Docker network. */
    host: string;
    port: number;
    name: pulumi.Input<string>;
    user: pulumi.Input<string>;
    /** Secret. */
    password: pulumi.Input<string>;
    schema: string;
}

export interface CaldavServerArgs extends CaldavServerConfig {
    /** Image ID to run. */
    image: pulumi.Input<string>;
    network: { name: pulumi.Input<string>; alias: string; ip?: string };
    database: ServerConnection;
    apiKeys: { inbound: pulumi.Input<string>; outbound: pulumi.Input<string>; internal: pulumi.Input<string> };
    /** Origin of the Calendars backend as the server reaches it (its fixed IP). */
    callbackBaseUrl: string;
    /**
     * The container is created (or replaced) only once this resolves, and not at all
     * when it fails; the component's outputs then fail with it.
     */
    after?: pulumi.Output<unknown>;
}

const HTTP_PORT = 80;
export const CALLBACK_PATH = "/api/v1.0/caldav-scheduling-callback/";

// Upstream answers this path before any auth or database work, whatever
// CALDAV_BASE_URI is. php is the one client the php:*-apache image is sure to have.
export const HEALTH_CHECK = [
    "CMD", "php", "-r",
    `exit(trim((string) @file_get_contents("http://127.0.0.1:${HTTP_PORT}/caldav/healthz")) === "ok" ? 0 : 1);`,
];

// Without `|| true`: a failed schema init stops the container, the health
// check never passes and `pulumi up` fails, with the script's output in the log.
export const START_COMMAND = ["sh", "-c", "/usr/local/bin/init-database.sh && exec apache2-foreground"];

/** What to look at when the container never turns healthy (the provider's own error is generic). */
export function unhealthyMessage(containerName: string, timeoutSeconds: number): string {
    return `CalDAV container ${containerName} did not become healthy within ${timeoutSeconds} s (caldav.healthTimeoutSeconds). ` +
        `Look at \`docker logs ${containerName}\`: init-database.sh prints first (PostgreSQL unreachable, wrong password, ` +
        `missing privileges), then Apache and PHP. \`docker inspect --format '{{json .State.Health}}' ${containerName}\` ` +
        "shows the health check's own output. If the first start is only slow, raise caldav.healthTimeoutSeconds.";
}

/**
 * The error hook of the CalDAV container: when creating or updating it fails (in
 * practice: never healthy), say what to look at. Never asks for a retry, which
 * would only wait the whole health timeout again; quiet when a delete fails.
 */
export function reportUnhealthy(containerName: string, timeoutSeconds: number): pulumi.ErrorHookFunction {
    return async (failure) => {
        if (failure.failedOperation !== "delete") {
            await pulumi.log.error(unhealthyMessage(containerName, timeoutSeconds));
        }
        return false;
    };
}

/** The SabreDAV CalDAV server container. */
export class CaldavServer extends pulumi.ComponentResource {
    public readonly containerName: pulumi.Output<string>;
    /** ID of the container, known once it runs healthy (a new one on every replacement). */
    public readonly containerId: pulumi.Output<string>;
    /** Server origin on the Docker network, as the Calendars backend's CALDAV_URL wants it. */
    public readonly origin: string;
    /** URL of the DAV root on the Docker network. */
    public readonly caldavUrl: string;
    /** URL of the DAV root on the host, when published. */
    public readonly publicUrl?: string;
    public readonly callbackUrl: string;

    constructor(name: string, args: CaldavServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:Server", name, {}, opts);

        // The seed's variables, in its order (a stable order keeps previews quiet).
        const environment: Record<string, pulumi.Input<string>> = {
            PGHOST: args.database.host,
            PGPORT: String(args.database.port),
            PGDATABASE: args.database.name,
            PGUSER: args.database.user,
            PGPASSWORD: args.database.password,
            CALDAV_DB_SCHEMA: args.database.schema,
            CALDAV_BASE_URI: args.baseUri,
            CALDAV_INBOUND_API_KEY: args.apiKeys.inbound,
            CALDAV_OUTBOUND_API_KEY: args.apiKeys.outbound,
            CALDAV_INTERNAL_API_KEY: args.apiKeys.internal,
            CALDAV_CALLBACK_BASE_URL: args.callbackBaseUrl,
        };

        const container = new docker.Container(name, {
            name: args.containerName,
            image: args.image,
            command: START_COMMAND,
            envs: Object.entries(environment).map(([key, value]) => pulumi.interpolate`${key}=${value}`),
            networksAdvanced: [{
                name: args.network.name,
                aliases: [args.network.alias],
                ipv4Address: args.network.ip,
            }],
            ports: args.publish ? [{ internal: HTTP_PORT, external: args.publish.port, ip: args.publish.ip }] : [],
            healthcheck: {
                tests: HEALTH_CHECK,
                interval: goDuration(15),
                timeout: goDuration(5),
                retries: 3,
                // Covers the schema init, which waits up to 30 s for PostgreSQL.
                startPeriod: goDuration(60),
                startInterval: goDuration(2),
            },
            // `pulumi up` succeeds only once the health check passes.
            wait: true,
            waitTimeout: args.healthTimeoutSeconds,
            memory: args.memoryMb,
            // Memory plus swap: equal to the limit, so the limit is real (the engine
            // would otherwise allow as much swap again, and report it as a change).
            memorySwap: args.memoryMb,
            restart: "unless-stopped",
            destroyGraceSeconds: 30,
        }, {
            parent: this,
            dependsOn: args.after?.apply((): pulumi.Resource[] => []),
            // Fixed name (and maybe fixed IP): a replacement must remove the old container first.
            deleteBeforeReplace: true,
            // Needs Pulumi CLI >= 3.219. Never retries: that would only wait again.
            hooks: {
                onError: [new pulumi.ErrorHook(`${name}-unhealthy`, reportUnhealthy(args.containerName, args.healthTimeoutSeconds))],
            },
        });

        // Fail with `after` or a failed input (the container then never registers): what waits
        // on them (the stack's outputs, the deployment record) fails with them, never waits.
        const inputs = [args.image, args.network.name, ...Object.values(environment), ...(args.after ? [args.after] : [])];
        this.containerName = gated(inputs, container.name);
        this.containerId = gated(inputs, container.id);
        this.origin = `http://${args.network.alias}:${HTTP_PORT}`;
        this.caldavUrl = `${this.origin}${args.baseUri}`;
        this.publicUrl = args.publish ? `http://${args.publish.ip}:${args.publish.port}${args.baseUri}` : undefined;
        this.callbackUrl = `${args.callbackBaseUrl}${CALLBACK_PATH}`;
        this.registerOutputs({
            containerName: this.containerName,
            containerId: this.containerId,
            caldavUrl: this.caldavUrl,
            publicUrl: this.publicUrl,
            callbackUrl: this.callbackUrl,
        });
    }
}
