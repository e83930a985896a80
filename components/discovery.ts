import * as http from "http";
import * as https from "https";
import * as pulumi from "@pulumi/pulumi";
import { cidrContains, parseCidr, parseIpv4 } from "./ipv4";

/** A container on a Docker network: the names Docker DNS answers for it there, and its address. */
export interface NetworkMember {
    container: string;
    names: string[];
    ip: string;
}

/** Read-only view of the Docker Engine, as much as the lookup needs. */
export interface DockerDirectory {
    /** The containers attached to `network`; undefined when no such network exists. */
    members(network: string): Promise<NetworkMember[] | undefined>;
}

/** A RunError: Pulumi prints its message without a stack trace. */
export class DiscoveryError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "DiscoveryError";
    }
}

const DEFAULT_ENDPOINT = "unix:///var/run/docker.sock";
const LOOPBACK = parseCidr("127.0.0.0/8")!;

/** The Docker Engine the docker provider talks to: its `docker:host` config, else DOCKER_HOST, else the local socket. */
export function dockerEndpoint(): string {
    return new pulumi.Config("docker").get("host") || process.env.DOCKER_HOST || DEFAULT_ENDPOINT;
}

/**
 * Why an address of a container on a bridge network of `endpoint` cannot be
 * reached from the machine running `pulumi`; undefined when it can (Linux, and
 * the engine on this machine: its bridges are interfaces of this host).
 */
export function unreachableReason(endpoint: string, platform: string = process.platform): string | undefined {
    if (platform !== "linux") {
        return `pulumi runs on ${platform}, where Docker keeps container networks inside a VM`;
    }
    let url: URL;
    try {
        url = new URL(endpoint);
    } catch {
        return `the Docker host ${JSON.stringify(endpoint)} is not a URL`;
    }
    if (url.protocol === "unix:") {
        return undefined;
    }
    const ip = parseIpv4(url.hostname);
    const local = ["localhost", "[::1]"].includes(url.hostname) || (ip !== undefined && cidrContains(LOOPBACK, ip));
    return ["tcp:", "http:", "https:"].includes(url.protocol) && local
        ? undefined
        : `the Docker host is ${endpoint}, not this machine: its container addresses are not reachable from here`;
}

/** A client of the Engine API at `endpoint` (dockerode) that keeps no connection open. */
export function dockerClient(endpoint: string): import("dockerode") {
    // Loaded only when the engine is asked something directly.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Docker = require("dockerode") as typeof import("dockerode");
    const url = new URL(endpoint);
    const tls = url.protocol === "https:" || (endpoint === process.env.DOCKER_HOST && !!process.env.DOCKER_TLS_VERIFY);
    // A few requests, once: no connection is kept open after them.
    const agent = tls ? new https.Agent({ keepAlive: false }) : new http.Agent({ keepAlive: false });
    // docker-modem takes `agent`; the typings (for dockerode 4) do not list it.
    const options: import("dockerode").DockerOptions & { agent: http.Agent } = url.protocol === "unix:"
        ? { socketPath: url.pathname, agent }
        : endpoint === process.env.DOCKER_HOST
            ? { agent } // and DOCKER_HOST with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, as docker-modem reads them
            : { host: url.hostname, port: Number(url.port) || 2375, protocol: tls ? "https" : "http", agent };
    return new Docker(options);
}

