// The GitHub workflows cannot run here (no GitHub, no runner). These tests
// check what they guarantee on the files: the rules of
// scripts/workflow-policy.ts hold for this repository's workflows, and each
// rule rejects the defect it was written for (the workflows as they were
// before issues 10 and 21, reduced to the lines that matter). `npm run lint`
// runs the same rules, actionlint with shellcheck, and zizmor, whose audits
// test/lint-workflows.test.ts shows.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import {
    activeSteps, checkPolicy, effectiveJobs, isPulumiAction, loadWorkflows, pulumiCommands, RULES, shellHazards, stackOf, Workflow,
} from "../scripts/workflow-policy";

const ROOT = path.join(__dirname, "..");
const WORKFLOWS = loadWorkflows(ROOT);
const JOBS = effectiveJobs(WORKFLOWS);

const temps: string[] = [];
after(() => temps.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** A repository holding only these workflow files. */
function repoWith(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "workflows-"));
    temps.push(dir);
    fs.mkdirSync(path.join(dir, ".github", "workflows"), { recursive: true });
    for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(dir, ".github", "workflows", name), text);
    }
    return dir;
}

function problemsOf(rule: string, repo: string): string[] {
    const workflows = loadWorkflows(repo);
    return RULES[rule](workflows, effectiveJobs(workflows));
}

// The workflows before issue 10, reduced to what each rule is about.
const BEFORE = {
    "preview.yml": `
name: preview
on:
  pull_request:
permissions:
  contents: read
  pull-requests: write
jobs:
  preview:
    if: github.event.pull_request.head.repo.full_name == github.repository
    strategy:
      matrix:
        stack: [staging, prod]
    runs-on: [self-hosted, "calendars-\${{ matrix.stack }}"]
    steps:
      - uses: actions/checkout@v5
      - run: npm ci
      - uses: pulumi/actions@v6
        with:
          command: preview
          stack-name: \${{ matrix.stack }}
          secrets-provider: \${{ vars.PULUMI_SECRETS_PROVIDER }}
          comment-on-pr: true
        env:
          PULUMI_CONFIG_PASSPHRASE: \${{ secrets.PULUMI_CONFIG_PASSPHRASE }}
`,
    "deploy.yml": `
name: deploy
on:
  push:
    branches: [main]
  workflow_dispatch:
permissions:
  contents: read
jobs:
  staging:
    uses: ./.github/workflows/up.yml
    with:
      stack: staging
    secrets: inherit
  prod:
    needs: staging
    uses: ./.github/workflows/up.yml
    with:
      stack: prod
    secrets: inherit
`,
    "up.yml": `
name: up
on:
  workflow_call:
    inputs:
      stack:
        type: string
        required: true
permissions:
  contents: read
jobs:
  up:
    environment: \${{ inputs.stack }}
    runs-on: [self-hosted, "calendars-\${{ inputs.stack }}"]
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-node@v5
        with:
          node-version: 20
          cache: npm
      - run: npm ci
      - uses: pulumi/actions@v6
        with:
          command: up
          stack-name: \${{ inputs.stack }}
          secrets-provider: \${{ vars.PULUMI_SECRETS_PROVIDER }}
          diff: true
`,
    "integration.yml": `
name: integration
on:
  pull_request:
permissions:
  contents: read
jobs:
  dev-stack:
    runs-on: ubuntu-24.04
    steps:
      - name: Create the dev stack at the pinned Calendars ref
        run: |
          npm run -s dev:pulumi -- stack select dev --create --secrets-provider passphrase
      - run: npm run dev:up
      - name: Check the server from outside
        run: |
          key=$(npm run -s dev:pulumi -- stack output apiKeys --show-secrets | jq -r .outbound)
          test "$(curl -fsS "\${url}healthz")" = ok
      - name: pulumi destroy
        if: always()
        run: npm run dev:down
`,
};

// The prod plan's artifact before issue 21: one name for every attempt of a run.
const BEFORE_21 = {
    "plan.yml": `
name: plan
on:
  workflow_dispatch:
permissions: {}
jobs:
  preview:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/upload-artifact@\${"0".repeat(40)} # v7.0.1
        with:
          name: pulumi-plan-prod
          path: prod.plan.json
  up:
    needs: preview
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/download-artifact@\${"1".repeat(40)} # v8.0.1
        with:
          name: pulumi-plan-prod
`,
};

