// The rollback command's decisions that need no engine: its arguments, and which config
// key brings back the image a dump was taken from (the rest runs in e2e/scenarios/upgrade).
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseArgs, redeployConfig, RollbackError } from "../scripts/rollback";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

describe("rollback command", () => {
    test("lists without --dump, acts on one dump, asks unless --yes", () => {
        const list = parseArgs(["--stack", "prod"]);
        assert.deepEqual([list.stack, list.dump, list.yes], ["prod", undefined, false]);
        const act = parseArgs(["--stack", "prod", "--dump", "caldav-20261128T041500Z-3f2a1b4c5d6e.dump", "--yes", "--work-dir", "/srv/stacks"]);
        assert.deepEqual([act.dump, act.yes, act.workDir], ["caldav-20261128T041500Z-3f2a1b4c5d6e.dump", true, "/srv/stacks"]);
    });

    test("refuses what it cannot mean, saying what is expected", () => {
        assert.throws(() => parseArgs([]), (e: Error) => e instanceof RollbackError && /--stack <stack> is required/.test(e.message));
        assert.throws(() => parseArgs(["--stack"]), /--stack needs a value/);
        assert.throws(() => parseArgs(["--stack", "prod", "--force"]), /unknown argument --force; usage: npm run rollback/);
        for (const dump of ["../etc/passwd", "caldav-latest.dump", "caldav-20261128T041500Z-x.dump; rm -rf /", "manual.dump"]) {
            assert.throws(() => parseArgs(["--stack", "prod", "--dump", dump]), /is not a dump file name/, dump);
        }
    });

    test("the reference it was deployed as decides: a build comes back through source.ref, a published image through prebuiltImage", () => {
        assert.deepEqual(redeployConfig(`calendars-caldav:${COMMIT}`, ["other:ffffffffffffffffffffffffffffffffffffffff"], []),
            { key: "source.ref", value: COMMIT }, "the deployed reference wins over other tags of the same image");
        assert.deepEqual(redeployConfig("ghcr.io/suitenumerique/calendars-caldav:v0.1.0", [], []),
            { key: "prebuiltImage", value: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" });
        const digest = `ghcr.io/suitenumerique/calendars-caldav@sha256:${"c".repeat(64)}`;
        assert.deepEqual(redeployConfig(digest, [], []), { key: "prebuiltImage", value: digest });
        assert.deepEqual(redeployConfig("registry.local:5000/caldav:v2", [], []), { key: "prebuiltImage", value: "registry.local:5000/caldav:v2" });
    });

    test("without a recorded reference (dumps of older versions), the image's own names decide", () => {
        assert.deepEqual(redeployConfig(undefined, [`calendars-caldav:${COMMIT}`], []), { key: "source.ref", value: COMMIT });
        assert.deepEqual(redeployConfig(undefined, ["my-caldav:v1", `my-caldav:${COMMIT}`], []), { key: "source.ref", value: COMMIT });
        const digest = `ghcr.io/suitenumerique/calendars-caldav@sha256:${"c".repeat(64)}`;
        assert.deepEqual(redeployConfig(undefined, ["ghcr.io/suitenumerique/calendars-caldav:v0.1.0"], [digest]), { key: "prebuiltImage", value: digest },
            "the digest pins exactly that image");
        assert.deepEqual(redeployConfig(undefined, ["ghcr.io/suitenumerique/calendars-caldav:v0.1.0"], []),
            { key: "prebuiltImage", value: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" });
        assert.equal(redeployConfig(undefined, ["ghcr.io/suitenumerique/calendars-caldav:latest"], []), undefined, "latest is no pin");
        assert.equal(redeployConfig(undefined, [], []), undefined);
    });
});
