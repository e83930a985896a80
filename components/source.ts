import { execFile } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import * as pulumi from "@pulumi/pulumi";

const run = promisify(execFile);
/** A full commit SHA: fetched as is; anything else is resolved as a branch or tag. */
export const FULL_SHA = /^[0-9a-f]{40}$/;

export interface SourceSpec {
    repo: string;
    ref: string;
    cacheDir: string;
}

export interface SourceCheckout {
    /** Commit the checkout is at. */
    commit: string;
    /** Root of the checked-out work tree, inside the cache. */
    dir: string;
}

/** A RunError: Pulumi prints its message without a stack trace. */
export class SourceError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "SourceError";
    }
}

/**
 * source.repo split for git: the URL without credentials (what git's arguments and every
 * message show) and, for an http(s) URL that carried some, the user and password, which
 * git gets from a credential helper that reads them from its environment (never argv).
 */
export function withoutCredentials(repo: string): { url: string; username?: string; password?: string } {
    const match = /^(https?:\/\/)([^@/]*)@(.*)$/i.exec(repo);
    if (!match) {
        return { url: repo };
    }
    const [user, ...password] = match[2].split(":");
    return { url: `${match[1]}${match[3]}`, username: decodeURIComponent(user), password: decodeURIComponent(password.join(":")) };
}

// Answers git's `get` from the environment; the secret values never reach a command line.
const CREDENTIAL_HELPER = '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "$CALDAV_GIT_USERNAME" "$CALDAV_GIT_PASSWORD"; }; f';

async function git(args: string[], cwd?: string, credentials: { username?: string; password?: string } = {}): Promise<string> {
    const helper = credentials.username !== undefined
        ? ["-c", "credential.helper=", "-c", `credential.helper=${CREDENTIAL_HELPER}`]
        : [];
    const { stdout } = await run("git", [...helper, ...args], {
        cwd,
        // Never wait on a credential prompt: fail with git's message instead.
        env: {
            ...process.env,
            GIT_TERMINAL_PROMPT: "0",
            ...(credentials.username !== undefined && { CALDAV_GIT_USERNAME: credentials.username, CALDAV_GIT_PASSWORD: credentials.password ?? "" }),
        },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 10 * 60 * 1000,
    });
    return stdout.trim();
}

