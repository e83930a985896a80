// scripts/ci-environments.ts, run by deploy.yml and drift.yml before any job
// names an environment: GitHub would create a missing one unprotected.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkEnvironment, EnvironmentState, parseExpectation } from "../scripts/ci-environments";

const mainOnly: EnvironmentState["environment"] = {
    can_admins_bypass: false,
    protection_rules: [{ type: "branch_policy" }],
    deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
};
const reviewed: EnvironmentState["environment"] = {
    ...mainOnly,
    protection_rules: [{ type: "required_reviewers", prevent_self_review: true, reviewers: [{ type: "Team" }] }, { type: "branch_policy" }],
};
const MAIN = [{ name: "main", type: "branch" }];

describe("GitHub environments checked before use", () => {
    test("flags: NAME[:main][:reviewers]", () => {
        assert.deepEqual(parseExpectation("prod:main:reviewers"), { name: "prod", mainOnly: true, reviewers: true });
        assert.deepEqual(parseExpectation("staging-preview"), { name: "staging-preview", mainOnly: false, reviewers: false });
        assert.throws(() => parseExpectation("prod:approval"), /unknown flag approval/);
    });

    test("a missing environment stops the run before a job creates it unprotected", () => {
        assert.match(checkEnvironment(parseExpectation("prod:main:reviewers"), {}).errors.join(), /environment prod does not exist: create it .* first .* a job would create it unprotected/);
    });

    test("main only: any other branch, tag or all branches is refused", () => {
        const expected = parseExpectation("staging:main");
        assert.deepEqual(checkEnvironment(expected, { environment: mainOnly, branchPolicies: MAIN }), { errors: [], warnings: [] });
        assert.match(checkEnvironment(expected, { environment: { ...mainOnly, deployment_branch_policy: null } }).errors.join(), /accepts every branch/);
        assert.match(checkEnvironment(expected, { environment: mainOnly, branchPolicies: [...MAIN, { name: "release/*", type: "branch" }] }).errors.join(), /accepts branch:main, branch:release\/\*/);
        assert.match(checkEnvironment(expected, { environment: mainOnly, branchPolicies: [{ name: "main", type: "tag" }] }).errors.join(), /accepts tag:main/);
        const protectedBranches = { ...mainOnly, deployment_branch_policy: { protected_branches: true, custom_branch_policies: false } };
        assert.deepEqual(checkEnvironment(expected, { environment: protectedBranches }).errors, []);
        assert.match(checkEnvironment(expected, { environment: protectedBranches }).warnings.join(), /every protected branch/);
    });

    test("prod needs reviewers who cannot approve their own run, and no administrator bypass", () => {
        const expected = parseExpectation("prod:main:reviewers");
        assert.deepEqual(checkEnvironment(expected, { environment: reviewed, branchPolicies: MAIN }), { errors: [], warnings: [] });
        assert.match(checkEnvironment(expected, { environment: mainOnly, branchPolicies: MAIN }).errors.join(), /no required reviewers/);
        const loose = { ...reviewed, can_admins_bypass: true, protection_rules: [{ type: "required_reviewers", prevent_self_review: false, reviewers: [{}] }] };
        const { errors, warnings } = checkEnvironment(expected, { environment: loose, branchPolicies: MAIN });
        assert.deepEqual(errors, []);
        assert.equal(warnings.length, 2);
    });
});