describe("GitHub workflows: the rules hold", () => {
    test("every rule of scripts/workflow-policy.ts holds for .github/workflows", () => {
        assert.ok(WORKFLOWS.length > 0 && JOBS.length > 0);
        assert.deepEqual(checkPolicy(ROOT), []);
    });

    test("workflow files are discovered, not listed: a new workflow is checked by every rule", () => {
        const repo = repoWith({ ...BEFORE, "extra.yml": "name: extra\non:\n  push:\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v7\n" });
        const problems = checkPolicy(repo);
        assert.ok(problems.some((problem) => problem.includes("extra.yml")), "the added file is linted");
    });

    test("the rules reject every defect of the workflows before issues 10 and 21", () => {
        const repo = repoWith({ ...BEFORE, ...BEFORE_21 });
        for (const rule of Object.keys(RULES)) {
            assert.notDeepEqual(problemsOf(rule, repo), [], `rule "${rule}" accepts the old workflows`);
        }
    });
});

describe("GitHub workflows: pull requests and production", () => {
    test("a same-repository pull request no longer previews prod on the prod runner", () => {
        const problems = problemsOf("pull requests never reach prod", repoWith(BEFORE));
        assert.ok(problems.some((problem) => /preview\.yml: job preview runs pull-request code for stack prod on self-hosted, calendars-prod/.test(problem)), problems.join("\n"));
        for (const job of JOBS.filter((candidate) => candidate.triggers.includes("pull_request"))) {
            assert.notEqual(stackOf(job), "prod", `${job.file}/${job.id}`);
            assert.ok(!job.runsOn.includes("calendars-prod"));
        }
    });

    test("pull requests preview staging only, read-only, in staging-preview, never for forks", () => {
        const previews = JOBS.filter((job) => job.triggers.includes("pull_request") && stackOf(job) !== undefined);
        assert.ok(previews.length > 0, "staging is still previewed on pull requests");
        for (const job of previews) {
            assert.equal(job.environment, "staging-preview");
            assert.deepEqual(pulumiCommands(job).map((step) => step.with.command), ["preview"]);
            assert.equal(pulumiCommands(job)[0].with["comment-on-pr"], true);
            assert.ok(job.conditions.some((condition) => condition.includes("head.repo.full_name == github.repository")));
        }
    });

    // zizmor (secrets-inherit, excessive-permissions) rejects the defects: test/lint-workflows.test.ts.
    test("repository secrets are never handed down: no job passes secrets, every triggered workflow declares its token's permissions", () => {
        for (const workflow of WORKFLOWS) {
            for (const [id, job] of Object.entries<any>(workflow.doc.jobs ?? {})) {
                assert.equal(job.secrets, undefined, `${workflow.file}: job ${id} passes secrets`);
            }
            if (!("workflow_call" in (workflow.doc.on ?? {}) && Object.keys(workflow.doc.on).length === 1)) {
                assert.ok("permissions" in workflow.doc, `${workflow.file} has no top-level permissions`);
            }
        }
    });

    test("a manual deploy of another branch is refused: every deploy job is bound to main", () => {
        const problems = problemsOf("stack jobs run in the stack's environment, from main", repoWith(BEFORE));
        assert.ok(problems.some((problem) => /deploy\.yml: job prod\/up reaches prod from a trigger not bound to main \(push, workflow_dispatch\)/.test(problem)), problems.join("\n"));
        const deploy = JOBS.filter((job) => job.file === "deploy.yml");
        assert.ok(deploy.length >= 4);
        for (const job of deploy) {
            assert.ok(job.conditions.some((condition) => condition === "github.ref == 'refs/heads/main'"), `${job.id} is not bound to main`);
        }
    });

    test("updates run in the stack's own environment; previews and drift checks in <stack>-preview", () => {
        for (const job of JOBS.filter((candidate) => stackOf(candidate) !== undefined)) {
            const commands = pulumiCommands(job).map((step) => step.with.command);
            const expected = commands.includes("up") ? stackOf(job) : `${stackOf(job)}-preview`;
            assert.equal(job.environment, expected, `${job.file}/${job.id} (${commands})`);
        }
    });
});

