import { execFile } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
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

/**
 * Makes `ref` of `repo` available as a work tree in the cache, one directory
 * per commit, so that the same commit is fetched once and keeps the same path
 * (the image build hashes that path's content, not its history).
 */
export async function fetchSource(spec: SourceSpec): Promise<SourceCheckout> {
    const { commit, fetchRef } = await resolveRef(spec);
    const repoDir = repoCacheDir(spec);
    const dir = path.join(repoDir, commit);
    const cached = await inspect(dir, commit);
    if (cached.state === "clean") {
        return { commit, dir };
    }
    if (cached.state === "stale") {
        await pulumi.log.warn(
            `source.cacheDir: ${dir} is not a clean checkout of commit ${commit} (${cached.why}); fetching it again. ` +
                "Nothing may write into source.cacheDir: each checkout there is an image's build context.",
        );
    }
    fs.mkdirSync(repoDir, { recursive: true });
    // Fetch beside the final path and rename, so that an interrupted fetch or a
    // concurrent run never leaves a half-filled directory under the final name.
    const staging = fs.mkdtempSync(path.join(repoDir, `.fetch-${commit.slice(0, 12)}-`));
    try {
        const fetched = await fetchInto(staging, spec, fetchRef);
        if (fetched !== commit) {
            throw new SourceError(
                `source.ref ${spec.ref} of source.repo ${withoutCredentials(spec.repo).url} moved while it was fetched (${commit} -> ${fetched}); run again.`,
            );
        }
        fs.rmSync(dir, { recursive: true, force: true });
        fs.renameSync(staging, dir);
    } finally {
        fs.rmSync(staging, { recursive: true, force: true });
    }
    return { commit, dir };
}
