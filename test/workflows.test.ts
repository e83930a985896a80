// The GitHub workflows cannot run here (no Docker engine, no Pulumi CLI).
// `npm run lint` checks them with actionlint; these tests assert what they
// must guarantee.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";

const DIR = path.join(__dirname, "..", ".github", "workflows");
const FILES = fs.readdirSync(DIR).filter((file) => file.endsWith(".yml"));

function workflow(file: string): any {
    return parseYaml(fs.readFileSync(path.join(DIR, file), "utf8"));
}

function steps(file: string, job: string): any[] {
    return workflow(file).jobs[job].steps;
}

describe("GitHub workflows", () => {
    test("preview, deploy, up and integration exist", () => {
        assert.deepEqual(FILES.sort(), ["deploy.yml", "integration.yml", "preview.yml", "up.yml"]);
    });

    test("previews are read-only, per stack, posted on the PR, and never run fork code with secrets", () => {
        const preview = workflow("preview.yml");
        assert.deepEqual(Object.keys(preview.on), ["pull_request"], "pull_request_target would hand secrets to fork code");
        assert.deepEqual(preview.permissions, { contents: "read", "pull-requests": "write" });
        const job = preview.jobs.preview;
        assert.equal(job.if, "github.event.pull_request.head.repo.full_name == github.repository");
        assert.deepEqual(job.strategy.matrix.stack, ["staging", "prod"]);
        assert.equal(job.environment, undefined, "a preview must not wait for prod's approval");
        const pulumi = job.steps.find((s: any) => String(s.uses).startsWith("pulumi/actions@"));
        assert.equal(pulumi.with.command, "preview");
        assert.equal(pulumi.with.diff, true);
        assert.equal(pulumi.with["comment-on-pr"], true);
        assert.deepEqual(preview.jobs.fork.permissions, {});
    });

    test("deploys run up per stack, one at a time, staging before prod, each in its environment", () => {
        const deploy = workflow("deploy.yml");
        assert.deepEqual(deploy.on.push.branches, ["main"]);
        assert.equal(deploy.jobs.prod.needs, "staging");
        assert.deepEqual([deploy.jobs.staging.with.stack, deploy.jobs.prod.with.stack], ["staging", "prod"]);
        const up = workflow("up.yml").jobs.up;
        assert.equal(up.environment, "${{ inputs.stack }}");
        assert.equal(up.concurrency["cancel-in-progress"], false);
        const pulumi = up.steps.find((s: any) => String(s.uses).startsWith("pulumi/actions@"));
        assert.equal(pulumi.with.command, "up");
    });

    test("no secret value is written in a workflow", () => {
        for (const file of FILES) {
            const text = fs.readFileSync(path.join(DIR, file), "utf8");
            for (const match of text.matchAll(/(PASSPHRASE|TOKEN|KEY|PASSWORD|CREDENTIALS)[A-Z_]*:\s*(.+)/g)) {
                assert.match(match[2], /^\$\{\{ (secrets|vars)\.[A-Z_]+ \}\}$/, `${file}: ${match[0]}`);
            }
        }
    });

    test("the integration run deploys dev for real, checks it from outside, rotates, destroys", () => {
        const script = steps("integration.yml", "dev-stack").map((s) => s.run ?? "").join("\n");
        for (const expected of [
            /npm run dev:up/,
            /\$\{url\}healthz/,
            /-X PROPFIND/,
            /X-LS-Api-Key: \$key/,
            /= 207/,
            /401\|403/,
            /table_schema = 'sabre'/,
            /preview --stack dev --expect-no-changes/,
            /config set --path apiKeys\.rotation/,
            /npm run dev:down/,
        ]) {
            assert.match(script, expected);
        }
    });
});