describe("GitHub workflows: deploys", () => {
    const deploy = JOBS.filter((job) => job.file === "deploy.yml");
    const byCaller = (id: string) => {
        const job = deploy.find((candidate) => candidate.callerId === id);
        assert.ok(job, `deploy.yml has no job ${id}`);
        return job;
    };

    test("nothing is updated before the ci workflow passed", () => {
        assert.ok(problemsOf("deploys wait for CI, prod applies its reviewed plan", repoWith(BEFORE)).some((problem) => /without needing the ci workflow/.test(problem)));
        const ci = deploy.filter((job) => job.usesWorkflow === "ci.yml");
        assert.equal(ci.length, 1);
        assert.deepEqual(ci[0].needs, []);
    });

    test("staging is updated, then prod is previewed with a saved plan, then prod applies that plan after approval", () => {
        const ups = deploy.filter((job) => pulumiCommands(job).some((step) => step.with.command === "up"));
        assert.deepEqual(ups.map(stackOf), ["staging", "prod"]);
        const prod = ups[1];
        assert.equal(prod.environment, "prod", "the environment with required reviewers");
        const preview = byCaller(prod.needs[0]);
        assert.equal(stackOf(preview), "prod");
        assert.equal(preview.inputs["save-plan"], true);
        assert.equal(prod.inputs["apply-plan"], true);
        // The file the preview saves is the file the update reads, through the same artifact.
        const file = (step: any) => /format\('([^']+)', runner\.temp, inputs\.stack\)/.exec(String(step.with.plan))?.[1];
        const saved = file(pulumiCommands(preview)[0]);
        assert.ok(saved);
        assert.equal(file(pulumiCommands(prod)[0]), saved);
        const upload = activeSteps(preview).find((step) => /upload-artifact@/.test(step.uses ?? ""));
        const download = activeSteps(prod).find((step) => /download-artifact@/.test(step.uses ?? ""));
        assert.equal(upload?.with.name, download?.with.name);
        assert.ok(activeSteps(prod).indexOf(download) < activeSteps(prod).indexOf(pulumiCommands(prod)[0]));
    });

    test("the plan artifact is this run attempt's: a re-run of all jobs previews anew, a re-run of the failed update finds no plan", () => {
        const problems = problemsOf("artifacts are named per run attempt", repoWith(BEFORE_21));
        assert.deepEqual(problems, ["preview", "up"].map((job) =>
            `plan.yml: job ${job}, step 1: artifact name "pulumi-plan-prod" lacks \${{ github.run_attempt }}`));
        const artifacts = JOBS.flatMap((job) => job.steps).filter((step) => /^actions\/(upload|download)-artifact@/.test(step.uses ?? ""));
        assert.ok(artifacts.some((step) => /download/.test(step.uses)) && artifacts.some((step) => /upload/.test(step.uses)), "uploads and downloads are checked");
        for (const step of artifacts) {
            assert.match(step.with.name, /\$\{\{ github\.run_attempt \}\}/, `${step.uses}: ${step.with.name}`);
        }
    });

    test("one update per stack at a time, a newer deploy waits and never cancels a running one", () => {
        const deployDoc = WORKFLOWS.find((workflow) => workflow.file === "deploy.yml") as Workflow;
        assert.equal(deployDoc.doc.concurrency["cancel-in-progress"], false);
        const reusable = WORKFLOWS.find((workflow) => workflow.file === "pulumi.yml") as Workflow;
        const concurrency = reusable.doc.jobs.pulumi.concurrency;
        assert.equal(concurrency["cancel-in-progress"], false);
        assert.match(concurrency.group, /inputs\.command == 'up' && format\('pulumi-up-\{0\}', inputs\.stack\)/);
    });

    test("every stack that is deployed gets a daily drift check that fails on any change and opens an issue", () => {
        assert.ok(problemsOf("a scheduled drift check per deployed stack", repoWith(BEFORE)).length > 0);
        const drift = JOBS.filter((job) => job.triggers.includes("schedule") && pulumiCommands(job).some((step) => step.with.refresh === true));
        const deployed = JOBS.filter((job) => pulumiCommands(job).some((step) => step.with.command === "up")).map(stackOf);
        assert.deepEqual([...new Set(drift.map(stackOf))].sort(), [...new Set(deployed)].sort());
        for (const job of drift) {
            const step = pulumiCommands(job)[0];
            assert.equal(step.with["expect-no-changes"], true);
            assert.equal(step.with.command, "preview", "a drift check changes nothing");
        }
        // Reported (an issue) when a check fails, not when an earlier job of the run does.
        const checkers = new Set(drift.map((job) => job.callerId));
        const report = JOBS.find((job) => job.file === "drift.yml" && job.steps.some((step) => /gh issue (create|comment)/.test(step.run ?? "")));
        assert.ok(report, "a failed drift check is reported");
        assert.ok(report.needs.some((id) => checkers.has(id)));
        assert.ok(report.conditions.some((condition) => [...checkers].some((id) => condition.includes(`needs.${id}.result == 'failure'`))), report.conditions.join());
    });
});

