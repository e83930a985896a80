// Failures an operator can cause, deployed for real: `up` must fail, say why, and
// leave no server that looks healthy.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { exists, inspect, psql } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { AttachHost } from "../harness/fixtures";
import { OperationError, TestStack } from "../harness/stack";

describe("attach failures an operator can cause", () => {
    let host: AttachHost;
    let stack: TestStack;

    before(async () => {
        host = await AttachHost.start("calendars-e2e/caldav-standin:v0.1.0-failures");
        // An existing role the operator names, which may not log in: init-database.sh cannot connect.
        psql(host.messages.postgres, "postgres", "postgres", "CREATE ROLE caldav_nologin NOLOGIN PASSWORD 'nologin-e2e'");
        stack = await TestStack.create("failures", {
            ...host.stackConfig(),
            postgres: { ...(host.stackConfig().postgres as object), createUser: false, user: "caldav_nologin" },
            caldav: { healthTimeoutSeconds: 15 },
            // Without the dump, which would stop at the same role before the server starts.
            backup: { enabled: false },
            protect: false,
        }, { postgresAdminPassword: host.messages.adminPassword, postgresPassword: "nologin-e2e" });
    });

    after(async () => {
        await stack?.dispose();
        host?.remove();
    });

    test("a first up whose postgres.host names no container fails before anything is created", async () => {
        const fresh = await TestStack.create("nomatch", { ...host.stackConfig(), postgres: { host: "caldav-db" }, protect: false },
            { postgresAdminPassword: host.messages.adminPassword });
        try {
            assert.match((await fresh.upInOwnProcess()) ?? "up succeeded",
                /postgres\.host caldav-db is the name of no container on network messages_internal/);
            const created = (await fresh.urns()).filter((urn) => !urn.includes("::pulumi:"));
            assert.deepEqual(created, [], "no resource, not even a component, in the state");
            assert.equal(exists("container", "calendars-caldav-nomatch"), false);
        } finally {
            await fresh.dispose();
        }
    });

    test("a first up whose backup.location cannot be written fails, naming it, ends, and starts no server", async () => {
        const notADirectory = path.join(os.tmpdir(), `calendars-e2e-not-a-directory-${process.pid}`);
        fs.writeFileSync(notADirectory, "");
        // A database and role of its own: they outlive the stack (retainOnDelete) on this shared server.
        const fresh = await TestStack.create("nobackups", {
            ...host.stackConfig(),
            postgres: { ...(host.stackConfig().postgres as object), database: "caldav_nobackups", user: "caldav_nobackups" },
            backup: { ...(host.stackConfig().backup as object), location: notADirectory },
            protect: false,
        },
            { postgresAdminPassword: host.messages.adminPassword });
        try {
            assert.match((await fresh.upInOwnProcess()) ?? "up succeeded",
                /the dump before the image change failed \(exit code 3\), so the CalDAV server was not replaced/);
            const logs = spawnSync("docker", ["logs", "calendars-caldav-nobackups-dump"], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost } });
            assert.match(logs.stderr, /backup\.location is not a writable directory/, "the script says why, on its stderr");
            assert.equal(exists("container", "calendars-caldav-nobackups"), false, "no server");
            assert.equal(exists("container", "calendars-caldav-nobackups-record"), false, "nothing recorded");
        } finally {
            await fresh.dispose();
            fs.rmSync(notADirectory, { force: true });
        }
    });

    test("up fails with the error hook's message and no healthy CalDAV container remains", async () => {
        await assert.rejects(stack.up(), (error: OperationError) => {
            // The hook logs through the engine while the program still runs: one error
            // diagnostic, which the CLI prints on stdout (as it happens, and under Diagnostics:
            // with the stack's, as it names no resource); nothing of it on stderr.
            const unhealthy = /CalDAV container calendars-caldav-failures did not become healthy within 15 s \(caldav\.healthTimeoutSeconds\)/;
            const reported = error.diagnostics.filter((d) => unhealthy.test(d.message));
            assert.deepEqual(reported.map((d) => d.severity), ["error"], "reported once, as an error");
            assert.match(reported[0].message, /docker logs calendars-caldav-failures/);
            assert.match(error.stdout.slice(error.stdout.indexOf("\nDiagnostics:")), unhealthy);
            assert.doesNotMatch(error.stderr, unhealthy);
            return true;
        });
        const name = "calendars-caldav-failures";
        assert.ok(!exists("container", name) || inspect("container", name).State.Health?.Status !== "healthy");
    });
});
