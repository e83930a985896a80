// Attach mode as in production (Pulumi.prod.yaml): a Messages installation already
// runs (network, PostgreSQL with a non-superuser admin role, the Calendars backend at
// its fixed IP); the stack runs a pinned image, joins the network, owns nothing of
// Messages, and is protected.
import * as assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { dav, freePort, invitation } from "../harness/dav";
import { containerEnv, docker, exists, inspect, psql, waitHealthy } from "../harness/docker";
import { until } from "../harness/faults";
import { e2eEnvironment } from "../harness/environment";
import { AttachHost, MessagesStandin } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const NETWORK = AttachHost.network;

describe("attach to a running Messages, as prod does", () => {
    let host: AttachHost;
    let messages: MessagesStandin;
    let stack: TestStack;
    let caldavPort: number;

    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const url = (suffix = "") => `http://127.0.0.1:${caldavPort}/caldav/${suffix}`;

    before(async () => {
        // A local tag, as an operator would pin a release; the provider must use it without pulling.
        host = await AttachHost.start("calendars-e2e/caldav-standin:v0.1.0");
        messages = host.messages;
        caldavPort = await freePort();
        // Pulumi.prod.yaml, with this host's image and PostgreSQL port.
        stack = await TestStack.create("prod", {
            ...host.stackConfig(),
            caldav: { publish: `127.0.0.1:${caldavPort}` },
        }, { postgresAdminPassword: messages.adminPassword });
    });

    after(async () => {
        await stack?.dispose();
        host?.remove();
    });

    test("up runs the pinned image on Messages' network under its alias and fixed IP", async () => {
        const ports = inspect("container", messages.postgres).NetworkSettings.Ports as Record<string, unknown[] | null>;
        assert.deepEqual(Object.values(ports).filter((bindings) => bindings?.length), [], "Messages publishes no PostgreSQL port");
        const result = await stack.up();
        const types = [...result.changes.keys()].map((urn) => urn.split("::")[2].split("$").pop());
        assert.ok(!types.includes("docker:index/network:Network"), "the network is Messages', never the stack's");
        const out = await outputs();
        assert.equal(out.image, host.image);
        const container = inspect("container", out.containerName as string);
        const attachment = container.NetworkSettings.Networks[NETWORK.name];
        assert.equal(attachment.IPAddress, (stack.config().network as { caldavIp: string }).caldavIp, "prod's fixed CalDAV IP");
        assert.ok(attachment.Aliases.includes("calendars-caldav"), `aliases: ${attachment.Aliases}`);
        assert.equal(container.State.Health.Status, "healthy");
        assert.equal((await dav(url("healthz"), "GET")).body, "ok");
    });

    // Against upstream too: where the server is told to call back, and that it reaches the
    // backend there from where it runs (its network, its fixed IP), with php, which every
    // php:*-apache image has.
    test("the server calls back the backend at its fixed IP, and reaches it from its own container", async () => {
        const out = await outputs();
        const base = containerEnv(out.containerName as string).CALDAV_CALLBACK_BASE_URL;
        assert.equal(new URL(base).hostname, out.backendIp, "the backend's fixed IP, never a name Docker DNS may resolve to Messages' backend");
        assert.equal(out.callbackUrl, `${base}/api/v1.0/caldav-scheduling-callback/`);
        const before = messages.requests().length;
        const probe = `${base}/api/v1.0/caldav-scheduling-callback/?probe=e2e`;
        docker("exec", out.containerName as string, "php", "-r",
            `@file_get_contents(${JSON.stringify(probe)}, false, stream_context_create(["http" => ["method" => "POST", "ignore_errors" => true]]));`);
        const reached = messages.requests().slice(before);
        assert.deepEqual(reached.map((r) => [r.method, r.path]), [["POST", "/api/v1.0/caldav-scheduling-callback/"]], JSON.stringify(reached));
    });

    // The stand-in's calendar home layout (calendars/<user>/) and invitation trigger are
    // its own: against upstream, the test above proves the wiring instead.
    const standin = e2eEnvironment().fixtures === "standin";

    test("an invitation reaches the backend's fixed IP with the inbound key", { skip: !standin && "stand-in calendar layout" }, async () => {
        const keys = (await outputs()).apiKeys as { inbound: string; outbound: string };
        assert.notEqual(keys.inbound, keys.outbound, "prod uses one key per variable");
        const auth = { key: keys.outbound, user: "alice@example.org" };
        const earlier = messages.requests().length;
        assert.equal((await dav(url("calendars/alice@example.org/work/"), "MKCALENDAR", auth)).status, 201);
        const put = await dav(url("calendars/alice@example.org/work/standup.ics"), "PUT", { ...auth, body: invitation("standup", "bob@example.org") });
        assert.equal(put.status, 201, put.body);
        const callbacks = messages.requests().slice(earlier).filter((r) => r.path === "/api/v1.0/caldav-scheduling-callback/");
        assert.equal(callbacks.length, 1, JSON.stringify(messages.requests()));
        assert.equal(callbacks[0].method, "POST");
        assert.equal(callbacks[0].headers["x-ls-api-key"], keys.inbound);
        assert.equal(callbacks[0].headers["x-ls-recipient"], "mailto:bob@example.org");
    });

    test("Messages' PostgreSQL restarted under the server: DAV is served again without a redeploy, and nothing changes", async () => {
        const out = await outputs();
        const key = (out.apiKeys as { outbound: string }).outbound;
        const started = inspect("container", out.containerName as string).State.StartedAt;
        const propfind = async () => (await dav(url(), "PROPFIND", { key, user: "alice@example.org", depth: "0" })).status;
        assert.equal(await propfind(), 207);
        const t0 = Date.now();
        docker("restart", messages.postgres);
        await waitHealthy(messages.postgres);
        await until("PROPFIND answers 207 again after Messages' PostgreSQL restarted", async () => (await propfind()) === 207 || undefined, 60_000);
        process.stderr.write(`    [attach] served again ${((Date.now() - t0) / 1000).toFixed(1)} s after docker restart of ${messages.postgres}\n`);
        assert.equal(inspect("container", out.containerName as string).State.StartedAt, started, "the CalDAV server was neither restarted nor replaced");
        await stack.preview({ expectNoChanges: true });
    });

    test("invalid config fails before any resource changes", async () => {
        const out = await outputs();
        const containerId = inspect("container", out.containerName as string).Id;
        const urns = await stack.urns();
        stack.configure({ network: { backendIp: "172.29.0.300" } });
        assert.match((await stack.upInOwnProcess()) ?? "up succeeded", /calendars-caldav:network\.backendIp "172\.29\.0\.300" is not an IPv4 address/);
        assert.deepEqual(await stack.urns(), urns);
        assert.equal(inspect("container", out.containerName as string).Id, containerId);
        stack.configure({ network: { backendIp: NETWORK.backendIp } });
    });

    test("a postgres.host that names no container on the network fails before any change", async () => {
        const out = await outputs();
        const containerId = inspect("container", out.containerName as string).Id;
        const urns = await stack.urns();
        stack.configure({ postgres: { host: "caldav-db" } });
        assert.match((await stack.upInOwnProcess()) ?? "up succeeded",
            /postgres\.host caldav-db is the name of no container on network messages_internal \(there: /);
        assert.deepEqual(await stack.urns(), urns);
        assert.equal(inspect("container", out.containerName as string).Id, containerId, "the server still runs, untouched");
        stack.configure({ postgres: { host: "postgresql" } });
    });

    test("destroy is refused while the database is protected", async () => {
        await assert.rejects(stack.destroy(), /protect/);
        assert.equal(exists("container", (await outputs()).containerName as string), true);
    });

    test("after unprotecting, destroy leaves Messages, its network, the database and its data", async () => {
        const out = await outputs();
        stack.configure({ protect: false });
        await stack.up();
        await stack.destroy();
        assert.equal(exists("container", out.containerName as string), false);
        assert.equal(exists("network", NETWORK.name), true);
        assert.equal(inspect("container", messages.postgres).State.Running, true);
        assert.equal(inspect("container", messages.backend).State.Running, true);
        const db = out.databaseName as string;
        assert.equal(psql(messages.postgres, "postgres", "postgres", `SELECT count(*) FROM pg_database WHERE datname = '${db}'`), "1");
        if (standin) {
            assert.equal(psql(messages.postgres, "postgres", db, "SELECT count(*) FROM sabre.calendarobjects"), "1", "the event written above");
        } else {
            assert.notEqual(psql(messages.postgres, "postgres", db, "SELECT to_regclass('sabre.calendars')"), "", "the schema is still there");
        }
    });
});
