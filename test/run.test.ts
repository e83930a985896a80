// The unit suite's own runner (test/run.ts): how it shares the files out, and that
// a failing, unloadable or crashing file fails `npm test`.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "./fixtures";
import { shareOut } from "./run";

const ROOT = path.join(__dirname, "..");
const file = (name: string) => path.join(ROOT, "test", `${name}.test.ts`);
const names = (shares: string[][]) => shares.map((share) => share.map((f) => path.basename(f, ".test.ts")));

/** Runs `npm test -- <files>` (the runner as package.json starts it) outside this test run. */
function runner(files: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const env = { ...process.env };
    // Set by node's runner in its test processes: a nested run() would refuse to start.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ["--require", "tsx/cjs", path.join(__dirname, "run.ts"), ...files], { cwd: ROOT, env });
    let [stdout, stderr] = ["", ""];
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
}

describe("npm test's runner", () => {
    test("shares the files out by their last durations, longest first to the least loaded process, each file once", () => {
        const files = ["a", "b", "c", "d", "e"].map(file);
        const durations = { "test/a.test.ts": 10, "test/b.test.ts": 6, "test/c.test.ts": 5, "test/d.test.ts": 1, "test/e.test.ts": 2 };
        // a (10) | b (6) + c (5) = 11 | then d and e to the lighter: a + e (12), then d to b + c (12). Name order in a share.
        assert.deepEqual(names(shareOut(files, 2, durations)), [["a", "e"], ["b", "c", "d"]]);
        assert.deepEqual(names(shareOut(files, 3, durations)), [["a"], ["b", "d"], ["c", "e"]]);
    });

    test("without durations, shares the files out in turn by name; a new file counts as the mean of the others", () => {
        const files = ["a", "b", "c", "d", "e"].map(file);
        assert.deepEqual(names(shareOut(files, 2, {})), [["a", "c", "e"], ["b", "d"]]);
        // e is new: it weighs (9 + 1 + 1 + 1) / 4 = 3; a (9) alone, the others together (6).
        const durations = { "test/a.test.ts": 9, "test/b.test.ts": 1, "test/c.test.ts": 1, "test/d.test.ts": 1 };
        assert.deepEqual(names(shareOut(files, 2, durations)), [["a"], ["b", "c", "d", "e"]]);
    });

    test("never makes more processes than files, nor an empty one", () => {
        assert.deepEqual(names(shareOut([file("a")], 4, {})), [["a"]]);
        assert.deepEqual(shareOut([], 2, {}), []);
    });

    test("exits 0 when every test passes, 1 when a test fails, a file cannot load, or a process ends early", async () => {
        const dir = tempDir("runner");
        const write = (name: string, text: string) => {
            fs.writeFileSync(path.join(dir, name), text);
            return path.join(dir, name);
        };
        const passes = write("passes.test.js", 'require("node:test").test("a passing test", () => {});\n');
        const fails = write("fails.test.js", 'require("node:test").test("a failing test", () => { throw new Error("expected failure"); });\n');
        const unloadable = write("unloadable.test.js", 'throw new Error("this file does not load");\n');
        const exits = write("exits.test.js", 'require("node:test").test("a test that ends the process", () => process.exit(3));\n');

        const [passing, failing, crashing] = await Promise.all([runner([passes]), runner([passes, fails, unloadable]), runner([exits])]);
        assert.equal(passing.status, 0, passing.stdout + passing.stderr);
        assert.match(passing.stdout, /^ok \d+ - .*passes\.test\.js$/m);

        assert.equal(failing.status, 1, failing.stdout + failing.stderr);
        assert.match(failing.stdout, /^ok \d+ - .*passes\.test\.js$/m, "the passing file still runs");
        assert.match(failing.stdout, /^not ok \d+ - .*fails\.test\.js$/m);
        assert.match(failing.stdout, /^not ok \d+ - .*unloadable\.test\.js$/m);
        assert.match(failing.stdout, /error: 'this file does not load'/);

        assert.equal(crashing.status, 1, crashing.stdout + crashing.stderr);
        assert.match(crashing.stderr, /the process running .*exits\.test\.js ended before its tests did/);
    });
});