describe("GitHub workflows: Pulumi CLI and action options", () => {
    test(".pulumi-version is the Pulumi engine version of the lockfile, at least 3.219 (error hooks)", () => {
        const version = fs.readFileSync(path.join(ROOT, ".pulumi-version"), "utf8").trim();
        const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
        assert.equal(version, lock.packages["node_modules/@pulumi/pulumi"].version);
        const [major, minor] = version.split(".").map(Number);
        assert.ok(major > 3 || (major === 3 && minor >= 219), version);
    });

    test("every pulumi/actions step installs the CLI of .pulumi-version and none creates a stack", () => {
        const problems = problemsOf("one pinned Pulumi CLI, no stack created by CI", repoWith(BEFORE));
        assert.ok(problems.some((problem) => /pulumi-version-file/.test(problem)));
        assert.ok(problems.some((problem) => /secrets-provider would create a stack/.test(problem)));
        const steps = JOBS.flatMap((job) => job.steps.filter(isPulumiAction));
        assert.ok(steps.length > 0);
        for (const step of steps) {
            assert.equal(step.with["pulumi-version-file"], ".pulumi-version");
        }
    });

    test("every Pulumi operation writes its summary, without progress lines; an update names its commit", () => {
        assert.ok(problemsOf("Pulumi runs report on the summary", repoWith(BEFORE)).some((problem) => /up without message/.test(problem)));
        const ups = JOBS.flatMap((job) => pulumiCommands(job)).filter((step) => step.with.command === "up");
        assert.ok(ups.length > 0);
        for (const step of ups) {
            assert.match(step.with.message, /\$\{\{ github\.sha \}\}/);
        }
    });
});

describe("GitHub workflows: shell steps", () => {
    test("run steps use bash -euo pipefail", () => {
        const problems = problemsOf("run steps use bash -euo pipefail", repoWith(BEFORE));
        assert.ok(problems.some((problem) => /integration\.yml: job dev-stack/.test(problem)));
    });

    test("jq without -e, curl without --max-time or --fail are rejected", () => {
        assert.deepEqual(shellHazards('key=$(out apiKeys --show-secrets | jq -r .outbound)').length, 1);
        assert.deepEqual(shellHazards('test "$(curl -fsS "${url}healthz")" = ok').length, 1, "no time limit");
        assert.deepEqual(shellHazards('curl -sS --max-time 10 "$url"').length, 1, "no --fail");
        assert.deepEqual(shellHazards('v=$(jq -er .outbound <<< "$json"); curl -fsS --max-time 10 "$url"'), []);
        assert.deepEqual(shellHazards('gh issue list --json number --jq ".[0].number // empty"'), [], "gh's --jq is not jq");
    });

    test("the dev scripts' local backend directory exists before any Pulumi command uses it, in the cleanup too", () => {
        const problems = problemsOf("local backend created before use", repoWith(BEFORE));
        assert.ok(problems.some((problem) => /Create the dev stack/.test(problem)), problems.join("\n"));
        assert.ok(problems.some((problem) => /pulumi destroy/.test(problem)), "an always() cleanup cannot rely on dev:up having run");
    });

    test("no secret value is written in a workflow", () => {
        for (const workflow of WORKFLOWS) {
            for (const match of workflow.text.matchAll(/^\s*[A-Z_]*(PASSPHRASE|TOKEN|KEY|PASSWORD|CREDENTIALS)[A-Z_]*:\s*(.+)$/gm)) {
                assert.match(match[2], /^\$\{\{ (secrets\.[A-Z_]+|github\.token) \}\}$/, `${workflow.file}: ${match[0].trim()}`);
            }
        }
    });
});

