// `npm run lint` lints the workflows with a real actionlint and shellcheck and
// with zizmor (scripts/lint-workflows.sh), and checks the inputs of actions
// pinned by SHA against their action.yml (scripts/action-inputs.ts). These
// tests show that it catches what the WASM actionlint without shellcheck
// missed before issue 10, and that zizmor rejects the defects the project's
// own rules no longer check (issue 21).
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "./fixtures";
import { ActionUse, actionUses, checkInputs, checkWorkflows, metadataOf, Unreachable } from "../scripts/action-inputs";

const ROOT = path.join(__dirname, "..");
const LINT = path.join(ROOT, "scripts", "lint-workflows.sh");
const SETUP_NODE_SHA = "820762786026740c76f36085b0efc47a31fe5020";


/** A git repository (for actionlint, a .git directory) holding these workflows. */
function repoWith(files: Record<string, string>): string {
    const dir = tempDir("lint");
    fs.mkdirSync(path.join(dir, ".git"));
    fs.mkdirSync(path.join(dir, ".github", "workflows"), { recursive: true });
    for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(dir, ".github", "workflows", name), text);
    }
    return dir;
}

/** scripts/lint-workflows.sh on some workflow files (it installs actionlint, shellcheck and zizmor when missing). */
function lint(repo: string, ...files: string[]): { status: number | null; output: string } {
    const result = spawnSync("bash", [LINT, ...files.map((file) => path.join(repo, ".github", "workflows", file))], {
        cwd: repo,
        encoding: "utf8",
        timeout: 600_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("workflow lint: actionlint with shellcheck", () => {
    const repo = repoWith({
        "called.yml": `name: called
on:
  workflow_call:
    inputs:
      stack:
        type: string
        required: true
jobs:
  run:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "\${{ inputs.stack }}"
`,
        "caller.yml": `name: caller
on: push
permissions: {}
jobs:
  missing-input:
    uses: ./.github/workflows/called.yml
  unknown-input:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/setup-node@v5
        with:
          node-versio: 20
  unterminated-quote:
    runs-on: ubuntu-24.04
    steps:
      - run: |
          echo "starts here
          echo done
  pinned-typo:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/setup-node@${SETUP_NODE_SHA} # v7
        with:
          node-versio: 20
`,
    });
    const { status, output } = lint(repo, "caller.yml", "called.yml");

    test("the lint fails on the broken workflow", () => {
        assert.equal(status, 1, output);
        assert.match(output, /actionlint v1\.7\.12 with shellcheck \d[^\n]*, zizmor \d+\.\d+\.\d+ \(offline\)/);
    });

    test("a reusable workflow called without a required input", () => {
        assert.match(output, /input "stack" is required by "\.\/\.github\/workflows\/called\.yml" reusable workflow/, output);
    });

    test("an unknown input of actions/setup-node@v5", () => {
        assert.match(output, /input "node-versio" is not defined in action "actions\/setup-node@v5"/, output);
    });

    test("an unterminated quote in a run: script (shellcheck)", () => {
        assert.match(output, /shellcheck reported issue in this script: SC\d+:error:\d+:\d+: (Expected end of double quoted string|Couldn't parse this double quoted string)/, output);
    });

    test("the same typo in an action pinned by SHA passes actionlint: scripts/action-inputs.ts exists for it", () => {
        const reported = output.split("\n").filter((line) => /input "node-versio" is not defined/.test(line));
        assert.equal(reported.length, 1, "only the @v5 use is reported by actionlint");
        assert.doesNotMatch(output, new RegExp(SETUP_NODE_SHA));
    });
});

describe("workflow lint: zizmor", () => {
    const called = `name: called
on:
  workflow_call:
permissions: {}
jobs:
  run:
    runs-on: ubuntu-24.04
    steps:
      - run: echo called
`;
    // What the workflows before issue 10 did, and what the project's rules checked
    // until zizmor took it over: tags instead of SHAs, the job token left in
    // .git/config, the default token permissions, secrets handed down wholesale,
    // a pull_request_target trigger, and a pull request's title run as code.
    const repo = repoWith({
        "called.yml": called,
        "former.yml": `name: former
on:
  pull_request_target:
jobs:
  preview:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v5
      - run: echo "\${{ github.event.pull_request.title }}"
  deploy:
    uses: ./.github/workflows/called.yml
    secrets: inherit
`,
        // Only a low finding: GitHub's newer syntax for a workflow of the same repository.
        "low.yml": `name: low
on: push
permissions: {}
jobs:
  call:
    uses: ./.github/workflows/called.yml
`,
    });
    const audits = (text: string) => [...new Set([...text.matchAll(/^(?:error|warning|help|info|note)\[([a-z-]+)\]/gm)].map((m) => m[1]))].sort();

    test("each defect the project's rules left to zizmor fails the lint, named by its audit", () => {
        const { status, output } = lint(repo, "former.yml", "called.yml");
        assert.equal(status, 1, output);
        for (const audit of ["artipacked", "dangerous-triggers", "excessive-permissions", "secrets-inherit", "template-injection", "unpinned-uses"]) {
            assert.ok(audits(output).includes(audit), `${audit} in:\n${output}`);
        }
        assert.match(output, /zizmor: findings of medium or high severity/);
    });

    test("a low finding is printed and does not fail the lint", () => {
        const { status, output } = lint(repo, "low.yml", "called.yml");
        assert.deepEqual(audits(output), ["self-repository"], output);
        assert.equal(status, 0, output);
    });
});

describe("workflow lint: inputs of actions pinned by SHA", () => {
    const metadata = {
        inputs: {
            "node-version": { description: "version" },
            "token": { required: true, default: "${{ github.token }}" },
            "registry": { required: true },
        },
    };
    const use = (inputs: string[]): ActionUse => ({ where: "w.yml: job j, step 1", owner: "actions", repo: "setup-node", dir: "", ref: SETUP_NODE_SHA, inputs });

    test("an input the action does not declare is reported with the declared ones", () => {
        assert.deepEqual(checkInputs(use(["node-versio", "registry"]), metadata), [
            'w.yml: job j, step 1: input "node-versio" is not declared by the action (it declares: node-version, registry, token)',
        ]);
    });

    test("a required input without default is reported when missing; names are case-insensitive", () => {
        assert.deepEqual(checkInputs(use(["Node-Version"]), metadata), ['w.yml: job j, step 1: required input "registry" is missing']);
        assert.deepEqual(checkInputs(use(["node-version", "registry"]), metadata), []);
    });

    test("uses are read from the workflows with their pinned ref and inputs; local and docker uses are not", () => {
        const repo = repoWith({
            "w.yml": `on: push
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - uses: ./.github/actions/local
      - uses: docker://alpine:3
      - uses: github/codeql-action/init@${"a".repeat(40)} # v4
        with:
          languages: javascript
`,
        });
        const uses = actionUses(path.join(repo, ".github", "workflows"));
        assert.deepEqual(uses.map(({ owner, repo: name, dir, ref, inputs }) => ({ owner, name, dir, ref, inputs })), [
            { owner: "github", name: "codeql-action", dir: "init", ref: "a".repeat(40), inputs: ["languages"] },
        ]);
    });

    test("metadata at a pinned SHA is fetched once and cached; action.yaml is tried after action.yml", async () => {
        const cache = tempDir("action-metadata");
        const asked: string[] = [];
        const get = async (url: string) => {
            asked.push(url);
            return url.endsWith("action.yaml") ? { status: 200, text: "inputs:\n  node-version: {}\n" } : { status: 404, text: "" };
        };
        assert.deepEqual(await metadataOf(use([]), cache, get), { inputs: { "node-version": {} } });
        assert.deepEqual(asked, [
            `https://raw.githubusercontent.com/actions/setup-node/${SETUP_NODE_SHA}/action.yml`,
            `https://raw.githubusercontent.com/actions/setup-node/${SETUP_NODE_SHA}/action.yaml`,
        ]);
        assert.deepEqual(await metadataOf(use([]), cache, async () => assert.fail("fetched again")), { inputs: { "node-version": {} } });
        await assert.rejects(metadataOf({ ...use([]), ref: "b".repeat(40) }, cache, async () => { throw new Error("getaddrinfo ENOTFOUND"); }), Unreachable);
    });

    test("a typo in a pinned action's inputs fails the check; a pin without action.yml is a wrong pin; offline it is reported unchecked", async () => {
        const repo = repoWith({
            "w.yml": `on: push
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/setup-node@${SETUP_NODE_SHA} # v7
        with:
          node-versio: 20
      - uses: actions/checkout@${"c".repeat(40)} # v7
`,
        });
        const dir = path.join(repo, ".github", "workflows");
        const cache = tempDir("action-metadata");
        const online = await checkWorkflows(dir, cache, async (url) =>
            url.includes("/setup-node/") && url.endsWith("action.yml") ? { status: 200, text: "inputs:\n  node-version: {}\n" } : { status: 404, text: "" });
        assert.equal(online.unchecked.length, 0);
        assert.match(online.problems[0], /input "node-versio" is not declared by the action \(it declares: node-version\)/);
        assert.match(online.problems[1], /no action\.yml at actions\/checkout@c{40} \(a wrong pin\?\)/);
        const emptyCache = tempDir("action-metadata");
        const offline = await checkWorkflows(dir, emptyCache, async () => { throw new Error("offline"); });
        assert.deepEqual(offline.problems, []);
        assert.equal(offline.unchecked.length, 2);
    });
});
