import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";

test("index.ts compiles and starts under the Pulumi language host's ts-node (type-checked)", () => {
    // The language host registers its vendored ts-node with the project's TypeScript.
    // Without an engine or config, the program must get as far as config validation.
    const script = `
        require(require.resolve("@pulumi/pulumi/vendor/ts-node@7.0.1")).register({ compiler: "typescript", project: "tsconfig.json" });
        try { require("./index.ts"); } catch (error) { console.log(error.name + ": " + error.message); }`;
    const result = spawnSync(process.execPath, ["-e", script], { cwd: path.join(__dirname, ".."), encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^ConfigError: invalid configuration \(1 problem\):\n {2}- calendars-caldav:postgresAdminPassword is required/);
});
