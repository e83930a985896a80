// The CalDAV container as Docker runs it: its start command and health check are
// exec-form commands of the image (no shell for the probe), and what the operator
// is told when it never turns healthy.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { unhealthyMessage } from "../components/server";
import { localSource } from "./fixtures";
import { evaluateOnce } from "./harness";

async function caldav(): Promise<Record<string, any>> {
    const evaluation = await evaluateOnce({ source: localSource(), network: { create: true }, postgres: { adminHost: "db.internal" } },
        { postgresAdminPassword: "admin-secret" });
    assert.ifError(evaluation.error);
    return evaluation.one("docker:index/container:Container", "caldav").inputs;
}

describe("CalDAV container commands", () => {
    test("the start command is one shell command line, so that && stops at a failed schema init", async () => {
        const command: string[] = (await caldav()).command;
        assert.deepEqual(command.slice(0, 2), ["sh", "-c"]);
        assert.equal(command.length, 3);
    });

    test("the health check runs php on inline code, without a shell (exec form)", async () => {
        const tests: string[] = (await caldav()).healthcheck.tests;
        assert.deepEqual(tests.slice(0, 3), ["CMD", "php", "-r"]);
        assert.equal(tests.length, 4);
        assert.match(tests[3], /=== "ok" \? 0 : 1\);$/, "exits 0 only when the server answers ok");
    });
});

describe("the message of a CalDAV container that never turned healthy", () => {
    test("ends with what to do when the first start is only slow", () => {
        const message = unhealthyMessage("calendars-caldav-eu", 420);
        assert.match(message, /If the first start is only slow, raise caldav\.healthTimeoutSeconds\.$/);
        assert.match(message, /missing privileges\), then Apache and PHP\./);
        assert.match(message, /docker inspect --format '\{\{json \.State\.Health\}\}' calendars-caldav-eu` shows the health check's own output/);
    });
});
