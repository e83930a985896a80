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

function git(dir: string, ...args: string[]): string {
    return execFileSync("git", args, {
        cwd: dir,
        encoding: "utf8",
        env: {
            ...process.env,
            GIT_AUTHOR_NAME: "test", GIT_AUTHOR_EMAIL: "test@example.org",
            GIT_COMMITTER_NAME: "test", GIT_COMMITTER_EMAIL: "test@example.org",
        },
    }).trim();
}

export interface UpstreamRepo {
    url: string;
    dir: string;
    /** Commit tagged v0.1.0 (annotated tag). */
    tagged: string;
    /** Tip of main. */
    main: string;
    /** Tip of branch `old-layout`, whose server lives in docker/sabredav. */
    oldLayout: string;
    commit(message: string): string;
}

/** A small stand-in for the Calendars repository, on disk, reached through file://. */
export function createUpstreamRepo(): UpstreamRepo {
    const dir = tempDir("upstream");
    git(dir, "init", "--quiet", "--initial-branch", "main");
    const write = (file: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
    };
    const commit = (message: string) => {
        write("src/caldav/VERSION", `${message}\n`);
        git(dir, "add", "--all");
        git(dir, "commit", "--quiet", "--message", message);
        return git(dir, "rev-parse", "HEAD");
    };
    write("src/caldav/Dockerfile", "FROM php:8.5-apache-bookworm\n");
    const tagged = commit("first");
    git(dir, "tag", "--annotate", "v0.1.0", "--message", "v0.1.0");
    git(dir, "checkout", "--quiet", "-b", "old-layout");
    git(dir, "rm", "--quiet", "-r", "src");
    write("docker/sabredav/Dockerfile", "FROM php:8.2-apache-bookworm\n");
    git(dir, "add", "--all");
    git(dir, "commit", "--quiet", "--message", "old layout");
    const oldLayout = git(dir, "rev-parse", "HEAD");
    git(dir, "checkout", "--quiet", "main");
    const main = commit("second");
    return { url: `file://${dir}`, dir, tagged, main, oldLayout, commit };
}

let shared: { repo: UpstreamRepo; cacheDir: string } | undefined;

/** `source` config pointing at one on-disk upstream repo per test process (never the network). */
export function localSource(): { repo: string; cacheDir: string } {
    shared ??= { repo: createUpstreamRepo(), cacheDir: tempDir("cache") };
    return { repo: shared.repo.url, cacheDir: shared.cacheDir };
}

export function localUpstream(): UpstreamRepo {
    localSource();
    return shared!.repo;
}