/** git's own words, without any credentials it may quote from a URL. */
function gitMessage(error: unknown): string {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    return (stderr || (error as Error).message).replace(/(https?:\/\/)[^@/\s']*@/gi, "$1");
}

/** Full ref names a short ref may stand for, in git's own precedence (tags before branches). */
function candidateRefs(ref: string): string[] {
    return ref.startsWith("refs/") ? [ref] : [`refs/tags/${ref}`, `refs/heads/${ref}`];
}

/** Resolves `ref` to a commit SHA and the ref name to fetch, asking the remote (no clone). */
async function resolveRef(spec: SourceSpec): Promise<{ commit: string; fetchRef: string }> {
    if (FULL_SHA.test(spec.ref)) {
        return { commit: spec.ref, fetchRef: spec.ref };
    }
    const candidates = candidateRefs(spec.ref);
    const { url, ...credentials } = withoutCredentials(spec.repo);
    let listing: string;
    try {
        listing = await git(["ls-remote", "--", url, ...candidates.flatMap((c) => [c, `${c}^{}`])], undefined, credentials);
    } catch (error) {
        throw new SourceError(
            `could not read source.repo ${url}: ${gitMessage(error)}\n` +
                "Check the URL, network access and credentials (git must reach it without a prompt).",
        );
    }
    const remote = new Map(listing.split("\n").filter(Boolean).map((line) => {
        const [sha, name] = line.split("\t");
        return [name, sha] as const;
    }));
    for (const candidate of candidates) {
        // An annotated tag points at a tag object; `^{}` is the commit it tags.
        const commit = remote.get(`${candidate}^{}`) ?? remote.get(candidate);
        if (commit) {
            return { commit, fetchRef: candidate };
        }
    }
    throw new SourceError(
        `source.ref ${spec.ref} is not a branch or tag of source.repo ${url}; ` +
            "set source.ref to an existing branch, tag or full 40-character commit SHA.",
    );
}

function repoCacheDir(spec: SourceSpec): string {
    const digest = createHash("sha256").update(spec.repo).digest("hex").slice(0, 16);
    return path.join(spec.cacheDir, digest);
}

/** What a directory in the cache holds, for the commit it is named after. */
type Cached = { state: "clean" } | { state: "missing" } | { state: "stale"; why: string };

/** Paths for a message: the first few, and how many more. */
function somePaths(paths: string[]): string {
    return paths.slice(0, 3).join(", ") + (paths.length > 3 ? ` and ${paths.length - 3} more` : "");
}

/**
 * Whether `dir` is a checkout of `commit` holding exactly that commit's files, and
 * nothing else: the whole directory is the image's build context. git status (with
 * --untracked-files=no, whatever the user's config says) gives the checked-out commit
 * and the changed files; git clean -ndffx every other file or directory, ignored ones,
 * empty directories and nested repositories included. Neither writes to the checkout
 * (no index refresh), so a run checking never disturbs one building from it.
 */
async function inspect(dir: string, commit: string): Promise<Cached> {
    if (!fs.existsSync(dir)) {
        return { state: "missing" };
    }
    if (!fs.existsSync(path.join(dir, ".git"))) {
        return { state: "stale", why: "it is not a git checkout" };
    }
    let status: string;
    let extra: string;
    try {
        [status, extra] = await Promise.all([
            git(["--no-optional-locks", "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=no"], dir),
            git(["-c", "core.quotePath=false", "clean", "-n", "-d", "-ff", "-x"], dir),
        ]);
    } catch (error) {
        return { state: "stale", why: `git cannot read it: ${gitMessage(error)}` };
    }
    const records = status.split("\0").filter(Boolean);
    const head = records.map((record) => /^# branch\.oid (\S+)$/.exec(record)?.[1]).find(Boolean);
    if (head !== commit) {
        return { state: "stale", why: `it is at ${head && head !== "(initial)" ? `commit ${head}` : "no commit"}` };
    }
    // Changed entries: `1 XY sub mH mI mW hH hI path`, `2 ... Xscore path` then the
    // original path as a record of its own, `u ... h3 path`.
    const changed: string[] = [];
    for (let i = 0; i < records.length; i++) {
        const fields = records[i].split(" ");
        const pathAt = ({ "1": 8, "2": 9, u: 10 } as Record<string, number | undefined>)[fields[0]];
        if (pathAt !== undefined) {
            changed.push(fields.slice(pathAt).join(" "));
            i += fields[0] === "2" ? 1 : 0;
        }
    }
    const added = extra.split("\n").filter(Boolean).map((line) => line.replace(/^Would (remove|skip repository) /, ""));
    const why = [
        ...(changed.length > 0 ? [`changed: ${somePaths(changed)}`] : []),
        ...(added.length > 0 ? [`not in the commit: ${somePaths(added)}`] : []),
    ];
    return why.length > 0 ? { state: "stale", why: why.join("; ") } : { state: "clean" };
}

/** Shallow-fetches one commit into a fresh directory and returns the commit it holds. */
async function fetchInto(dir: string, spec: SourceSpec, fetchRef: string): Promise<string> {
    await git(["init", "--quiet", dir]);
    const { url, ...credentials } = withoutCredentials(spec.repo);
    try {
        await git(["fetch", "--quiet", "--depth", "1", "--", url, fetchRef], dir, credentials);
        await git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", "FETCH_HEAD"], dir);
        return await git(["rev-parse", "HEAD"], dir);
    } catch (error) {
        throw new SourceError(
            `could not fetch source.ref ${spec.ref} from source.repo ${url}: ${gitMessage(error)}\n` +
                "A commit SHA must be a full 40-character SHA that the remote still has.",
        );
    }
}

/*
 * The cache: source.cacheDir/<digest of source.repo>/ holds, by name,
 *   <commit>/                 a checkout of the commit: it only ever appears there
 *                             complete, renamed from a .fetch- directory;
 *   .lock-<commit>/owner      the lock of <commit>/: held by the one run that may fetch
 *                             it, replace it or clear what ended runs left of it;
 *   .lock-<commit>-XXXXXX/    a lock being taken (renamed to .lock-<commit>);
 *   .fetch-<commit>-XXXXXX/   a checkout being fetched by the lock's holder;
 *   .trash-XXXXXXXXXXXXXXXX/  a directory being removed.
 * Runs of several stacks (processes) may share it. A clean checkout is used as it
 * is, without the lock, and no run removes it: others may be building from it.
 * One that is missing or not clean is fetched, or replaced, by the holder of the
 * lock only, after checking it again (the run it waited for may have just fetched
 * it). Node has no flock: the lock is a directory, made complete beside its name
 * and renamed there (a rename onto a non-empty directory fails), and removed by a
 * rename away. A lock whose process has ended (killed, or the machine restarted)
 * is broken by the next run on that machine (known by host name and PID: a
 * container sharing the host's name but not its PIDs would be taken for ended);
 * one of another machine sharing the cache is waited for, up to LOCK_WAIT_MS.
 */

interface LockOwner {
    pid: number;
    host: string;
    /** Unique to one taking of the lock: the name it was made under. */
    id: string;
}

interface Lock {
    repoDir: string;
    dir: string;
    id: string;
}

/** Ids of the locks this process holds: a lock with this process's PID and another id is an ended process's. */
const heldLocks = new Set<string>();
const LOCK_POLL_MS = 200;
const LOCK_WAIT_MS = 30 * 60 * 1000;

function errorCode(error: unknown): string | undefined {
    return (error as NodeJS.ErrnoException).code;
}

function readOwner(lockDir: string): LockOwner | undefined {
    try {
        const owner = JSON.parse(fs.readFileSync(path.join(lockDir, "owner"), "utf8"));
        return typeof owner?.pid === "number" && typeof owner.host === "string" && typeof owner.id === "string" ? owner : undefined;
    } catch {
        return undefined;
    }
}

/** Whether the process that took a lock has ended; a process of another machine is never known to have. */
function hasEnded(owner: LockOwner): boolean {
    if (owner.host !== os.hostname()) {
        return false;
    }
    if (owner.pid === process.pid) {
        return !heldLocks.has(owner.id);
    }
    try {
        process.kill(owner.pid, 0);
        return false;
    } catch (error) {
        return errorCode(error) === "ESRCH";
    }
}

/** Renames `dir` out of the way (its name is free at once) and returns where to, or undefined when it is gone already. */
function toTrash(repoDir: string, dir: string): string | undefined {
    const trash = path.join(repoDir, `.trash-${randomBytes(8).toString("hex")}`);
    try {
        fs.renameSync(dir, trash);
        return trash;
    } catch (error) {
        if (errorCode(error) === "ENOENT") {
            return undefined;
        }
        throw error;
    }
}

function remove(dir: string | undefined): void {
    if (dir !== undefined) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * Breaks the lock of an ended process. Of the runs that found it ended at once, the
 * one that makes `broken` in it breaks it; the owner is read again after, so that
 * a run which found it late leaves alone a lock taken since.
 */
function breakLock(repoDir: string, lockDir: string, ended: LockOwner): void {
    try {
        fs.mkdirSync(path.join(lockDir, "broken"));
    } catch {
        return;
    }
    if (readOwner(lockDir)?.id === ended.id) {
        remove(toTrash(repoDir, lockDir));
    }
}

/** One go at the lock of `commit`, synchronous: taken, or who holds it (undefined: unknown). */
function tryLock(repoDir: string, commit: string): { taken: Lock } | { holder: LockOwner | undefined } {
    const lockDir = path.join(repoDir, `.lock-${commit}`);
    for (let attempt = 0; attempt < 3; attempt++) {
        const candidate = fs.mkdtempSync(`${lockDir}-`);
        const owner: LockOwner = { pid: process.pid, host: os.hostname(), id: path.basename(candidate) };
        try {
            fs.writeFileSync(path.join(candidate, "owner"), JSON.stringify(owner));
            fs.renameSync(candidate, lockDir);
            heldLocks.add(owner.id);
            return { taken: { repoDir, dir: lockDir, id: owner.id } };
        } catch (error) {
            remove(candidate);
            if (!["EEXIST", "ENOTEMPTY", "ENOENT"].includes(errorCode(error) ?? "")) {
                throw error;
            }
        }
        const holder = readOwner(lockDir);
        if (holder !== undefined && hasEnded(holder)) {
            breakLock(repoDir, lockDir, holder);
        } else if (holder !== undefined || fs.existsSync(lockDir)) {
            return { holder };
        }
        // Released or broken meanwhile: try again.
    }
    return { holder: undefined };
}

function releaseLock(lock: Lock): void {
    heldLocks.delete(lock.id);
    if (readOwner(lock.dir)?.id === lock.id) {
        remove(toTrash(lock.repoDir, lock.dir));
    }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Takes the lock of `commit`, waiting for the run that holds it, and saying so. */
async function lockCommit(repoDir: string, commit: string): Promise<Lock> {
    let since = Date.now();
    let said: string | undefined;
    for (;;) {
        const attempt = tryLock(repoDir, commit);
        if ("taken" in attempt) {
            return attempt.taken;
        }
        const lockDir = path.join(repoDir, `.lock-${commit}`);
        const holder = attempt.holder ? `process ${attempt.holder.pid} on ${attempt.holder.host}` : "a run that left no readable owner file";
        if (said !== holder) {
            said = holder;
            since = Date.now();
            await pulumi.log.info(`source.cacheDir: waiting for ${holder}, which is fetching commit ${commit} into ${repoDir} (lock ${lockDir})`);
        }
        if (Date.now() - since > LOCK_WAIT_MS) {
            throw new SourceError(
                `source.cacheDir: ${lockDir} has been held by ${holder} for ${LOCK_WAIT_MS / 60_000} minutes while this run waited to fetch commit ${commit}; ` +
                    `if that process is not fetching (it may be on another machine sharing source.cacheDir), delete ${lockDir} and run again.`,
            );
        }
        await delay(LOCK_POLL_MS);
    }
}

/** Removes the fetches of `commit` that ended runs left: only the holder of its lock may call this. */
function removeFetches(repoDir: string, commit: string, names: string[]): void {
    names.filter((name) => name.startsWith(`.fetch-${commit}-`)).forEach((name) => remove(path.join(repoDir, name)));
}

/**
 * Clears what ended runs left in `repoDir`: their fetches and locks (taking each
 * commit's lock first, without waiting: a run still fetching holds it), locks
 * they were taking, and trash. Best effort: what it cannot remove, a later run will.
 */
function sweep(repoDir: string): void {
    let names: string[];
    try {
        names = fs.readdirSync(repoDir);
    } catch {
        return;
    }
    const commits = new Set<string>();
    for (const name of names) {
        const entry = path.join(repoDir, name);
        try {
            if (name.startsWith(".trash-")) {
                remove(entry);
            } else if (/^\.lock-[0-9a-f]{40}-/.test(name)) {
                const owner = readOwner(entry);
                if (owner !== undefined && hasEnded(owner)) {
                    remove(entry);
                }
            } else {
                const commit = /^\.(?:fetch|lock)-([0-9a-f]{40})(?:-|$)/.exec(name)?.[1];
                if (commit !== undefined) {
                    commits.add(commit);
                }
            }
        } catch {
            // Left for a later run.
        }
    }
    for (const commit of commits) {
        try {
            const attempt = tryLock(repoDir, commit);
            if ("taken" in attempt) {
                try {
                    removeFetches(repoDir, commit, names);
                } finally {
                    releaseLock(attempt.taken);
                }
            }
        } catch {
            // Left for a later run.
        }
    }
}

/** Fetches `commit` into `dir`, or replaces what is there, holding the commit's lock. */
async function fetchLocked(spec: SourceSpec, repoDir: string, dir: string, commit: string, fetchRef: string): Promise<void> {
    try {
        fs.mkdirSync(repoDir, { recursive: true });
        fs.accessSync(repoDir, fs.constants.W_OK);
    } catch (error) {
        throw new SourceError(`source.cacheDir ${spec.cacheDir} cannot hold checkouts: ${(error as Error).message}; set source.cacheDir to a directory this user can write to.`);
    }
    const lock = await lockCommit(repoDir, commit);
    try {
        // A fetch of this commit that is not this run's is an ended run's.
        removeFetches(repoDir, commit, fs.readdirSync(repoDir));
        const cached = await inspect(dir, commit);
        if (cached.state === "clean") {
            // Fetched by the run this one waited for.
            return;
        }
        if (cached.state === "stale") {
            await pulumi.log.warn(
                `source.cacheDir: ${dir} is not a clean checkout of commit ${commit} (${cached.why}); fetching it again. ` +
                    "Nothing may write into source.cacheDir: each checkout there is an image's build context.",
            );
        }
        const staging = fs.mkdtempSync(path.join(repoDir, `.fetch-${commit}-`));
        try {
            const fetched = await fetchInto(staging, spec, fetchRef);
            if (fetched !== commit) {
                throw new SourceError(
                    `source.ref ${spec.ref} of source.repo ${withoutCredentials(spec.repo).url} moved while it was fetched (${commit} -> ${fetched}); run again.`,
                );
            }
            // Not clean, so not what any run builds from: swapped for the fetched one.
            let replaced: string | undefined;
            try {
                replaced = cached.state === "stale" ? toTrash(repoDir, dir) : undefined;
                fs.renameSync(staging, dir);
            } catch (error) {
                throw new SourceError(
                    `source.cacheDir: could not put the checkout of commit ${commit} at ${dir} (${(error as Error).message}); ` +
                        `make source.cacheDir writable by this user, or delete ${dir}, and run again.`,
                );
            }
            remove(replaced);
        } finally {
            remove(staging);
        }
    } finally {
        releaseLock(lock);
    }
}

/**
 * Makes `ref` of `repo` available as a work tree in the cache, one directory
 * per commit, so that the same commit is fetched once and keeps the same path
 * (the image build hashes that path's content, not its history).
 */
export async function fetchSource(spec: SourceSpec): Promise<SourceCheckout> {
    const { commit, fetchRef } = await resolveRef(spec);
    const repoDir = repoCacheDir(spec);
    const dir = path.join(repoDir, commit);
    try {
        if ((await inspect(dir, commit)).state !== "clean") {
            await fetchLocked(spec, repoDir, dir, commit, fetchRef);
        }
    } finally {
        sweep(repoDir);
    }
    return { commit, dir };
}
