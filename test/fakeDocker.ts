// A Docker Engine API stand-in on a unix socket, answering the two read-only
// calls the PostgreSQL address lookup makes (network and container inspect),
// so that unit tests run the real client (dockerode) against a chosen world.
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";

export interface FakeContainer {
    name: string;
    aliases?: string[];
    ip: string;
    /** Answer as an engine older than API 1.44, without DNSNames. */
    legacy?: boolean;
}

/** Network name -> the containers attached to it. */
export type DockerWorld = Record<string, FakeContainer[]>;

/** A standard Messages installation: its PostgreSQL answers to the compose service name. */
export const MESSAGES_WORLD: DockerWorld = {
    messages_internal: [
        { name: "messages-postgresql-1", aliases: ["postgresql"], ip: "172.29.0.2" },
        { name: "messages-backend-1", aliases: ["backend"], ip: "172.29.0.3" },
    ],
};

export interface FakeDocker {
    /** unix:// URL of the socket, for docker:host or DOCKER_HOST. */
    endpoint: string;
    /** "METHOD path" of every request, in order. */
    requests: string[];
    /** The `Connection` header of every request, in order ("close" from a client that keeps no connection open). */
    connectionHeaders: (string | undefined)[];
    close(): Promise<void>;
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
}

/**
 * Starts an engine answering about `world`. With `keepProcessAlive: false`, it
 * neither keeps the process running nor needs closing: its socket is removed
 * when the process exits.
 */
export async function startFakeDocker(world: DockerWorld, { keepProcessAlive = true } = {}): Promise<FakeDocker> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "caldav-fake-docker-"));
    const socket = path.join(dir, "docker.sock");
    const requests: string[] = [];
    const connectionHeaders: (string | undefined)[] = [];
    const containers = new Map<string, { network: string; member: FakeContainer }>(Object.entries(world).flatMap(([network, members]) =>
        members.map((member) => [`id-${member.name}`, { network, member }] as const)));

    const server = http.createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        connectionHeaders.push(req.headers.connection);
        const url = (req.url ?? "").replace(/^\/v[\d.]+/, "").split("?")[0];
        const network = /^\/networks\/([^/]+)$/.exec(url);
        const container = /^\/containers\/([^/]+)\/json$/.exec(url);
        if (req.method !== "GET") {
            reply(res, 405, { message: "read-only fake" });
        } else if (network) {
            const name = decodeURIComponent(network[1]);
            const members = world[name];
            if (members === undefined) {
                reply(res, 404, { message: `network ${name} not found` });
                return;
            }
            reply(res, 200, {
                Name: name,
                Id: `id-${name}`,
                Containers: Object.fromEntries(members.map((m) => [`id-${m.name}`, { Name: m.name, IPv4Address: `${m.ip}/16` }])),
            });
        } else if (container && containers.has(container[1])) {
            const { network: networkName, member } = containers.get(container[1])!;
            const aliases = member.aliases ?? [];
            // Engines before API 1.44 give `Aliases: null` to a container without any.
            const settings = member.legacy
                ? { Aliases: member.aliases ?? null, IPAddress: member.ip }
                : { Aliases: aliases, DNSNames: [member.name, ...aliases, container[1].slice(0, 12)], IPAddress: member.ip };
            reply(res, 200, { Id: container[1], Name: `/${member.name}`, NetworkSettings: { Networks: { [networkName]: settings } } });
        } else {
            reply(res, 404, { message: `no such object: ${url}` });
        }
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    if (!keepProcessAlive) {
        server.unref();
        process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return {
        endpoint: `unix://${socket}`,
        requests,
        connectionHeaders,
        close: () => new Promise<void>((resolve) => {
            server.close(() => {
                fs.rmSync(dir, { recursive: true, force: true });
                resolve();
            });
            // Clients keep their connections alive; a closing server would wait for them.
            server.closeAllConnections();
        }),
    };
}
