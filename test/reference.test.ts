// The repository documents itself: the README's reference matches what the program
// reads and exports, and no file points outside the repository.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { CONFIG_KEYS } from "../components/config";

const ROOT = path.join(__dirname, "..");
const README = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

/** First-column `code` names of the table under a `## heading` of the README. */
function tableNames(heading: string): string[] {
    const section = README.split(/^## /m).find((part) => part.startsWith(`${heading}\n`));
    assert.ok(section, `README.md has a "## ${heading}" section`);
    const rows = section.split("\n").filter((line) => /^\| `/.test(line));
    assert.ok(rows.length > 0, `the "${heading}" section has a table`);
    return rows.flatMap((row) => [...row.split("|")[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]));
}

describe("reference", () => {
    test("README's configuration table lists every key the program reads, and no other", () => {
        const documented = tableNames("Configuration").sort();
        assert.deepEqual(documented, [...CONFIG_KEYS].sort());
    });

    test("README's outputs table lists every stack output, and no other", () => {
        const index = fs.readFileSync(path.join(ROOT, "index.ts"), "utf8");
        const exported = [...index.matchAll(/^export const (\w+)/gm)].map((m) => m[1]).sort();
        assert.ok(exported.length > 0);
        assert.deepEqual(tableNames("Outputs").sort(), exported);
    });

    test("no tracked file points outside the repository", () => {
        const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean);
        const outside = files.filter((file) => fs.existsSync(path.join(ROOT, file)) &&
            /\.\.\/shared\//.test(fs.readFileSync(path.join(ROOT, file), "utf8")));
        assert.deepEqual(outside, []);
    });
});
