// The self-contained dev stack (Pulumi.dev.yaml), deployed for real: its own network,
// the bundled PostgreSQL, the server built from the (stand-in) Calendars source.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dav, freePort } from "../harness/dav";
import { exists, inspect, psql, removeAll } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { Result, TestStack } from "../harness/stack";

/** Resource types of the URNs an operation changed. */
function changedTypes(result: Result): string[] {
    return [...new Set([...result.changes.keys()].map((urn) => urn.split("::")[2].split("$").pop() as string))].sort();
}

describe("dev stack, deployed for real", () => {
    let source: CalendarsSource;
    let stack: TestStack;
    let cacheDir: string;
    let caldavPort: number;
    let volume: string | undefined;

    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const url = (suffix = "") => `http://127.0.0.1:${caldavPort}/caldav/${suffix}`;

    before(async () => {
        source = CalendarsSource.create();
        cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-sources-"));
        caldavPort = await freePort();
        stack = await TestStack.create("dev", {
            source: { repo: source.url, cacheDir },
            postgres: { bundledImage: e2eEnvironment().postgresImage, adminPort: await freePort() },
            caldav: { publish: `127.0.0.1:${caldavPort}` },
        });
    });

    after(async () => {
        await stack?.dispose();
        // Retained on purpose by the program (the data); the scenario created it, so it removes it.
        if (volume) {
            removeAll({ volumes: [volume] });
        }
        source?.remove();
        fs.rmSync(cacheDir, { recursive: true, force: true });
    });

    test("up builds the source at main and succeeds once the server answers /caldav/healthz", async () => {
        await stack.up();
        const out = await outputs();
        assert.equal(out.sourceCommit, source.head());
        assert.equal(out.publicUrl, url());
        const health = await dav(url("healthz"), "GET");
        assert.equal(health.status, 200);
        assert.equal(health.body, "ok");
        const container = inspect("container", out.containerName as string);
        assert.equal(container.State.Health.Status, "healthy", "healthy when up returns, not later");
    });

    test("the stack's key opens the DAV tree (207); no key or a wrong key is refused", async () => {
        const { apiKeys } = await outputs();
        const keys = apiKeys as { outbound: string };
        assert.equal((await dav(url(), "PROPFIND", { key: keys.outbound, user: "alice@example.org", depth: "1" })).status, 207);
        assert.equal((await dav(url(), "PROPFIND", { user: "alice@example.org", depth: "1" })).status, 401);
        assert.equal((await dav(url(), "PROPFIND", { key: `${keys.outbound}x`, user: "alice@example.org", depth: "1" })).status, 401);
    });

    test("secrets are secret in the stack's outputs", async () => {
        const all = await stack.outputs();
        assert.equal(all.apiKeys.secret, true);
        assert.equal(all.backendEnv.secret, true);
        assert.equal(all.caldavUrl.secret, false);
    });

    test("the schema lives in the stack's database, owned by a role that may create nothing else", async () => {
        const out = await outputs();
        const server = `${out.containerName}-postgres`;
        const admin = "messages";
        const db = out.databaseName as string;
        const role = out.databaseUser as string;
        assert.equal(psql(server, admin, "postgres", `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${db}'`), role);
        const tables = psql(server, admin, db, "SELECT string_agg(DISTINCT tableowner || ':' || tablename, ',') FROM pg_tables WHERE schemaname = 'sabre'");
        for (const table of ["calendars", "principals", "users"]) {
            assert.ok(tables.split(",").includes(`${role}:${table}`), `${table} owned by ${role} in schema sabre (${tables})`);
        }
        assert.equal(psql(server, admin, "postgres", `SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = '${role}'`), "f|f|f|t");
    });

    test("preview right after up has nothing to do, and a second up changes nothing", async () => {
        await stack.preview({ expectNoChanges: true });
        const again = await stack.up();
        assert.deepEqual([...again.changes.entries()], []);
    });

    test("rotating the key: the new key works, the old one is refused; only the key and the container change", async () => {
        const before = ((await outputs()).apiKeys as { outbound: string }).outbound;
        stack.configure({ apiKeys: { rotation: "2" } });
        const rotated = await stack.up();
        assert.deepEqual(changedTypes(rotated), ["docker:index/container:Container", "random:index/randomPassword:RandomPassword"]);
        const containers = [...rotated.changes.keys()].filter((urn) => urn.endsWith("docker:index/container:Container::caldav"));
        assert.equal(containers.length, 1, "the CalDAV container, not the PostgreSQL one");
        const after = ((await outputs()).apiKeys as { outbound: string }).outbound;
        assert.notEqual(after, before);
        assert.equal((await dav(url(), "PROPFIND", { key: after, user: "alice@example.org", depth: "0" })).status, 207);
        assert.equal((await dav(url(), "PROPFIND", { key: before, user: "alice@example.org", depth: "0" })).status, 401);
    });

    test("a memory change updates the CalDAV container in place; nothing else changes", async () => {
        const out = await outputs();
        const oldId = inspect("container", out.containerName as string).Id;
        stack.configure({ caldav: { memoryMb: 640 } });
        const resized = await stack.up();
        assert.deepEqual([...resized.changes.entries()].map(([urn, op]) => [urn.split("::").pop(), op]), [["caldav", "update"]]);
        const container = inspect("container", out.containerName as string);
        assert.equal(container.Id, oldId, "no restart for a new limit");
        assert.equal(container.HostConfig.Memory, 640 * 1024 * 1024);
        assert.equal(container.HostConfig.MemorySwap, 640 * 1024 * 1024, "no swap beyond the limit");
        await stack.preview({ expectNoChanges: true });
    });

    test("a new upstream commit replaces the image and the container, nothing else", async () => {
        const server = fs.readFileSync(path.join(source.dir, "src/caldav/server.php"), "utf8");
        const commit = source.commit("a change upstream", { "src/caldav/server.php": `${server}// changed upstream\n` });
        const upgraded = await stack.up();
        assert.deepEqual(changedTypes(upgraded), ["docker:index/container:Container", "docker:index/remoteImage:RemoteImage"]);
        assert.equal((await outputs()).sourceCommit, commit);
        assert.equal((await dav(url("healthz"), "GET")).body, "ok");
    });

    test("a commit that leaves the image as it was rebuilds it but keeps the container", async () => {
        const commit = source.commit("docs only", { "README.md": "not part of the image\n" });
        const result = await stack.up();
        assert.deepEqual(changedTypes(result), ["docker:index/remoteImage:RemoteImage"], "same image ID: no restart");
        assert.equal((await outputs()).sourceCommit, commit);
    });

    test("destroy removes what the stack runs and keeps the data volume", async () => {
        const out = await outputs();
        const server = `${out.containerName}-postgres`;
        volume = inspect("container", server).Mounts.find((m: { Type: string }) => m.Type === "volume")?.Name;
        assert.ok(volume, "the bundled server keeps its data in a named volume");
        await stack.destroy();
        assert.equal(exists("container", out.containerName as string), false);
        assert.equal(exists("container", server), false);
        assert.equal(exists("network", out.networkName as string), false);
        assert.equal(exists("volume", volume), true, "retainOnDelete: the data outlives the stack");
    });

    test("up after that destroy reaches the kept data and stops at the existing database, as documented", async () => {
        // The bundled server gets the new stack's admin password although the cluster was
        // made with the old one; the database and role are there and must be adopted or dropped.
        await assert.rejects(stack.up(), (error: Error) => {
            assert.match(error.message, /already exists/);
            assert.doesNotMatch(error.message, /password authentication failed/);
            return true;
        });
    });
});
