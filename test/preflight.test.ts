// `npm run dev:up` checks its tools first and says what is missing, before any state is touched.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";

const SCRIPT = path.join(__dirname, "..", "scripts", "preflight.mjs");

/** Runs the preflight with only the given fake commands (shell scripts) on PATH. */
function preflight(commands: Record<string, string>): { status: number | null; stderr: string } {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "preflight-"));
    for (const [name, body] of Object.entries(commands)) {
        fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    const result = spawnSync(process.execPath, [SCRIPT], { encoding: "utf8", env: { PATH: bin } });
    fs.rmSync(bin, { recursive: true, force: true });
    return { status: result.status, stderr: result.stderr };
}

describe("dev:up preflight", () => {
    test("passes with a recent enough Pulumi CLI and Docker Engine", () => {
        const result = preflight({ pulumi: "echo v3.219.0", docker: "echo 1.44" });
        assert.equal(result.status, 0, result.stderr);
    });

    test("names each missing tool and how to get it", () => {
        const result = preflight({});
        assert.equal(result.status, 1);
        assert.match(result.stderr, /Pulumi CLI is not on PATH: install version 3\.219\.0 or later/);
        assert.match(result.stderr, /docker CLI is not on PATH: install Docker Engine 25 or later/);
    });

    test("refuses a Pulumi CLI without error hooks and an engine without the health check start interval", () => {
        const result = preflight({ pulumi: "echo v3.218.9", docker: "echo 1.43" });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /Pulumi CLI v3\.218\.9 is too old: this program needs 3\.219\.0 or later/);
        assert.match(result.stderr, /API 1\.43; this program needs API 1\.44 \(Docker Engine 25\)/);
    });

    test("says when the engine does not answer", () => {
        const result = preflight({ pulumi: "echo v3.248.0", docker: "echo 'Cannot connect to the Docker daemon' >&2; exit 1" });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /no Docker Engine answers \(Cannot connect to the Docker daemon\): start it, or set DOCKER_HOST/);
        assert.doesNotMatch(result.stderr, /Pulumi/);
    });
});
