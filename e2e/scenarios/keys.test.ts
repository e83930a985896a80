// Every key a real run can honour, set at once to a value other than its default, and each
// found from outside: HTTP on the base URI and the published port, psql on the database,
// schema, owner and port, `docker inspect` on names, network, addresses, memory and the
// environment. The unit suite (test/keys-wiring.test.ts) proves where each key lands in
// what the program registers; this proves the engine and the server honour it.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dav, freePort } from "../harness/dav";
import { containerEnv, inspect, psql, removeAll } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const NAME = "dav-keys";
const SUBNET = "172.28.5.0/24";
const BACKEND_IP = "172.28.5.40";
const CALDAV_IP = "172.28.5.50";
const BASE_URI = "/dav/keys/";

describe("every key set away from its default, deployed for real", () => {
    let source: CalendarsSource;
    let stack: TestStack;
    let cacheDir: string;
    let caldavPort: number;
    let tagged: string;
    const outputs: Record<string, any> = {};
    const url = (suffix = "") => `http://127.0.0.1:${caldavPort}${suffix}`;
    const pg = (database: string, sql: string) => psql(`${NAME}-postgres`, "pgadmin", database, sql);

    before(async () => {
        source = CalendarsSource.create();
        tagged = source.head();
        // main moves on: source.ref must be what picks the tagged commit.
        source.commit("after the tag", { "NEWS.md": "later\n" });
        cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-sources-"));
        caldavPort = await freePort();
        const images = e2eEnvironment().postgresImage;
        stack = await TestStack.create("keys", {
            source: { repo: source.url, ref: "v0.1.0", cacheDir },
            imageName: "caldav-keys",
            network: { name: "caldav_keys_net", create: true, subnet: SUBNET, backendIp: BACKEND_IP, caldavIp: CALDAV_IP, alias: "dav-keys-alias" },
            backendPort: 8443,
            postgres: {
                mode: "bundled", host: "pg-keys", port: 6544, adminHost: "127.0.0.1", adminPort: await freePort(), adminUser: "pgadmin",
                database: "dav_data", schema: "dav_schema", user: "dav_owner", bundledImage: images,
            },
            apiKeys: { mode: "separate", rotation: "r7" },
            caldav: { baseUri: BASE_URI, publish: `127.0.0.1:${caldavPort}`, memoryMb: 384, containerName: NAME, healthTimeoutSeconds: 240 },
            backup: { enabled: true, location: "dav-keys-dumps", keep: 2, image: images },
            protect: false,
        });
    });

    after(async () => {
        await stack?.dispose();
        // Retained by the program on purpose (the data, the dumps); the scenario created them.
        removeAll({ volumes: [`${NAME}-pgdata`, "dav-keys-dumps"] });
        source?.remove();
        fs.rmSync(cacheDir, { recursive: true, force: true });
    });

    test("up succeeds, healthy, with the tagged commit built under imageName", async () => {
        await stack.up();
        Object.assign(outputs, Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value])));
        assert.equal(outputs.sourceCommit, tagged);
        assert.equal(outputs.image, `caldav-keys:${tagged}`);
        assert.equal(inspect("container", NAME).State.Health.Status, "healthy");
        assert.ok(inspect("image", outputs.image).RepoTags.includes(outputs.image));
    });

    test("HTTP: the DAV tree answers on the base URI at the published port, and nowhere else", async () => {
        const keys = outputs.apiKeys as { inbound: string; outbound: string; internal: string };
        assert.equal(new Set(Object.values(keys)).size, 3, "apiKeys.mode separate: three keys");
        assert.equal((await dav(url(BASE_URI), "PROPFIND", { key: keys.outbound, user: "alice@example.org", depth: "0" })).status, 207);
        const outside = (await dav(url("/caldav/"), "PROPFIND", { key: keys.outbound, user: "alice@example.org", depth: "0" })).status;
        assert.ok(outside >= 400 && outside < 500, `the default base URI is outside the tree: ${outside}`);
        assert.equal((await dav(url(BASE_URI), "PROPFIND", { key: keys.inbound, user: "alice@example.org", depth: "0" })).status, 401,
            "the inbound key is another key");
        assert.deepEqual([outputs.publicUrl, outputs.caldavUrl], [url(BASE_URI), `http://dav-keys-alias:80${BASE_URI}`]);
    });

    test("psql: the database, its owner, the schema and the port are the configured ones", () => {
        assert.equal(pg("postgres", "SHOW port"), "6544");
        assert.equal(pg("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dav_data'"), "dav_owner");
        const tables = pg("dav_data", "SELECT string_agg(DISTINCT tableowner, ',') || '/' || count(*) FROM pg_tables WHERE schemaname = 'dav_schema'");
        assert.match(tables, /^dav_owner\/[1-9]\d*$/, "the server's tables, in postgres.schema, owned by postgres.user");
        assert.equal(pg("dav_data", "SELECT count(*) FROM pg_tables WHERE schemaname = 'sabre'"), "0");
        assert.match(pg("dav_data", "SELECT obj_description('dav_schema'::regnamespace)"), new RegExp(`deployed=sha256:[0-9a-f]{64} reference=caldav-keys:${tagged}`),
            "the record container wrote in the configured schema");
    });

    test("docker inspect: names, network, fixed addresses, alias, memory and environment", () => {
        const server = inspect("container", NAME);
        const attachment = server.NetworkSettings.Networks.caldav_keys_net;
        assert.equal(attachment.IPAddress, CALDAV_IP);
        assert.ok(attachment.Aliases.includes("dav-keys-alias"), JSON.stringify(attachment.Aliases));
        assert.equal(server.HostConfig.Memory, 384 * 1024 * 1024);
        assert.deepEqual(server.HostConfig.PortBindings["80/tcp"], [{ HostIp: "127.0.0.1", HostPort: String(caldavPort) }]);
        const vars = containerEnv(NAME);
        assert.deepEqual(
            [vars.PGHOST, vars.PGPORT, vars.PGDATABASE, vars.PGUSER, vars.CALDAV_DB_SCHEMA, vars.CALDAV_BASE_URI, vars.CALDAV_CALLBACK_BASE_URL],
            ["pg-keys", "6544", "dav_data", "dav_owner", "dav_schema", BASE_URI, `http://${BACKEND_IP}:8443`],
        );
        assert.equal(outputs.callbackUrl, `http://${BACKEND_IP}:8443/api/v1.0/caldav-scheduling-callback/`);
        assert.equal(outputs.backendIp, BACKEND_IP);

        const network = inspect("network", "caldav_keys_net");
        assert.equal(network.IPAM.Config[0].Subnet, SUBNET);
        const postgres = inspect("container", `${NAME}-postgres`);
        assert.ok(postgres.NetworkSettings.Networks.caldav_keys_net.Aliases.includes("pg-keys"));
        assert.deepEqual(postgres.Mounts.map((mount: { Name?: string }) => mount.Name), [`${NAME}-pgdata`]);
        for (const oneShot of [`${NAME}-dump`, `${NAME}-record`]) {
            const container = inspect("container", oneShot);
            assert.equal(container.State.ExitCode, 0, oneShot);
            assert.equal(container.Mounts[0].Name, "dav-keys-dumps", `${oneShot} writes to backup.location`);
        }
        assert.equal(containerEnv(`${NAME}-dump`).KEEP, "2");
    });

    test("a preview right after has nothing to do", async () => {
        await stack.preview({ expectNoChanges: true });
    });
});
