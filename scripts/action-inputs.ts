// Checks the `with:` of every remote action step against the inputs that the
// action declares in its action.yml at the pinned commit: unknown inputs (a
// typo GitHub only warns about, then ignores) and required inputs left out.
//
// actionlint does this only for the `owner/repo@vN` tags it knows; an action
// pinned by commit SHA, as all ours are, is never checked by it. The metadata
// is read from raw.githubusercontent.com and kept in the lint cache (a commit
// never changes), but only when asked: ACTION_INPUTS_CHECK=fetch reads GitHub and
// skips with a notice when it is unreachable, =required (ci.yml on GitHub) fails
// then. Otherwise only the cache is read: a local lint sends nothing anywhere.
//
//   node --import tsx scripts/action-inputs.ts [WORKFLOWS_DIR]
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

const ROOT = path.join(__dirname, "..");

export interface ActionUse {
    /** Workflow file, job id and step (name or index) that uses the action. */
    where: string;
    owner: string;
    repo: string;
    /** Sub-directory of the action in its repository, "" at the root. */
    dir: string;
    ref: string;
    inputs: string[];
}

export interface ActionMetadata {
    inputs?: Record<string, { required?: boolean | string; default?: unknown; [field: string]: unknown } | null>;
}

/** Every `uses: owner/repo[/dir]@ref` step of the workflows in a directory. */
export function actionUses(workflowsDir: string): ActionUse[] {
    const uses: ActionUse[] = [];
    for (const file of fs.readdirSync(workflowsDir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
        type Step = { uses?: unknown; name?: string; id?: string; with?: Record<string, unknown> };
        const workflow = (parseYaml(fs.readFileSync(path.join(workflowsDir, file), "utf8")) ?? {}) as { jobs?: Record<string, { steps?: Step[] } | null> };
        for (const [jobId, job] of Object.entries(workflow.jobs ?? {})) {
            (job?.steps ?? []).forEach((step, index) => {
                const spec = typeof step?.uses === "string" ? step.uses : "";
                const match = /^([^./][^/]*)\/([^/@]+)((?:\/[^@]+)?)@(.+)$/.exec(spec);
                if (!match || spec.startsWith("docker://")) {
                    return;
                }
                uses.push({
                    where: `${file}: job ${jobId}, step ${step.name ?? step.id ?? index + 1} (${spec})`,
                    owner: match[1],
                    repo: match[2],
                    dir: match[3].replace(/^\//, ""),
                    ref: match[4],
                    inputs: Object.keys(step.with ?? {}),
                });
            });
        }
    }
    return uses;
}

/** What is wrong with one use, given its action's metadata. */
export function checkInputs(use: ActionUse, metadata: ActionMetadata): string[] {
    const declared = new Map(Object.entries(metadata.inputs ?? {}).map(([name, spec]) => [name.toLowerCase(), spec ?? {}]));
    const given = new Set(use.inputs.map((name) => name.toLowerCase()));
    const problems: string[] = [];
    for (const input of use.inputs) {
        if (!declared.has(input.toLowerCase())) {
            const known = [...declared.keys()].sort().join(", ");
            problems.push(`${use.where}: input "${input}" is not declared by the action (it declares: ${known || "none"})`);
        }
    }
    for (const [name, spec] of declared) {
        const required = spec.required === true || spec.required === "true";
        if (required && spec.default === undefined && !given.has(name)) {
            problems.push(`${use.where}: required input "${name}" is missing`);
        }
    }
    return problems;
}

type Fetch = (url: string) => Promise<{ status: number; text: string }>;

const httpFetch: Fetch = async (url) => {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
};

export class Unreachable extends Error {}

/** The action.yml of one use at its ref, from the cache or GitHub. */
export async function metadataOf(use: ActionUse, cacheDir: string, get: Fetch = httpFetch): Promise<ActionMetadata | undefined> {
    const pinned = /^[0-9a-f]{40}$/.test(use.ref);
    const cached = path.join(cacheDir, use.owner, use.repo, use.dir, `${use.ref}.yml`);
    if (pinned && fs.existsSync(cached)) {
        return parseYaml(fs.readFileSync(cached, "utf8")) ?? {};
    }
    for (const name of ["action.yml", "action.yaml"]) {
        const url = `https://raw.githubusercontent.com/${use.owner}/${use.repo}/${use.ref}/${use.dir ? `${use.dir}/` : ""}${name}`;
        let answer: { status: number; text: string };
        try {
            answer = await get(url);
        } catch (error) {
            throw new Unreachable(`${url}: ${error instanceof Error ? error.message : String(error)}`);
        }
        if (answer.status === 200) {
            if (pinned) {
                fs.mkdirSync(path.dirname(cached), { recursive: true });
                fs.writeFileSync(cached, answer.text);
            }
            return parseYaml(answer.text) ?? {};
        }
        if (answer.status !== 404) {
            throw new Unreachable(`${url}: HTTP ${answer.status}`);
        }
    }
    return undefined;
}

export interface Report {
    problems: string[];
    /** Uses whose metadata could not be read (no access to GitHub). */
    unchecked: string[];
}

export async function checkWorkflows(workflowsDir: string, cacheDir: string, get: Fetch = httpFetch): Promise<Report> {
    const problems: string[] = [];
    const unchecked: string[] = [];
    // After the first failure to reach GitHub, only the cache is read.
    let offline = false;
    const offlineGet: Fetch = async () => {
        throw new Error("not tried (GitHub was unreachable before)");
    };
    for (const use of actionUses(workflowsDir)) {
        let metadata: ActionMetadata | undefined;
        try {
            metadata = await metadataOf(use, cacheDir, offline ? offlineGet : get);
        } catch (error) {
            if (error instanceof Unreachable) {
                offline = true;
                unchecked.push(`${use.where}: ${error.message}`);
                continue;
            }
            throw error;
        }
        if (metadata === undefined) {
            problems.push(`${use.where}: no action.yml at ${use.owner}/${use.repo}${use.dir ? `/${use.dir}` : ""}@${use.ref} (a wrong pin?)`);
        } else {
            problems.push(...checkInputs(use, metadata));
        }
    }
    return { problems, unchecked };
}

if (require.main === module) {
    const dir = process.argv[2] ?? path.join(ROOT, ".github", "workflows");
    const cache = path.join(process.env.ACTIONLINT_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? "/tmp", ".cache"), "calendars-caldav-lint"), "action-metadata");
    const required = process.env.ACTION_INPUTS_CHECK === "required";
    const online = required || process.env.ACTION_INPUTS_CHECK === "fetch";
    const cacheOnly: Fetch = async () => {
        throw new Unreachable("not fetched (set ACTION_INPUTS_CHECK=fetch to read GitHub)");
    };
    checkWorkflows(dir, cache, online ? httpFetch : cacheOnly).then(({ problems, unchecked }) => {
        for (const problem of problems) {
            process.stderr.write(`[action-inputs] ${problem}\n`);
        }
        if (unchecked.length > 0) {
            const first = unchecked[0].replace(/^.*?\): /, "");
            process.stderr.write(
                `[action-inputs] ${unchecked.length} action step(s) not checked: no action metadata here (${first})` +
                    `${required ? "" : "; the ci workflow checks them on GitHub"}\n`,
            );
        }
        if (problems.length > 0 || (required && unchecked.length > 0)) {
            process.exit(1);
        }
        if (unchecked.length === 0) {
            process.stderr.write("[action-inputs] the inputs of every pinned action match its action.yml\n");
        }
    }, (error) => {
        process.stderr.write(`[action-inputs] ${error instanceof Error ? error.stack : String(error)}\n`);
        process.exit(1);
    });
}