/** A DockerDirectory over the Engine API at `endpoint`, with dockerode. */
export function dockerDirectory(endpoint: string): DockerDirectory {
    const client = dockerClient(endpoint);
    return {
        async members(network) {
            let info: import("dockerode").NetworkInspectInfo;
            try {
                info = await client.getNetwork(network).inspect();
            } catch (error) {
                if ((error as { statusCode?: number }).statusCode === 404) {
                    return undefined;
                }
                throw error;
            }
            return Promise.all(Object.entries(info.Containers ?? {}).map(async ([id, entry]) => {
                const container = await client.getContainer(id).inspect();
                const settings = (container.NetworkSettings.Networks[info.Name] ?? {}) as { Aliases?: string[] | null; DNSNames?: string[] | null };
                const name = entry.Name.replace(/^\//, "");
                // DNSNames (Engine API 1.44+) is exactly what Docker DNS answers for on this network.
                const names = settings.DNSNames ?? [name, ...(settings.Aliases ?? [])];
                return { container: name, names, ip: entry.IPv4Address.split("/")[0] };
            }));
        },
    };
}

export interface ContainerAddressArgs {
    /** Docker network the name is looked up on. */
    network: string;
    /** Name the CalDAV container uses (postgres.host). */
    name: string;
    /** Docker Engine endpoint (see dockerEndpoint). */
    endpoint: string;
    directory?: DockerDirectory;
    platform?: string;
}

const USE_ADMIN_HOST =
    "Set postgres.adminHost (and postgres.adminPort) to where this machine reaches that PostgreSQL instead " +
    "(a published port, an SSH tunnel, a managed database's address).";

/**
 * The IPv4 address, on `network`, of the one container Docker DNS answers
 * `name` for there: how the machine running `pulumi`, on the Docker host,
 * reaches a PostgreSQL that publishes no port. Read-only: it only inspects.
 */
export async function containerAddress(args: ContainerAddressArgs): Promise<string> {
    const { network, name, endpoint } = args;
    const unreachable = unreachableReason(endpoint, args.platform);
    if (unreachable !== undefined) {
        throw new DiscoveryError(
            `postgres.adminHost is not set, so pulumi would reach postgres.host ${name} at its address on network ${network}, ` +
                `but ${unreachable}. ${USE_ADMIN_HOST}`,
        );
    }
    if (parseIpv4(name) !== undefined) {
        return name;
    }
    const directory = args.directory ?? dockerDirectory(endpoint);
    let members: NetworkMember[] | undefined;
    try {
        members = await directory.members(network);
    } catch (error) {
        throw new DiscoveryError(
            `cannot look up postgres.host ${name} on network ${network}: the Docker Engine at ${endpoint} did not answer ` +
                `(${(error as Error).message}). Start it, or point docker:host / DOCKER_HOST at it. ${USE_ADMIN_HOST}`,
        );
    }
    if (members === undefined) {
        throw new DiscoveryError(
            `cannot look up postgres.host ${name}: network.name ${network} is not a network on the Docker host ${endpoint}. ` +
                "Start Messages first, or set network.name to its network.",
        );
    }
    const wanted = name.toLowerCase();
    const matches = members.filter((m) => m.names.some((n) => n.toLowerCase() === wanted));
    const listed = (list: NetworkMember[]) => list.map((m) => `${m.container} (${m.ip})`).join(", ");
    if (matches.length === 0) {
        throw new DiscoveryError(
            `postgres.host ${name} is the name of no container on network ${network}` +
                (members.length > 0 ? ` (there: ${listed(members)})` : " (it has no containers)") +
                ". Start Messages' PostgreSQL, or set postgres.host to the name it has on that network. " +
                "If PostgreSQL is not a container on that network, " + USE_ADMIN_HOST.charAt(0).toLowerCase() + USE_ADMIN_HOST.slice(1),
        );
    }
    if (matches.length > 1) {
        throw new DiscoveryError(
            `postgres.host ${name} names ${matches.length} containers on network ${network}: ${listed(matches)}. ` +
                "Docker DNS answers with either, so the CalDAV server could reach the wrong one: " +
                "give postgres.host a name only Messages' PostgreSQL has (e.g. its container name).",
        );
    }
    const [match] = matches;
    if (parseIpv4(match.ip) === undefined) {
        // An empty host would make the provider connect to localhost, with the admin password.
        throw new DiscoveryError(
            `postgres.host ${name} is container ${match.container} on network ${network}, but it has no IPv4 address there ` +
                `(${match.ip ? `"${match.ip}"` : "none"}: an IPv6-only network, or the container is not running). ${USE_ADMIN_HOST}`,
        );
    }
    return match.ip;
}
