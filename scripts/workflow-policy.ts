// What the GitHub workflows of this repository must guarantee, checked on the
// workflow files themselves (npm run lint, through scripts/lint-workflows.sh;
// test/workflows*.test.ts show that each rule rejects the defect it is for).
// Only this project's own rules live here (prod, environments, plans, drift,
// the Pulumi CLI...): what any workflow must avoid (unpinned actions,
// credentials persisted by checkout, template injection, dangerous triggers,
// inherited secrets, default token permissions) is zizmor's, which
// scripts/lint-workflows.sh runs before these rules.
//
// Reusable workflows are expanded into the jobs that call them, with the
// caller's inputs and matrix values substituted, so that a rule sees which
// runner, environment and stack a job really gets.
//
//   node --import tsx scripts/workflow-policy.ts [REPO_DIR]

/* eslint-disable @typescript-eslint/no-explicit-any -- workflow files are untyped YAML, read as GitHub reads them */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { parseExpectation } from "./ci-environments";

export interface Workflow {
    file: string;
    text: string;
    doc: any;
}

/** A job as it runs: a plain job, or one job of a reusable workflow as called. */
export interface EffectiveJob {
    /** The workflow a trigger starts. */
    file: string;
    /** Caller job id, and `/<called job id>` for a reusable workflow. */
    id: string;
    callerId: string;
    /** The workflow file holding the steps (the called one for a reusable workflow). */
    stepsFile: string;
    triggers: string[];
    on: Record<string, any>;
    /** `if:` conditions on the way (caller, then called job). */
    conditions: string[];
    needs: string[];
    runsOn: string[];
    environment?: string;
    /** Inputs of the reusable workflow (the caller's `with` and the defaults). */
    inputs: Record<string, unknown>;
    steps: any[];
    /** Shell of `run:` steps without their own: job, else workflow defaults. */
    defaultShell?: string;
    usesWorkflow?: string;
}

const REUSABLE = /^\.\/\.github\/workflows\/([^@]+)$/;
const PR_TRIGGERS = ["pull_request", "pull_request_target"];
export const MAIN_ONLY = /github\.ref\s*==\s*'refs\/heads\/main'/;

export function loadWorkflows(repo: string): Workflow[] {
    const dir = path.join(repo, ".github", "workflows");
    return fs.readdirSync(dir)
        .filter((file) => /\.ya?ml$/.test(file))
        .sort()
        .map((file) => {
            const text = fs.readFileSync(path.join(dir, file), "utf8");
            return { file, text, doc: parseYaml(text) ?? {} };
        });
}

function triggersOf(doc: any): Record<string, any> {
    const on = doc.on ?? doc[true as any]; // YAML 1.1 readers turn `on` into true
    if (typeof on === "string") {
        return { [on]: null };
    }
    if (Array.isArray(on)) {
        return Object.fromEntries(on.map((name) => [name, null]));
    }
    return on ?? {};
}

function substitute(value: unknown, scope: Record<string, Record<string, unknown>>): any {
    if (typeof value === "string") {
        const whole = /^\$\{\{\s*(inputs|matrix)\.([\w-]+)\s*\}\}$/.exec(value);
        if (whole && scope[whole[1]] && whole[2] in scope[whole[1]]) {
            return scope[whole[1]][whole[2]];
        }
        // `${{ inputs.flag && <value> || '' }}`: empty unless the flag is set.
        const gated = /^\$\{\{\s*inputs\.([\w-]+)\s*&&[^|]+\|\|\s*''\s*\}\}$/.exec(value);
        if (gated && scope.inputs && !(scope.inputs[gated[1]] === true || scope.inputs[gated[1]] === "true")) {
            return "";
        }
        return value.replace(/\$\{\{\s*(inputs|matrix)\.([\w-]+)\s*\}\}/g, (match, kind: string, name: string) =>
            scope[kind] && name in scope[kind] ? String(scope[kind][name]) : match);
    }
    if (Array.isArray(value)) {
        return value.map((item) => substitute(item, scope));
    }
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, scope)]));
    }
    return value;
}

