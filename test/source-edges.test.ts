// Fetching the Calendars source: full ref names, git's precedence of tags over
// branches, a ref that moves during the fetch, what the cache is left holding, and
// how git is run (never prompting). A `git` wrapper on PATH stands in for a moving
// remote, then runs the real git.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { fetchSource, SourceError } from "../components/source";
import { createUpstreamRepo, tempDir } from "./fixtures";

const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();

/** Every directory below `dir`, relative. */
function tree(dir: string): string[] {
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => path.relative(dir, path.join(entry.parentPath ?? (entry as any).path, entry.name)));
}

/**
 * Runs `body` with a `git` on PATH that logs each call's GIT_TERMINAL_PROMPT, runs
 * `beforeFetch` (shell) before a fetch, then runs the real git.
 */
async function withGitWrapper<T>(options: { beforeFetch?: string }, body: (log: string) => Promise<T>): Promise<T> {
    const bin = tempDir("git-wrapper");
    const log = path.join(bin, "calls.log");
    fs.writeFileSync(path.join(bin, "git"), [
        "#!/bin/sh",
        `printf '%s %s\\n' "\${GIT_TERMINAL_PROMPT-unset}" "$1" >> '${log}'`,
        options.beforeFetch ? `if [ "$1" = fetch ]; then ${options.beforeFetch}; fi` : "",
        `exec '${REAL_GIT}' "$@"`,
        "",
    ].join("\n"), { mode: 0o755 });
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
        return await body(log);
    } finally {
        process.env.PATH = saved;
    }
}

describe("source fetch: refs, cache and git", () => {
    test("a full ref name is looked up as it is", async () => {
        const repo = createUpstreamRepo();
        const tag = await fetchSource({ repo: repo.url, ref: "refs/tags/v0.1.0", cacheDir: tempDir("cache") });
        assert.equal(tag.commit, repo.tagged);
        const branch = await fetchSource({ repo: repo.url, ref: "refs/heads/old-layout", cacheDir: tempDir("cache") });
        assert.equal(branch.commit, repo.oldLayout);
        assert.ok(fs.existsSync(path.join(branch.dir, "docker/sabredav/Dockerfile")));
    });

    test("a tag wins over a branch of the same name, as in git", async () => {
        const repo = createUpstreamRepo();
        execFileSync("git", ["--git-dir", repo.dir, "update-ref", "refs/heads/v0.1.0", repo.main]);
        const checkout = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir: tempDir("cache") });
        assert.equal(checkout.commit, repo.tagged);
        assert.notEqual(repo.tagged, repo.main);
    });

    test("the cache holds one directory per commit and no half-fetched leftovers", async () => {
        const repo = createUpstreamRepo();
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: repo.url, ref: "main", cacheDir });
        const second = await fetchSource({ repo: repo.url, ref: "old-layout", cacheDir });
        await assert.rejects(fetchSource({ repo: repo.url, ref: "0".repeat(40), cacheDir }), SourceError);
        const repoDir = path.dirname(first.dir);
        assert.equal(path.dirname(second.dir), repoDir);
        assert.deepEqual(fs.readdirSync(repoDir).sort(), [repo.main, repo.oldLayout].sort());
        assert.ok(tree(cacheDir).every((dir) => !dir.includes(".fetch-")), tree(cacheDir).join(" "));
    });

    test("a ref that moves while it is fetched fails, naming both commits, and leaves nothing under the commit's name", async () => {
        const repo = createUpstreamRepo();
        const cacheDir = tempDir("cache");
        const move = `'${REAL_GIT}' --git-dir '${repo.dir}' update-ref refs/heads/main ${repo.oldLayout}`;
        const error = await withGitWrapper({ beforeFetch: move }, () => fetchSource({ repo: repo.url, ref: "main", cacheDir }).then(
            () => assert.fail("expected the fetch to fail"),
            (e: Error) => e,
        ));
        assert.ok(error instanceof SourceError, String(error));
        assert.match(error.message, new RegExp(`source\\.ref main of source\\.repo ${repo.url} moved while it was fetched \\(${repo.main} -> ${repo.oldLayout}\\); run again`));
        const dirs = fs.readdirSync(cacheDir).flatMap((digest) => fs.readdirSync(path.join(cacheDir, digest)));
        assert.deepEqual(dirs, [], "neither the commit's directory nor a staging one");
    });

    test("git never prompts for credentials", async () => {
        const repo = createUpstreamRepo();
        const checkout = await withGitWrapper({}, async (log) => {
            const result = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir: tempDir("cache") });
            const calls = fs.readFileSync(log, "utf8").trim().split("\n");
            assert.ok(calls.length >= 4, calls.join("\n"));
            assert.deepEqual(calls.filter((call) => !call.startsWith("0 ")), [], "GIT_TERMINAL_PROMPT=0 on every call");
            return result;
        });
        assert.equal(checkout.commit, repo.tagged);
    });
});
