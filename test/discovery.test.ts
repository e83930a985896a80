// How an attach stack finds Messages' PostgreSQL when it publishes no port: the
// address, on the shared network, of the one container postgres.host names there.
// The real client (dockerode) talks to a Docker Engine API stand-in on a socket.
import * as assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { containerAddress, DiscoveryError, DockerDirectory, dockerDirectory, unreachableReason } from "../components/discovery";
import { DockerWorld, FakeDocker, MESSAGES_WORLD, startFakeDocker } from "./fakeDocker";

const WORLD: DockerWorld = {
    ...MESSAGES_WORLD,
    // An engine older than API 1.44 (no DNSNames): names come from the container name and aliases.
    legacy_net: [
        { name: "old-postgres", aliases: ["db"], ip: "10.9.0.7", legacy: true },
        { name: "old-backend", ip: "10.9.0.8", legacy: true },
    ],
    // Two Messages installations' databases on one network: the alias resolves to either.
    twins: [
        { name: "a-postgresql-1", aliases: ["postgresql"], ip: "172.31.0.2" },
        { name: "b-postgresql-1", aliases: ["postgresql"], ip: "172.31.0.3" },
    ],
    empty: [],
};

/** A directory that fails the test when asked anything. */
const UNTOUCHED: DockerDirectory = {
    members: () => assert.fail("the Docker Engine must not be asked"),
};