function matrixCombinations(job: any): Record<string, unknown>[] {
    const matrix = job.strategy?.matrix;
    if (!matrix || typeof matrix !== "object") {
        return [{}];
    }
    let combinations: Record<string, unknown>[] = [{}];
    for (const [key, values] of Object.entries<any>(matrix)) {
        if (key === "include" || key === "exclude" || !Array.isArray(values)) {
            continue;
        }
        combinations = combinations.flatMap((combination) => values.map((value) => ({ ...combination, [key]: value })));
    }
    return combinations;
}

function labels(runsOn: unknown): string[] {
    if (typeof runsOn === "string") {
        return [runsOn];
    }
    if (Array.isArray(runsOn)) {
        return runsOn.map(String);
    }
    if (runsOn !== null && typeof runsOn === "object") {
        return labels((runsOn as any).labels ?? []);
    }
    return [];
}

function environmentName(environment: unknown): string | undefined {
    if (typeof environment === "string") {
        return environment;
    }
    return environment !== null && typeof environment === "object" ? (environment as any).name : undefined;
}

const list = (value: unknown): string[] => (value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)]);

export function effectiveJobs(workflows: Workflow[]): EffectiveJob[] {
    const byFile = new Map(workflows.map((workflow) => [workflow.file, workflow]));
    const jobs: EffectiveJob[] = [];
    for (const workflow of workflows) {
        const on = triggersOf(workflow.doc);
        const triggers = Object.keys(on).filter((name) => name !== "workflow_call");
        if (triggers.length === 0) {
            continue; // only ever called: expanded in its callers
        }
        for (const [callerId, caller] of Object.entries<any>(workflow.doc.jobs ?? {})) {
            for (const matrix of matrixCombinations(caller)) {
                const conditions = caller.if !== undefined ? [String(substitute(caller.if, { matrix }))] : [];
                const base = { file: workflow.file, callerId, triggers, on, needs: list(caller.needs) };
                const reusable = typeof caller.uses === "string" ? REUSABLE.exec(caller.uses) : null;
                if (!reusable) {
                    jobs.push({
                        ...base,
                        id: callerId,
                        stepsFile: workflow.file,
                        conditions,
                        runsOn: labels(substitute(caller["runs-on"], { matrix })),
                        environment: environmentName(substitute(caller.environment, { matrix })),
                        inputs: {},
                        steps: substitute(caller.steps ?? [], { matrix }),
                        defaultShell: caller.defaults?.run?.shell ?? workflow.doc.defaults?.run?.shell,
                    });
                    continue;
                }
                const called = byFile.get(reusable[1]);
                if (!called) {
                    throw new Error(`${workflow.file}: job ${callerId} calls ${caller.uses}, which does not exist`);
                }
                const declared = triggersOf(called.doc).workflow_call?.inputs ?? {};
                const inputs: Record<string, unknown> = {};
                for (const [name, spec] of Object.entries<any>(declared)) {
                    if (spec?.default !== undefined) {
                        inputs[name] = spec.default;
                    }
                }
                Object.assign(inputs, substitute(caller.with ?? {}, { matrix }));
                for (const [calledId, job] of Object.entries<any>(called.doc.jobs ?? {})) {
                    const scope = { inputs };
                    jobs.push({
                        ...base,
                        id: `${callerId}/${calledId}`,
                        stepsFile: called.file,
                        conditions: [...conditions, ...(job.if !== undefined ? [String(substitute(job.if, scope))] : [])],
                        runsOn: labels(substitute(job["runs-on"], scope)),
                        environment: environmentName(substitute(job.environment, scope)),
                        inputs,
                        steps: substitute(job.steps ?? [], scope),
                        defaultShell: job.defaults?.run?.shell ?? called.doc.defaults?.run?.shell,
                        usesWorkflow: called.file,
                    });
                }
            }
        }
    }
    return jobs;
}

