// The source cache (source.cacheDir) as the image build relies on it: a checkout is
// reused only when it holds exactly its commit's files, nothing else (the whole
// directory is the build context); runs of several stacks may share the cache at
// once; a run killed while it fetches leaves nothing that a later run takes for a
// checkout, or keeps.
//
// Runs at once are child processes, ordered without sleeps: a `git` on their PATH
// holds the first `git fetch` of all until the test lets it go (a "gate": it
// connects to a server of the test and waits for a byte).
import * as assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { describe, mock, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { fetchSource, SourceError } from "../components/source";
import { commitFiles, createUpstreamRepo, tempDir } from "./fixtures";

const ROOT = path.join(__dirname, "..");
const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();

interface Gate {
    /** Directory to put first on a child's PATH. */
    bin: string;
    /** Resolves when the first `git fetch` has started and is held. */
    reached: Promise<void>;
    /** Lets the held fetch go on. */
    release(): void;
    /** How many `git fetch` ran. */
    fetches(): number;
    close(): void;
}

async function gate(): Promise<Gate> {
    const bin = tempDir("git-gate");
    const held: net.Socket[] = [];
    let reached!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const server = net.createServer((socket) => {
        held.push(socket);
        reached();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    fs.writeFileSync(path.join(bin, "gate.js"), [
        `const socket = require("net").connect(${port}, "127.0.0.1");`,
        "socket.on(\"data\", () => process.exit(0));",
        "socket.on(\"close\", () => process.exit(1));",
        "",
    ].join("\n"));
    fs.writeFileSync(path.join(bin, "git"), [
        "#!/bin/sh",
        "if [ \"$1\" = fetch ]; then",
        `    echo fetch >> '${bin}/fetches.log'`,
        `    if mkdir '${bin}/first' 2>/dev/null; then '${process.execPath}' '${bin}/gate.js' || exit 1; fi`,
        "fi",
        `exec '${REAL_GIT}' "$@"`,
        "",
    ].join("\n"), { mode: 0o755 });
    return {
        bin,
        reached: reachedPromise,
        release: () => held.forEach((socket) => socket.end("go")),
        fetches: () => (fs.existsSync(path.join(bin, "fetches.log")) ? fs.readFileSync(path.join(bin, "fetches.log"), "utf8").split("\n").filter(Boolean).length : 0),
        close: () => {
            held.forEach((socket) => socket.destroy());
            server.close();
        },
    };
}

interface Result {
    commit: string;
    dir: string;
    /** Inode of the checkout's directory when fetchSource returned: the same directory, not only the same path. */
    ino: number;
}

interface Run {
    child: ChildProcess;
    stdout(): string;
    /** Resolves when `predicate` holds for the run's output so far, or when the run has ended. */
    until(predicate: (stdout: string) => boolean): Promise<void>;
    /** The exit code (null when killed). */
    exited: Promise<number | null>;
    /** What fetchSource returned, once the run has ended; fails when it failed. */
    result(): Promise<Result>;
}

let runner: string | undefined;

/** fetchSource(spec) in a process of its own, with `bin` first on its PATH. */
function runFetch(spec: { repo: string; ref: string; cacheDir: string }, bin: string, options: { detached?: boolean } = {}): Run {
    runner ??= path.join(tempDir("runner"), "fetch.js");
    fs.writeFileSync(runner, [
        "const fs = require(\"fs\");",
        `const { fetchSource } = require(${JSON.stringify(path.join(ROOT, "components", "source.ts"))});`,
        "fetchSource(JSON.parse(process.argv[2])).then(",
        "    (c) => console.log(`RESULT ${JSON.stringify({ ...c, ino: fs.statSync(c.dir).ino })}`),",
        "    (e) => { console.error(e.message); process.exitCode = 1; });",
        "",
    ].join("\n"));
    const child = spawn(process.execPath, ["--require", "tsx/cjs", runner, JSON.stringify(spec)], {
        cwd: ROOT,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        detached: options.detached ?? false,
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const watchers: Array<() => void> = [];
    child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        watchers.forEach((watch) => watch());
    });
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    return {
        child,
        stdout: () => stdout,
        until: (predicate) => new Promise<void>((resolve) => {
            watchers.push(() => predicate(stdout) && resolve());
            if (predicate(stdout)) {
                resolve();
            }
            void exited.then(() => resolve());
        }),
        exited,
        result: async () => {
            const code = await exited;
            const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
            assert.ok(code === 0 && line, `the run failed (exit ${code}):\n${stdout}${stderr}`);
            return JSON.parse(line.slice("RESULT ".length)) as Result;
        },
    };
}

/** Resolves when the gate holds a fetch of `run`; fails if the run ends first. */
async function held(gateway: Gate, run: Run): Promise<void> {
    await Promise.race([
        gateway.reached,
        run.exited.then(async () => assert.fail(`the run ended before it fetched:\n${run.stdout()}`)),
    ]);
}

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

describe("source cache: where it is", () => {
    test("a source.cacheDir that cannot hold checkouts is an error naming it and the fix", async () => {
        const upstream = createUpstreamRepo();
        const file = path.join(tempDir("cache"), "a-file");
        fs.writeFileSync(file, "");
        await assert.rejects(
            fetchSource({ repo: upstream.url, ref: upstream.main, cacheDir: path.join(file, "sources") }),
            (error: Error) => error instanceof SourceError &&
                error.message.startsWith(`source.cacheDir ${path.join(file, "sources")} cannot hold checkouts: `) &&
                error.message.endsWith("; set source.cacheDir to a directory this user can write to."),
        );
    });
});

describe("source cache: runs at once", () => {
    test("two runs fetching the same commit at once: one fetches, the other waits and gets that checkout, which nothing removes", { timeout: 120_000 }, async () => {
        const upstream = createUpstreamRepo();
        const spec = { repo: upstream.url, ref: upstream.main, cacheDir: tempDir("cache") };
        const gateway = await gate();
        try {
            const first = runFetch(spec, gateway.bin);
            await held(gateway, first);
            // The first holds its fetch; the second starts, and either waits or ends.
            const second = runFetch(spec, gateway.bin);
            await second.until((stdout) => stdout.includes("waiting for"));
            gateway.release();
            const [a, b] = [await first.result(), await second.result()];
            assert.equal(a.commit, upstream.main);
            assert.equal(b.dir, a.dir);
            assert.equal(b.ino, a.ino, "the second run got the first one's checkout, not one that replaced it");
            assert.equal(fs.statSync(a.dir).ino, a.ino, "the checkout the first run returned (and may build from) is still there");
            assert.equal(gateway.fetches(), 1, "fetched once");
            assert.match(second.stdout(), new RegExp(`source\\.cacheDir: waiting for process ${first.child.pid} on .*, which is fetching commit ${upstream.main}`));
            assert.equal(fs.readFileSync(path.join(a.dir, "src/caldav/VERSION"), "utf8"), "second\n");
            assert.equal(execFileSync("git", ["clean", "-ndffx"], { cwd: a.dir, encoding: "utf8" }), "");
            assert.deepEqual(fs.readdirSync(path.dirname(a.dir)), [upstream.main], "nothing else left in the cache");
        } finally {
            gateway.close();
        }
    });
});

describe("source cache: interrupted runs", () => {
    test("a run killed while it fetches leaves no checkout under the commit's name; the next run fetches it and clears what the killed one left", { timeout: 120_000 }, async () => {
        const upstream = createUpstreamRepo();
        const spec = { repo: upstream.url, ref: upstream.main, cacheDir: tempDir("cache") };
        const gateway = await gate();
        try {
            // Its own process group: the kill takes git and the gate with it, as a Ctrl-C or a stopped CI job would.
            const killed = runFetch(spec, gateway.bin, { detached: true });
            await held(gateway, killed);
            process.kill(-killed.child.pid!, "SIGKILL");
            assert.equal(await killed.exited, null);
        } finally {
            gateway.close();
        }
        const [digest] = fs.readdirSync(spec.cacheDir);
        const repoDir = path.join(spec.cacheDir, digest);
        const left = fs.readdirSync(repoDir);
        assert.ok(!left.includes(upstream.main), `a half-fetched directory under the commit's name: ${left.join(" ")}`);
        assert.ok(left.some((name) => name.startsWith(".fetch-")), `the killed run's fetch: ${left.join(" ")}`);
        const checkout = await fetchSource(spec);
        assert.equal(checkout.commit, upstream.main);
        assert.equal(fs.readFileSync(path.join(checkout.dir, "src/caldav/VERSION"), "utf8"), "second\n");
        assert.deepEqual(fs.readdirSync(repoDir), [upstream.main], "what the killed run left is gone");
    });

    test("what ended runs left is never taken for a checkout, and a later run clears it; a live run's lock and fetch stay", async () => {
        const upstream = createUpstreamRepo();
        const cacheDir = tempDir("cache");
        const other = await fetchSource({ repo: upstream.url, ref: upstream.oldLayout, cacheDir });
        const repoDir = path.dirname(other.dir);
        // As the layout comment in components/source.ts describes them.
        const ended = spawnSync(process.execPath, ["-e", ""]).pid;
        const lock = (name: string, pid: number) => {
            fs.mkdirSync(path.join(repoDir, name));
            fs.writeFileSync(path.join(repoDir, name, "owner"), JSON.stringify({ pid, host: os.hostname(), id: `${name}-k1ll3d` }));
        };
        const leftovers = (commit: string) => {
            // A run killed in git fetch: its lock, and the checkout it was fetching.
            lock(`.lock-${commit}`, ended);
            execFileSync("git", ["init", "--quiet", path.join(repoDir, `.fetch-${commit}-k1ll3d`)]);
            // One killed while it took a lock, and one while it removed a directory.
            lock(`.lock-${commit}-t4k1ng`, ended);
            fs.mkdirSync(path.join(repoDir, ".trash-0123456789abcdef", "src"), { recursive: true });
        };
        leftovers(upstream.main);
        leftovers(upstream.tagged);
        // Under main's own name, a checkout that never got its files (as a clone in place leaves it).
        const partial = path.join(repoDir, upstream.main);
        execFileSync("git", ["init", "--quiet", partial]);
        execFileSync("git", ["fetch", "--quiet", "--depth", "1", upstream.url, upstream.main], { cwd: partial });
        // A run still going (PID 1 always is): its lock and its fetch stay.
        const live = "f".repeat(40);
        lock(`.lock-${live}`, 1);
        fs.mkdirSync(path.join(repoDir, `.fetch-${live}-l1v3ab`));

        const warnings = await warningsOf(async () => {
            const checkout = await fetchSource({ repo: upstream.url, ref: "main", cacheDir });
            assert.equal(checkout.dir, partial);
            assert.equal(fs.readFileSync(path.join(checkout.dir, "src/caldav/VERSION"), "utf8"), "second\n");
            assert.equal(execFileSync("git", ["clean", "-ndffx"], { cwd: checkout.dir, encoding: "utf8" }), "");
        });
        assert.match(warnings.join("\n"), new RegExp(`^source\\.cacheDir: ${partial} is not a clean checkout of commit ${upstream.main} \\(it is at no commit\\)`));
        const kept = [`.fetch-${live}-l1v3ab`, `.lock-${live}`];
        assert.deepEqual(fs.readdirSync(repoDir).sort(), [upstream.main, upstream.oldLayout, ...kept].sort());

        // A run that finds its checkout clean clears them too.
        leftovers(upstream.tagged);
        await fetchSource({ repo: upstream.url, ref: upstream.oldLayout, cacheDir });
        assert.deepEqual(fs.readdirSync(repoDir).sort(), [upstream.main, upstream.oldLayout, ...kept].sort());
    });
});