describe("PostgreSQL address lookup", () => {
    let engine: FakeDocker;
    const lookup = (network: string, name: string) => containerAddress({ network, name, endpoint: engine.endpoint, platform: "linux" });

    before(async () => {
        engine = await startFakeDocker(WORLD);
    });
    after(() => engine.close());

    test("finds the container by the compose service name it answers to, asking only read-only questions", async () => {
        const before = engine.requests.length;
        assert.equal(await lookup("messages_internal", "postgresql"), "172.29.0.2");
        const asked = engine.requests.slice(before);
        assert.ok(asked.length > 0);
        assert.deepEqual(asked.filter((r) => !r.startsWith("GET ")), []);
    });

    test("reads the names Docker DNS answers for on the network: DNSNames, else the container name and its aliases", async () => {
        const members = await dockerDirectory(engine.endpoint).members("legacy_net");
        assert.deepEqual(members, [
            { container: "old-postgres", names: ["old-postgres", "db"], ip: "10.9.0.7" },
            { container: "old-backend", names: ["old-backend"], ip: "10.9.0.8" },
        ]);
        const [postgres] = (await dockerDirectory(engine.endpoint).members("messages_internal"))!;
        assert.deepEqual(postgres.names, ["messages-postgresql-1", "postgresql", "id-messages-"]);
        assert.equal(await dockerDirectory(engine.endpoint).members("no_such_network"), undefined);
    });

    test("keeps no connection to the engine open once it has its answers", async () => {
        const before = engine.connectionHeaders.length;
        await lookup("messages_internal", "postgresql");
        const headers = engine.connectionHeaders.slice(before);
        assert.ok(headers.length > 0);
        assert.deepEqual(headers.filter((header) => header !== "close"), []);
    });

    test("finds it by container name too, whatever the case", async () => {
        assert.equal(await lookup("messages_internal", "Messages-Backend-1"), "172.29.0.3");
    });

    test("on an engine without DNSNames, matches the container name and aliases", async () => {
        assert.equal(await lookup("legacy_net", "db"), "10.9.0.7");
        assert.equal(await lookup("legacy_net", "old-postgres"), "10.9.0.7");
    });

    test("a name no container has fails naming postgres.host, the network and what is there", async () => {
        await assert.rejects(lookup("messages_internal", "postgres"), (error: Error) => {
            assert.ok(error instanceof DiscoveryError);
            assert.match(error.message, /postgres\.host postgres is the name of no container on network messages_internal/);
            assert.match(error.message, /messages-postgresql-1 \(172\.29\.0\.2\)/);
            assert.match(error.message, /\. Start Messages' PostgreSQL, or set postgres\.host to the name it has on that network\. /);
            assert.match(error.message, / If PostgreSQL is not a container on that network, set postgres\.adminHost \(and postgres\.adminPort\) to where this machine reaches that PostgreSQL instead/);
            assert.match(error.message, /reaches that PostgreSQL instead \(a published port, an SSH tunnel, a managed database's address\)\.$/);
            return true;
        });
        await assert.rejects(lookup("empty", "postgresql"), /no container on network empty \(it has no containers\)/);
    });

    test("a name two containers answer to fails naming both", async () => {
        await assert.rejects(lookup("twins", "postgresql"),
            /postgres\.host postgresql names 2 containers on network twins: a-postgresql-1 \(172\.31\.0\.2\), b-postgresql-1 \(172\.31\.0\.3\)\. Docker DNS answers with either, so the CalDAV server could reach the wrong one: give postgres\.host a name only Messages' PostgreSQL has/);
    });

    test("a container without an IPv4 address there fails naming it, never falling back to localhost", async () => {
        for (const [ip, shown] of [["", "none"], ["fd00::5", '"fd00::5"']]) {
            const directory = { members: async () => [{ container: "messages-postgresql-1", names: ["postgresql"], ip }] };
            await assert.rejects(containerAddress({ network: "messages_internal", name: "postgresql", endpoint: "unix:///x", platform: "linux", directory }),
                /postgres\.host postgresql is container messages-postgresql-1 on network messages_internal, but it has no IPv4 address there .* Set postgres\.adminHost/, ip);
            await assert.rejects(containerAddress({ network: "messages_internal", name: "postgresql", endpoint: "unix:///x", platform: "linux", directory }),
                (error: Error) => error.message.includes(`there (${shown}: an IPv6-only network, or the container is not running)`), ip);
        }
    });

    test("a network the engine does not have fails naming network.name", async () => {
        await assert.rejects(lookup("messages_external", "postgresql"), /network\.name messages_external is not a network on the Docker host unix:\S+\. Start Messages first, or set network\.name to its network\.$/);
    });

    test("an engine that does not answer fails naming its endpoint", async () => {
        const endpoint = "unix:///nonexistent/docker.sock";
        await assert.rejects(containerAddress({ network: "messages_internal", name: "postgresql", endpoint, platform: "linux" }),
            /cannot look up postgres\.host postgresql on network messages_internal: the Docker Engine at unix:\/\/\/nonexistent\/docker\.sock did not answer \(.*ENOENT.*\)\. Start it, or point docker:host \/ DOCKER_HOST at it\. Set postgres\.adminHost/);
    });

    test("an IPv4 postgres.host is its own address, without asking the engine", async () => {
        assert.equal(await containerAddress({ network: "n", name: "172.29.0.9", endpoint: "unix:///x", platform: "linux", directory: UNTOUCHED }), "172.29.0.9");
    });

    test("refuses, before asking, when this machine cannot reach the engine's container addresses", async () => {
        for (const [endpoint, platform, reason] of [
            ["ssh://deploy@docker-host", "linux", /the Docker host is ssh:\/\/deploy@docker-host, not this machine/],
            ["tcp://10.0.0.5:2375", "linux", /the Docker host is tcp:\/\/10\.0\.0\.5:2375, not this machine/],
            ["unix:///var/run/docker.sock", "darwin", /pulumi runs on darwin/],
        ] as const) {
            await assert.rejects(containerAddress({ network: "messages_internal", name: "postgresql", endpoint, platform, directory: UNTOUCHED }),
                (error: Error) => {
                    assert.match(error.message, reason);
                    assert.match(error.message, /^postgres\.adminHost is not set/);
                    assert.match(error.message, /Set postgres\.adminHost \(and postgres\.adminPort\)/);
                    return true;
                });
        }
    });

    test("an engine on this machine's loopback counts as local, its neighbours do not", () => {
        for (const endpoint of ["unix:///run/docker.sock", "tcp://127.0.0.1:2375", "tcp://127.255.0.9:2375", "tcp://localhost:2375", "http://[::1]:2375", "https://127.0.0.1:2376"]) {
            assert.equal(unreachableReason(endpoint, "linux"), undefined, endpoint);
        }
        for (const endpoint of ["tcp://128.0.0.1:2375", "tcp://126.255.255.255:2375", "tcp://10.0.0.1:2375", "npipe:////./pipe/docker_engine", "not a url"]) {
            assert.notEqual(unreachableReason(endpoint, "linux"), undefined, endpoint);
        }
        assert.equal(unreachableReason("not a url", "linux"), 'the Docker host "not a url" is not a URL');
    });
});