/** The steps that run for the job's inputs: `if: inputs.x == 'y'` and `if: inputs.flag` are evaluated, other conditions assumed true. */
export function activeSteps(job: EffectiveJob): any[] {
    return job.steps.filter((step) => {
        const condition = typeof step.if === "string" ? step.if.replace(/^\$\{\{\s*|\s*\}\}$/g, "").trim() : undefined;
        if (condition === undefined) {
            return true;
        }
        const equality = /^inputs\.([\w-]+)\s*==\s*'([^']*)'$/.exec(condition);
        if (equality) {
            return String(job.inputs[equality[1]]) === equality[2];
        }
        const flag = /^inputs\.([\w-]+)$/.exec(condition);
        if (flag) {
            return job.inputs[flag[1]] === true || job.inputs[flag[1]] === "true";
        }
        return true;
    });
}

export const isPulumiAction = (step: any) => typeof step?.uses === "string" && /^pulumi\/actions@/.test(step.uses);
/** The pulumi/actions steps that run a command (not the install-only ones). */
export const pulumiCommands = (job: EffectiveJob) => activeSteps(job).filter((step) => isPulumiAction(step) && step.with?.command);

/** The stack a job operates on, if any: by runner label, environment or input. */
export function stackOf(job: EffectiveJob): string | undefined {
    const label = job.runsOn.map((name) => /^calendars-(.+)$/.exec(name)?.[1]).find(Boolean);
    const fromEnvironment = job.environment?.replace(/-preview$/, "");
    return label ?? (typeof job.inputs.stack === "string" ? job.inputs.stack : undefined) ?? fromEnvironment;
}

export function runsOnPullRequests(job: EffectiveJob): boolean {
    return job.triggers.some((trigger) => PR_TRIGGERS.includes(trigger)) &&
        !job.conditions.some((condition) => /github\.event_name\s*!=\s*'pull_request'/.test(condition));
}

/** Whether every trigger of the job's workflow that can start it is bound to main. */
export function mainOnly(job: EffectiveJob): boolean {
    const guarded = job.conditions.some((condition) => MAIN_ONLY.test(condition));
    return job.triggers.every((trigger) => {
        if (trigger === "schedule") {
            return true; // runs on the default branch
        }
        if (trigger === "push") {
            const branches = job.on.push?.branches;
            const mainPush = Array.isArray(branches) && branches.length === 1 && branches[0] === "main" && !job.on.push?.tags;
            return mainPush || guarded;
        }
        return guarded;
    });
}

function needsClosure(jobs: EffectiveJob[], job: EffectiveJob): EffectiveJob[] {
    const sameRun = jobs.filter((other) => other.file === job.file);
    const seen = new Set<string>();
    const queue = [...job.needs];
    while (queue.length > 0) {
        const id = queue.shift() as string;
        if (!seen.has(id)) {
            seen.add(id);
            for (const other of sameRun.filter((candidate) => candidate.callerId === id)) {
                queue.push(...other.needs);
            }
        }
    }
    return sameRun.filter((other) => seen.has(other.callerId));
}

export const runScripts = (job: EffectiveJob): string[] => job.steps.map((step) => step.run).filter((run): run is string => typeof run === "string");

type Rule = (workflows: Workflow[], jobs: EffectiveJob[]) => string[];

