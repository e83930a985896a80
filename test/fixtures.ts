import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const created: string[] = [];
process.on("exit", () => created.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** A temporary directory, removed when the test process exits. */
export function tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `caldav-test-${prefix}-`));
    created.push(dir);
    return dir;
}

const IDENTITY = "test <test@example.org>";

function git(dir: string, args: string[], input?: string): string {
    return execFileSync("git", args, { cwd: dir, encoding: "utf8", input }).trim();
}

export interface UpstreamRepo {
    url: string;
    /** The repository (bare: it is only ever fetched from). */
    dir: string;
    /** Commit tagged v0.1.0 (annotated tag). */
    tagged: string;
    /** Tip of main. */
    main: string;
    /** Tip of branch `old-layout`, whose server lives in docker/sabredav. */
    oldLayout: string;
    /** Commits `message` on main, as the new content of src/caldav/VERSION; returns its SHA. */
    commit(message: string): string;
}

/** `git fast-import` input: a data block (byte-counted). */
function data(text: string): string {
    return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

/**
 * Writes commits and tags with one `git fast-import` (a git process per
 * fixture, not one per command: a test process makes several fixtures) and
 * returns the SHA of each mark asked for, in order.
 */
function fastImport(dir: string, stream: string, marks: number[]): string[] {
    const output = git(dir, ["fast-import", "--quiet", "--done"], `${stream}${marks.map((mark) => `get-mark :${mark}\n`).join("")}done\n`);
    const shas = output.split("\n").filter(Boolean);
    if (shas.length !== marks.length || !shas.every((sha) => /^[0-9a-f]{40}$/.test(sha))) {
        throw new Error(`git fast-import in ${dir} printed ${JSON.stringify(output)}`);
    }
    return shas;
}

function commitHeader(ref: string, mark: number, message: string): string {
    const when = `${Math.floor(Date.now() / 1000)} +0000`;
    return `commit ${ref}\nmark :${mark}\nauthor ${IDENTITY} ${when}\ncommitter ${IDENTITY} ${when}\n${data(message)}`;
}

/**
 * A small stand-in for the Calendars repository, on disk, reached through file://:
 * main has two commits (the first tagged v0.1.0, annotated), each writing its
 * message to src/caldav/VERSION next to src/caldav/Dockerfile; branch
 * old-layout, off the first, moves the server to docker/sabredav.
 */
export function createUpstreamRepo(): UpstreamRepo {
    const dir = tempDir("upstream");
    git(dir, ["init", "--quiet", "--bare", "--initial-branch", "main"]);
    const version = (message: string) => `M 100644 inline src/caldav/VERSION\n${data(`${message}\n`)}`;
    const [tagged, oldLayout, main] = fastImport(dir, [
        commitHeader("refs/heads/main", 1, "first"),
        `M 100644 inline src/caldav/Dockerfile\n${data("FROM php:8.5-apache-bookworm\n")}`,
        version("first"),
        `tag v0.1.0\nfrom :1\ntagger ${IDENTITY} ${Math.floor(Date.now() / 1000)} +0000\n${data("v0.1.0\n")}`,
        commitHeader("refs/heads/old-layout", 2, "old layout"),
        "from :1\nD src\n",
        `M 100644 inline docker/sabredav/Dockerfile\n${data("FROM php:8.2-apache-bookworm\n")}`,
        commitHeader("refs/heads/main", 3, "second"),
        "from :1\n",
        version("second"),
    ].join(""), [1, 2, 3]);
    const commit = (message: string) => fastImport(dir, `${commitHeader("refs/heads/main", 1, message)}from refs/heads/main^0\n${version(message)}`, [1])[0];
    return { url: `file://${dir}`, dir, tagged, main, oldLayout, commit };
}

let shared: { repo: UpstreamRepo; cacheDir: string } | undefined;

/**
 * `source` config for one on-disk upstream repo per test process (never the
 * network), at the full SHA of its main: git resolves no ref (source.test.ts
 * tests that), and no test can move what another evaluates.
 */
export function localSource(): { repo: string; ref: string; cacheDir: string } {
    shared ??= { repo: createUpstreamRepo(), cacheDir: tempDir("cache") };
    return { repo: shared.repo.url, ref: shared.repo.main, cacheDir: shared.cacheDir };
}

/** Commits `files` (path -> content) on main of `repo`, on top of its tip; returns the new commit's SHA. */
export function commitFiles(repo: UpstreamRepo, files: Record<string, string>, message = "files"): string {
    const changes = Object.entries(files).map(([file, content]) => `M 100644 inline ${file}\n${data(content)}`).join("");
    return fastImport(repo.dir, `${commitHeader("refs/heads/main", 1, message)}from refs/heads/main^0\n${changes}`, [1])[0];
}
