// The PostgreSQL address lookup against an engine reached over TCP (docker:host
// tcp://..., or DOCKER_HOST), and where the lookup goes when nothing is configured.
// A TCP listener on loopback relays to the Docker Engine API stand-in's socket.
import * as assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { containerAddress, dockerEndpoint } from "../components/discovery";
import { FakeDocker, startFakeDocker } from "./fakeDocker";

const WORLD = {
    messages_internal: [{ name: "messages-postgresql-1", aliases: ["postgresql"], ip: "172.29.0.2" }],
    legacy_net: [{ name: "old-postgres", aliases: ["db"], ip: "10.9.0.7", legacy: true }],
};

/** Relays TCP connections on 127.0.0.1 to the fake engine's unix socket. */
async function relay(engine: FakeDocker): Promise<{ port: number; close(): Promise<void> }> {
    const socketPath = new URL(engine.endpoint).pathname;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
        const upstream = net.connect(socketPath);
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        const end = () => {
            client.destroy();
            upstream.destroy();
        };
        client.on("error", end).on("close", end);
        upstream.on("error", end).on("close", end);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    return {
        port,
        close: () => new Promise<void>((resolve) => {
            sockets.forEach((s) => s.destroy());
            server.close(() => resolve());
        }),
    };
}

/** A TCP listener on 127.0.0.1 that records whether each client opens with a TLS handshake or plain HTTP, then hangs up. */
async function sniffer(): Promise<{ endpoint(scheme: string): string; openings: string[]; close(): Promise<void> }> {
    const openings: string[] = [];
    const server = net.createServer((client) => {
        client.once("data", (chunk) => {
            // A TLS record of type handshake starts with 0x16, the lookup's HTTP requests with "GET"
            // (one byte decides: a first chunk holds at least one).
            openings.push(chunk[0] === 0x16 ? "tls" : chunk[0] === "G".charCodeAt(0) ? "http" : `byte ${chunk[0]}`);
            client.destroy();
        });
        client.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    return {
        endpoint: (scheme) => `${scheme}://127.0.0.1:${port}`,
        openings,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}

function withEnv<T>(values: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
    const apply = (entries: Record<string, string | undefined>) => {
        for (const [key, value] of Object.entries(entries)) {
            if (value === undefined) {
                delete process.env[key];
            } else {
                process.env[key] = value;
            }
        }
    };
    apply(values);
    return body().finally(() => apply(saved));
}

describe("PostgreSQL address lookup over TCP", () => {
    let engine: FakeDocker;
    let tcp: { port: number; close(): Promise<void> };

    before(async () => {
        engine = await startFakeDocker(WORLD);
        tcp = await relay(engine);
    });
    after(async () => {
        await tcp.close();
        await engine.close();
    });

    test("docker:host tcp://127.0.0.1:<port> is asked over plain HTTP at that port", async () => {
        const endpoint = `tcp://127.0.0.1:${tcp.port}`;
        const asked = engine.requests.length;
        await withEnv({ DOCKER_HOST: undefined, DOCKER_TLS_VERIFY: "1" }, async () => {
            assert.equal(await containerAddress({ network: "messages_internal", name: "postgresql", endpoint, platform: "linux" }), "172.29.0.2");
        });
        assert.ok(engine.requests.length > asked, "the engine behind that port answered");
    });

    test("an endpoint equal to DOCKER_HOST is reached as DOCKER_HOST says, keeping no connection open", async () => {
        const endpoint = `tcp://127.0.0.1:${tcp.port}`;
        const before = engine.connectionHeaders.length;
        await withEnv({ DOCKER_HOST: endpoint, DOCKER_TLS_VERIFY: undefined }, async () => {
            assert.equal(await containerAddress({ network: "legacy_net", name: "db", endpoint, platform: "linux" }), "10.9.0.7");
        });
        const headers = engine.connectionHeaders.slice(before);
        assert.ok(headers.length > 0);
        assert.deepEqual(headers.filter((header) => header !== "close"), []);
    });

    test("an engine without DNSNames: the container's own name and its aliases, nothing else", async () => {
        const endpoint = `tcp://127.0.0.1:${tcp.port}`;
        await withEnv({ DOCKER_HOST: undefined }, async () => {
            assert.equal(await containerAddress({ network: "legacy_net", name: "old-postgres", endpoint, platform: "linux" }), "10.9.0.7");
            await assert.rejects(containerAddress({ network: "legacy_net", name: "postgresql", endpoint, platform: "linux" }),
                /postgres\.host postgresql is the name of no container on network legacy_net \(there: old-postgres \(10\.9\.0\.7\)\)/);
        });
    });
});

describe("how the lookup speaks to an engine over TCP", () => {
    const ask = (endpoint: string) => containerAddress({ network: "messages_internal", name: "postgresql", endpoint, platform: "linux" })
        .then(() => assert.fail("the sniffer answers nothing"), (error: Error) => error);

    test("https:// and DOCKER_HOST with DOCKER_TLS_VERIFY speak TLS; tcp:// otherwise plain HTTP", async () => {
        const sniff = await sniffer();
        try {
            const cases: Array<[string, Record<string, string | undefined>, string]> = [
                [sniff.endpoint("https"), { DOCKER_HOST: undefined, DOCKER_TLS_VERIFY: undefined }, "tls"],
                [sniff.endpoint("tcp"), { DOCKER_HOST: sniff.endpoint("tcp"), DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: undefined }, "tls"],
                [sniff.endpoint("tcp"), { DOCKER_HOST: sniff.endpoint("tcp"), DOCKER_TLS_VERIFY: undefined }, "http"],
                // DOCKER_TLS_VERIFY is about DOCKER_HOST: docker:host tcp://... is plain HTTP.
                [sniff.endpoint("tcp"), { DOCKER_HOST: undefined, DOCKER_TLS_VERIFY: "1" }, "http"],
            ];
            for (const [endpoint, env, expected] of cases) {
                const before = sniff.openings.length;
                const error = await withEnv(env, () => ask(endpoint));
                assert.match(error.message, /did not answer/, `${endpoint} ${JSON.stringify(env)}`);
                assert.deepEqual([...new Set(sniff.openings.slice(before))], [expected], `${endpoint} ${JSON.stringify(env)}`);
            }
        } finally {
            await sniff.close();
        }
    });
});

describe("which Docker Engine the lookup asks", () => {
    test("DOCKER_HOST when docker:host is not set, else the local socket", async () => {
        await withEnv({ DOCKER_HOST: "tcp://127.0.0.1:23750" }, async () => {
            assert.equal(dockerEndpoint(), "tcp://127.0.0.1:23750");
        });
        await withEnv({ DOCKER_HOST: undefined }, async () => {
            assert.equal(dockerEndpoint(), "unix:///var/run/docker.sock");
        });
    });
});