export const RULES: Record<string, Rule> = {
    /** Pull-request code (program, npm scripts, the workflow files) never runs where prod is reachable. */
    "pull requests never reach prod": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs.filter(runsOnPullRequests)) {
            const stack = stackOf(job);
            if (stack === undefined && !job.runsOn.includes("self-hosted")) {
                continue;
            }
            if (stack !== "staging") {
                problems.push(`${job.file}: job ${job.id} runs pull-request code for stack ${stack ?? "(unknown)"} on ${job.runsOn.join(", ")}`);
                continue;
            }
            if (job.environment !== "staging-preview") {
                problems.push(`${job.file}: job ${job.id} runs pull-request code in environment ${job.environment ?? "(none)"}; only staging-preview (read-only credentials) may`);
            }
            if (!job.conditions.some((condition) => /head\.repo\.full_name\s*==\s*github\.repository/.test(condition))) {
                problems.push(`${job.file}: job ${job.id} would run a fork's code on a self-hosted runner`);
            }
            const commands = pulumiCommands(job).map((step) => step.with.command);
            if (commands.some((command) => command !== "preview")) {
                problems.push(`${job.file}: job ${job.id} runs ${commands.join(", ")} on a pull request; only preview`);
            }
        }
        return problems;
    },

    /** A job that reaches a stack runs in one of its environments, writes only from main. */
    "stack jobs run in the stack's environment, from main": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            const stack = stackOf(job);
            if (stack === undefined) {
                continue;
            }
            const write = pulumiCommands(job).some((step) => step.with.command !== "preview");
            const allowed = write ? [stack] : [`${stack}-preview`, stack];
            if (!job.environment || !allowed.includes(job.environment)) {
                problems.push(`${job.file}: job ${job.id} reaches ${stack} in environment ${job.environment ?? "(none)"}; expected ${allowed.join(" or ")}`);
            }
            if (!runsOnPullRequests(job) && !mainOnly(job)) {
                problems.push(`${job.file}: job ${job.id} reaches ${stack} from a trigger not bound to main (${job.triggers.join(", ")}); add if: github.ref == 'refs/heads/main'`);
            }
            if (job.environment === stack && !mainOnly(job)) {
                problems.push(`${job.file}: job ${job.id} uses the ${stack} environment outside main`);
            }
        }
        return problems;
    },

    /** GitHub creates a missing environment unprotected: main-only runs check theirs first. */
    "environments checked before use": (workflows, jobs) => {
        const problems: string[] = [];
        const pullRequestEnvironments = new Set(jobs.filter(runsOnPullRequests).map((job) => job.environment));
        for (const workflow of workflows) {
            const users = jobs.filter((job) => job.file === workflow.file && job.environment && !runsOnPullRequests(job));
            if (users.length === 0) {
                continue;
            }
            const guard = jobs.find((job) => job.file === workflow.file && runScripts(job).some((script) => /scripts\/ci-environments\.ts\s/.test(script)));
            if (!guard) {
                problems.push(`${workflow.file}: uses environments ${[...new Set(users.map((job) => job.environment))].join(", ")} without checking that they exist and are protected (scripts/ci-environments.ts)`);
                continue;
            }
            const args = runScripts(guard).map((script) => /scripts\/ci-environments\.ts\s+([^\n]+)/.exec(script)?.[1]).find(Boolean) ?? "";
            const checked = new Map(args.trim().split(/\s+/).map(parseExpectation).map((expectation) => [expectation.name, expectation]));
            for (const job of users) {
                const name = job.environment as string;
                const expectation = checked.get(name);
                const mainOnly = !pullRequestEnvironments.has(name);
                const reviewers = stackOf(job) === "prod" && pulumiCommands(job).some((step) => step.with.command === "up");
                if (!expectation || (mainOnly && !expectation.mainOnly) || (reviewers && !expectation.reviewers)) {
                    problems.push(`${workflow.file}: job ${job.id} uses environment ${name}, not checked as ${name}${mainOnly ? ":main" : ""}${reviewers ? ":reviewers" : ""}`);
                }
                if (!needsClosure(jobs, job).includes(guard)) {
                    problems.push(`${workflow.file}: job ${job.id} does not wait for the environment check (${guard.id})`);
                }
            }
        }
        return problems;
    },

    /** Each up waits for CI; prod applies the plan of a preview its reviewers saw, after staging. */
    "deploys wait for CI, prod applies its reviewed plan": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            const ups = pulumiCommands(job).filter((step) => step.with.command === "up");
            if (ups.length === 0) {
                continue;
            }
            const before = needsClosure(jobs, job);
            if (!before.some((other) => other.usesWorkflow === "ci.yml")) {
                problems.push(`${job.file}: job ${job.id} runs up without needing the ci workflow`);
            }
            const stack = stackOf(job);
            if (stack !== "prod") {
                continue;
            }
            if (job.inputs["apply-plan"] !== true || ups.some((step) => !step.with.plan)) {
                problems.push(`${job.file}: job ${job.id} updates prod without applying a saved plan`);
            }
            const previews = before.filter((other) => stackOf(other) === "prod" && other.inputs["save-plan"] === true &&
                pulumiCommands(other).some((step) => step.with.command === "preview" && step.with.plan));
            if (previews.length === 0) {
                problems.push(`${job.file}: job ${job.id} updates prod without a preview that saves the plan before it`);
            }
            if (!before.some((other) => stackOf(other) === "staging" && pulumiCommands(other).some((step) => step.with.command === "up"))) {
                problems.push(`${job.file}: job ${job.id} updates prod without staging being updated first`);
            }
        }
        return problems;
    },

    /** Every stack that is deployed is checked for drift on a schedule. */
    "a scheduled drift check per deployed stack": (_workflows, jobs) => {
        const deployed = new Set(jobs.filter((job) => pulumiCommands(job).some((step) => step.with.command === "up")).map(stackOf));
        const problems: string[] = [];
        for (const stack of deployed) {
            const checks = jobs.filter((job) => job.triggers.includes("schedule") && stackOf(job) === stack &&
                pulumiCommands(job).some((step) => step.with.refresh === true && step.with["expect-no-changes"] === true));
            if (checks.length === 0) {
                problems.push(`stack ${stack} is deployed but no scheduled job refreshes it with expect-no-changes`);
            }
        }
        return problems;
    },

    /** The CLI version is the project's, and CI never creates a stack. */
    "one pinned Pulumi CLI, no stack created by CI": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            for (const step of job.steps.filter(isPulumiAction)) {
                const where = `${job.stepsFile}: job ${job.id}, step ${step.name ?? step.uses}`;
                if (step.with?.["pulumi-version-file"] !== ".pulumi-version" || step.with?.["pulumi-version"] !== undefined) {
                    problems.push(`${where}: set pulumi-version-file: .pulumi-version (else the action takes any pulumi on PATH)`);
                }
                if (step.with?.upsert !== undefined || step.with?.["secrets-provider"] !== undefined) {
                    problems.push(`${where}: upsert/secrets-provider would create a stack from CI; stacks are initialised once by hand`);
                }
            }
            for (const script of runScripts(job)) {
                if (/stack\s+(init|select\b[^\n]*--create)/.test(script) && job.runsOn.includes("self-hosted")) {
                    problems.push(`${job.stepsFile}: job ${job.id} creates a stack`);
                }
            }
        }
        return problems;
    },

    /** Every Pulumi operation is readable from the run's summary, and updates name their commit. */
    "Pulumi runs report on the summary": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            for (const step of job.steps.filter((candidate) => isPulumiAction(candidate) && candidate.with?.command)) {
                const where = `${job.stepsFile}: job ${job.id}, step ${step.name ?? step.with.command}`;
                for (const option of ["comment-on-summary", "always-include-summary", "suppress-progress"]) {
                    if (step.with[option] !== true) {
                        problems.push(`${where}: ${option} is not true`);
                    }
                }
                if (step.with.command === "up" && !/github\.sha/.test(String(step.with.message ?? ""))) {
                    problems.push(`${where}: up without message naming the commit (github.sha)`);
                }
            }
        }
        return problems;
    },

    /** A failed Pulumi job says what to do, in the log and in the run's summary. */
    "failures are explained": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs.filter((candidate) => pulumiCommands(candidate).length > 0)) {
            const explains = job.steps.some((step) => typeof step.if === "string" && /failure\(\)/.test(step.if) &&
                /::error\b/.test(String(step.run ?? "")) && /GITHUB_STEP_SUMMARY/.test(String(step.run ?? "")));
            if (!explains) {
                problems.push(`${job.stepsFile}: job ${job.id}: no if: failure() step that says what to do (::error and the step summary)`);
            }
        }
        return problems;
    },

    /** Shell steps stop at the first failure, unset variable or failed pipe stage. */
    "run steps use bash -euo pipefail": (_workflows, jobs) => {
        const problems: string[] = [];
        const strict = (shell: unknown) => typeof shell === "string" && /^bash\b/.test(shell) && /\s-\w*e\w*u\w*o pipefail\b|\s-euo pipefail\b/.test(shell);
        for (const job of jobs) {
            job.steps.forEach((step, index) => {
                if (typeof step.run === "string" && !strict(step.shell ?? job.defaultShell)) {
                    problems.push(`${job.stepsFile}: job ${job.id}, step ${step.name ?? index + 1}: shell is ${step.shell ?? job.defaultShell ?? "GitHub's default (bash -eo pipefail, no -u)"}`);
                }
            });
        }
        return problems;
    },

    /** jq fails on a missing value instead of printing null; curl is bounded in time and fails on HTTP errors. */
    "jq and curl fail loudly": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            for (const script of runScripts(job)) {
                problems.push(...shellHazards(script).map((problem) => `${job.stepsFile}: job ${job.id}: ${problem}`));
            }
        }
        return problems;
    },

    /** The dev scripts' local backend (.pulumi/) exists before any command uses it. */
    "local backend created before use": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs) {
            let created = false;
            for (const step of job.steps) {
                const script: string = typeof step.run === "string" ? step.run : "";
                const always = typeof step.if === "string" && /always\(\)|failure\(\)|cancelled\(\)/.test(step.if);
                const lines = script.split("\n");
                const createdHere = lines.findIndex((line) => /mkdir -p (\S*\/)?\.pulumi\b|npm run (-s )?dev:up\b/.test(line));
                const usedHere = lines.findIndex((line) => /npm run (-s )?dev:(pulumi|down)\b/.test(line));
                if (usedHere >= 0 && !(createdHere >= 0 && createdHere < usedHere) && (!created || always)) {
                    problems.push(`${job.stepsFile}: job ${job.id}, step ${step.name ?? "run"}: dev:pulumi/dev:down before .pulumi/ exists (only dev:up creates it)`);
                }
                if (createdHere >= 0 && !always) {
                    created = true;
                }
            }
        }
        return problems;
    },

    /** Nothing of an earlier job on a self-hosted runner is read: per-job Pulumi home and caches, no stored token. */
    "self-hosted jobs keep no state": (_workflows, jobs) => {
        const problems: string[] = [];
        for (const job of jobs.filter((candidate) => candidate.runsOn.includes("self-hosted"))) {
            const first = job.steps.findIndex((step) => /\bnpm (ci|install|run|test|exec)\b|\bnpx\b|(^|\s)pulumi\s/.test(String(step.run ?? "")) || isPulumiAction(step) || /setup-node@/.test(String(step.uses ?? "")));
            const isolated = job.steps.slice(0, first < 0 ? job.steps.length : first).some((step) =>
                ["PULUMI_HOME", "npm_config_cache", "XDG_CACHE_HOME"].every((name) => new RegExp(`${name}=\\$RUNNER_TEMP/`).test(String(step.run ?? ""))) &&
                /GITHUB_ENV/.test(String(step.run ?? "")));
            if (!isolated) {
                problems.push(`${job.stepsFile}: job ${job.id}: no per-job PULUMI_HOME, npm cache and XDG_CACHE_HOME under RUNNER_TEMP before npm/pulumi`);
            }
        }
        return problems;
    },

    /**
     * Every remote action names its release in a comment (`@<40-hex SHA> # v7.0.1`): what reviewers read
     * and what Dependabot moves with the SHA. zizmor's unpinned-uses audit requires the SHA itself.
     */
    "actions name their release": (workflows) => {
        const problems: string[] = [];
        for (const workflow of workflows) {
            workflow.text.split("\n").forEach((line, index) => {
                const match = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
                if (!match || match[1].startsWith("./") || match[1].startsWith("docker://")) {
                    return;
                }
                if (!/^\s+#\s+v\d+(\.\d+)*\s*$/.test(match[2])) {
                    problems.push(`${workflow.file}:${index + 1}: ${match[1]} has no release comment (uses: owner/repo@<SHA> # vX.Y.Z)`);
                }
            });
        }
        return problems;
    },

    /**
     * An artifact name is unique to its run attempt: "Re-run all jobs" would collide with the first attempt's
     * artifact, and "Re-run failed jobs" of a job that downloads one (prod's update) would find the plan of an
     * earlier attempt instead of failing.
     */
    "artifacts are named per run attempt": (_workflows, jobs) => {
        const problems: string[] = [];
        const seen = new Set<string>();
        for (const job of jobs) {
            job.steps.forEach((step, index) => {
                if (!/^actions\/(upload|download)-artifact@/.test(String(step.uses ?? ""))) {
                    return;
                }
                const where = `${job.stepsFile}: job ${job.id}, step ${step.name ?? index + 1}`;
                if (!/\$\{\{\s*github\.run_attempt\s*\}\}/.test(String(step.with?.name ?? "")) && !seen.has(where)) {
                    seen.add(where);
                    problems.push(`${where}: artifact name ${JSON.stringify(step.with?.name ?? "(none)")} lacks \${{ github.run_attempt }}`);
                }
            });
        }
        return problems;
    },
};

