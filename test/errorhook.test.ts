// The CalDAV container's error hook: what it tells an operator, and that it never retries.
import * as assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { reportUnhealthy } from "../components/server";

function failure(failedOperation: string): pulumi.ErrorHookArgs {
    return {
        urn: "urn:pulumi:dev::calendars-caldav::calendars:caldav:Server$docker:index/container:Container::caldav",
        id: "",
        name: "caldav",
        type: "docker:index/container:Container",
        failedOperation,
        errors: ["container failed to be in healthy state"],
    };
}

describe("error hook of the CalDAV container", () => {
    test("a failed create or update says where to look, naming the container and the timeout key, and never retries", async () => {
        for (const operation of ["create", "update"]) {
            const logged = mock.method(pulumi.log, "error", async () => undefined);
            try {
                const retry = await reportUnhealthy("calendars-caldav-staging", 240)(failure(operation));
                assert.equal(retry, false, "a retry would only wait the whole health timeout again");
                assert.equal(logged.mock.callCount(), 1);
                const message = String(logged.mock.calls[0].arguments[0]);
                assert.match(message, /calendars-caldav-staging did not become healthy within 240 s \(caldav\.healthTimeoutSeconds\)/);
                assert.match(message, /docker logs calendars-caldav-staging/);
                assert.match(message, /docker inspect .* calendars-caldav-staging/);
            } finally {
                logged.mock.restore();
            }
        }
    });

    test("a failed delete is left to the provider's own message", async () => {
        const logged = mock.method(pulumi.log, "error", async () => undefined);
        try {
            assert.equal(await reportUnhealthy("calendars-caldav-dev", 180)(failure("delete")), false);
            assert.equal(logged.mock.callCount(), 0);
        } finally {
            logged.mock.restore();
        }
    });
});
