// Failures an operator can cause, deployed for real: `up` must fail, say why, and
// leave no server that looks healthy.
import * as assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { docker, exists, inspect, psql } from "../harness/docker";
import { MessagesStandin, CalendarsSource } from "../harness/fixtures";
import { freePort } from "../harness/dav";
import { TestStack } from "../harness/stack";

const IMAGE = "calendars-e2e/caldav-standin:v0.1.0-failures";

describe("a schema init that fails", () => {
    let source: CalendarsSource;
    let messages: MessagesStandin;
    let stack: TestStack;

    before(async () => {
        source = CalendarsSource.create();
        docker("build", "--quiet", "--tag", IMAGE, `${source.dir}/src/caldav`);
        const postgresHostPort = await freePort();
        messages = new MessagesStandin({ network: "messages_internal", subnet: "172.29.0.0/16", backendIp: "172.29.0.30", postgresHostPort });
        await messages.start();
        // An existing role the operator names, which may not log in: init-database.sh cannot connect.
        psql(messages.postgres, "postgres", "postgres", "CREATE ROLE caldav_nologin NOLOGIN PASSWORD 'nologin-e2e'");
        stack = await TestStack.create("failures", {
            prebuiltImage: IMAGE,
            network: { create: false },
            postgres: { adminHost: "127.0.0.1", adminPort: postgresHostPort, adminUser: "messages", createUser: false, user: "caldav_nologin" },
            caldav: { healthTimeoutSeconds: 15 },
            protect: false,
        }, { postgresAdminPassword: messages.adminPassword, postgresPassword: "nologin-e2e" });
    });

    after(async () => {
        await stack?.dispose();
        messages?.remove();
        if (exists("image", IMAGE)) {
            docker("image", "rm", IMAGE);
        }
        source?.remove();
    });

    test("up fails with the error hook's message and no healthy CalDAV container remains", async () => {
        await assert.rejects(stack.up(), (error: Error) => {
            assert.match(error.message, /did not become healthy within 15 s \(caldav\.healthTimeoutSeconds\)/);
            assert.match(error.message, /docker logs calendars-caldav-failures/);
            return true;
        });
        const name = "calendars-caldav-failures";
        assert.ok(!exists("container", name) || inspect("container", name).State.Health?.Status !== "healthy");
    });
});