/** Problems of one shell script: jq without -e, curl without a time limit or --fail. */
export function shellHazards(script: string): string[] {
    const problems: string[] = [];
    for (const command of script.split(/\||;|&&|\|\||\$\(|`|\n/)) {
        const words = command.trim().split(/\s+/);
        const tool = words[0];
        const flags = words.filter((word) => word.startsWith("-"));
        const short = flags.filter((word) => /^-[a-zA-Z]+$/.test(word)).join("");
        if (tool === "jq" && !flags.includes("--exit-status") && !/e/.test(short)) {
            problems.push(`\`${command.trim()}\`: jq without -e prints null for a missing value and succeeds`);
        }
        if (tool === "curl") {
            if (!flags.some((flag) => /^--max-time/.test(flag)) && !/m/.test(short)) {
                problems.push(`\`${command.trim()}\`: curl without --max-time can hang until the job times out`);
            }
            if (!flags.some((flag) => /^--fail/.test(flag)) && !/f/.test(short) && !flags.includes("--write-out") && !/w/.test(short)) {
                problems.push(`\`${command.trim()}\`: curl without --fail succeeds on an HTTP error`);
            }
        }
    }
    return problems;
}

export function checkPolicy(repo: string): string[] {
    const workflows = loadWorkflows(repo);
    const jobs = effectiveJobs(workflows);
    return Object.entries(RULES).flatMap(([name, rule]) => rule(workflows, jobs).map((problem) => `[${name}] ${problem}`));
}

if (require.main === module) {
    const repo = process.argv[2] ?? path.join(__dirname, "..");
    const problems = checkPolicy(repo);
    for (const problem of problems) {
        process.stderr.write(`[workflow-policy] ${problem}\n`);
    }
    if (problems.length > 0) {
        process.exit(1);
    }
    process.stderr.write(`[workflow-policy] ${Object.keys(RULES).length} rules hold for ${loadWorkflows(repo).length} workflows\n`);
}
