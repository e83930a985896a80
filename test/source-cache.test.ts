// The source cache (source.cacheDir) as the image build relies on it: a checkout is
// reused only when it holds exactly its commit's files, nothing else (the whole
// directory is the build context).
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, mock, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fetchSource } from "../components/source";
import { commitFiles, createUpstreamRepo, tempDir } from "./fixtures";

/** Runs `body` with pulumi.log.warn recorded (and not printed); returns the warnings. */
async function warningsOf(body: () => Promise<unknown>): Promise<string[]> {
    const warn = mock.method(pulumi.log, "warn", async () => undefined);
    try {
        await body();
        return warn.mock.calls.map((call) => String(call.arguments[0]));
    } finally {
        warn.mock.restore();
    }
}

describe("source cache: what a reused checkout may hold", () => {
    test("a file the upstream .gitignore matches, added to a cached checkout, makes it fetched again, saying so", async () => {
        const upstream = createUpstreamRepo();
        const commit = commitFiles(upstream, { ".gitignore": ".env\n" });
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: upstream.url, ref: commit, cacheDir });
        const stray = path.join(first.dir, "src/caldav/.env");
        fs.writeFileSync(stray, "SECRET=not-for-the-image\n");
        assert.equal(execFileSync("git", ["status", "--porcelain"], { cwd: first.dir, encoding: "utf8" }), "", "git status alone does not show it");
        let second: Awaited<ReturnType<typeof fetchSource>> | undefined;
        const warnings = await warningsOf(async () => {
            second = await fetchSource({ repo: upstream.url, ref: commit, cacheDir });
        });
        assert.equal(second?.dir, first.dir, "the same directory: the build context path is an input of the image");
        assert.ok(!fs.existsSync(stray), "the ignored file would be in the build context");
        assert.equal(fs.readFileSync(path.join(first.dir, "src/caldav/VERSION"), "utf8"), "second\n");
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(warnings[0], new RegExp(`^source\\.cacheDir: ${first.dir} .*src/caldav/\\.env.*fetching it again`, "s"));
    });

    test("an untracked file is noticed whatever the user's git config hides, as are empty and nested-repository directories", async () => {
        const upstream = createUpstreamRepo();
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: upstream.url, ref: upstream.main, cacheDir });
        const config = path.join(tempDir("gitconfig"), "config");
        fs.writeFileSync(config, "[status]\n\tshowUntrackedFiles = no\n");
        const saved = process.env.GIT_CONFIG_GLOBAL;
        process.env.GIT_CONFIG_GLOBAL = config;
        try {
            for (const add of [
                (dir: string) => fs.writeFileSync(path.join(dir, "src/caldav/stray.php"), "<?php\n"),
                (dir: string) => fs.mkdirSync(path.join(dir, "src/caldav/empty/.cache"), { recursive: true }),
                (dir: string) => execFileSync("git", ["init", "--quiet", path.join(dir, "src/caldav/vendor")]),
            ]) {
                add(first.dir);
                const before = fs.readdirSync(path.join(first.dir, "src/caldav")).sort();
                await warningsOf(() => fetchSource({ repo: upstream.url, ref: upstream.main, cacheDir }));
                assert.deepEqual(fs.readdirSync(path.join(first.dir, "src/caldav")).sort(), ["Dockerfile", "VERSION"], `was: ${before.join(" ")}`);
            }
        } finally {
            if (saved === undefined) {
                delete process.env.GIT_CONFIG_GLOBAL;
            } else {
                process.env.GIT_CONFIG_GLOBAL = saved;
            }
        }
    });
});