describe("GitHub workflows: CI and integration", () => {
    const ciRun = fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8");
    const npmCommands = (text: string) => [...text.matchAll(/^\s*(npm (?:ci|test|run [\w:-]+))\b/gm)].map((match) => match[1]);
    const scriptsOf = (file: string) => JOBS.filter((job) => job.file === file).flatMap((job) => job.steps.map((step) => step.run ?? "")).join("\n");

    test("ci.yml runs every check of .ci/run except the end-to-end suite, which integration.yml runs", () => {
        const checks = npmCommands(ciRun);
        assert.ok(checks.includes("npm run lint") && checks.includes("npm test"));
        const ci = npmCommands(scriptsOf("ci.yml"));
        const integration = npmCommands(scriptsOf("integration.yml"));
        for (const check of checks) {
            assert.ok(check === "npm run test:e2e" ? integration.includes(check) : ci.includes(check), `${check} runs on GitHub`);
        }
        const on = parseYaml(fs.readFileSync(path.join(ROOT, ".github", "workflows", "ci.yml"), "utf8")).on;
        assert.ok("pull_request" in on && "push" in on && "workflow_call" in on, "every pull request and push, and callable by deploy.yml");
    });

    test("integration runs the e2e suite on a GitHub-hosted runner against upstream, uploads logs on failure, always cleans up", () => {
        const jobs = JOBS.filter((job) => job.file === "integration.yml");
        assert.equal(jobs.length, 1);
        const [job] = jobs;
        assert.ok(job.runsOn.every((label) => /^ubuntu-/.test(label)), "GitHub-hosted, never a runner with access to a stack");
        const steps = job.steps;
        const index = (predicate: (step: any) => boolean) => steps.findIndex(predicate);
        const e2e = index((step) => /npm run test:e2e/.test(step.run ?? ""));
        const fixtures = index((step) => /scripts\/ci-e2e-upstream\.ts.*GITHUB_ENV/.test(step.run ?? ""));
        const install = index((step) => isPulumiAction(step) && !step.with.command);
        assert.ok(fixtures >= 0 && fixtures < e2e && install >= 0 && install < e2e);
        const env = steps[e2e].env;
        assert.equal(env.E2E_ENGINE, "external");
        assert.equal(env.E2E_TOOLCHAIN, "external");
        assert.equal(env.E2E_FIXTURES, "upstream");
        const defaultRepo = /["']source\.repo["']\s*,\s*["']([^"']+)["']/.exec(fs.readFileSync(path.join(ROOT, "components", "config.ts"), "utf8"))?.[1];
        assert.equal(env.E2E_UPSTREAM_REPO, defaultRepo, "the upstream the program builds by default");
        const upload = steps[index((step) => /upload-artifact@/.test(step.uses ?? ""))];
        assert.equal(upload.if, "failure()");
        assert.equal(upload.with.path, env.E2E_ARTIFACTS_DIR);
        const cleanup = steps[steps.length - 1];
        assert.equal(cleanup.if, "always()");
        assert.match(cleanup.run, /docker ps -aq \| xargs -r docker rm -f/);
        const text = (WORKFLOWS.find((workflow) => workflow.file === "integration.yml") as Workflow).text;
        assert.doesNotMatch(text, /secrets\./, "no secret: local backends only");
    });

    test("Dependabot keeps the pinned actions, the npm packages and every Go module of the e2e toolchain up to date", () => {
        const config = parseYaml(fs.readFileSync(path.join(ROOT, ".github", "dependabot.yml"), "utf8"));
        assert.equal(config.version, 2);
        const ecosystem = (name: string) => {
            const update = config.updates.find((candidate: any) => candidate["package-ecosystem"] === name);
            assert.ok(update, `${name} ecosystem`);
            return update;
        };
        assert.equal(ecosystem("github-actions").directory, "/", "where .github/workflows is");
        assert.equal(ecosystem("npm").directory, "/", "where package.json is");
        const goModules = (dir: string): string[] => fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
            entry.isDirectory() ? goModules(path.join(dir, entry.name)) : entry.name === "go.mod" ? [`/${dir}`] : []);
        const modules = goModules(path.join("e2e", "toolchain")).sort();
        assert.ok(modules.length > 0);
        assert.deepEqual([...ecosystem("gomod").directories].sort(), modules);
        assert.ok(problemsOf("actions name their release", repoWith(BEFORE)).some((problem) => /pulumi\/actions@v6 has no release comment/.test(problem)));
    });
});
