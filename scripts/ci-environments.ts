// Before deploy.yml and drift.yml touch a stack: the GitHub environments they
// use exist and are protected as docs/ci-cd.md says. A job that names an
// environment which does not exist yet makes GitHub create it, unprotected
// (any branch, no reviewer); this check runs first and stops the run instead.
//
//   node --import tsx scripts/ci-environments.ts NAME[:main][:reviewers]...
//
//   :main       only the branch main may deploy to it (deployment branch rule)
//   :reviewers  required reviewers, who cannot approve their own run
//
// Reads the GitHub API with GITHUB_TOKEN (the job needs `actions: read`).

export interface Expectation {
    name: string;
    mainOnly: boolean;
    reviewers: boolean;
}

/** What the API says about one environment; `undefined` when it does not exist. */
export interface EnvironmentState {
    environment?: {
        can_admins_bypass?: boolean;
        protection_rules?: { type: string; prevent_self_review?: boolean; reviewers?: unknown[] }[];
        deployment_branch_policy?: { protected_branches: boolean; custom_branch_policies: boolean } | null;
    };
    /** GET .../deployment-branch-policies, when custom policies are on. */
    branchPolicies?: { name: string; type?: string }[];
}

export function parseExpectation(arg: string): Expectation {
    const [name, ...flags] = arg.split(":");
    for (const flag of flags) {
        if (flag !== "main" && flag !== "reviewers") {
            throw new Error(`unknown flag ${flag} in ${arg} (main, reviewers)`);
        }
    }
    return { name, mainOnly: flags.includes("main"), reviewers: flags.includes("reviewers") };
}

export function checkEnvironment(expected: Expectation, state: EnvironmentState): { errors: string[]; warnings: string[] } {
    const errors: string[] = [];
    const warnings: string[] = [];
    const settings = "Settings > Environments";
    const environment = state.environment;
    if (!environment) {
        errors.push(`environment ${expected.name} does not exist: create it in ${settings} first (docs/ci-cd.md, "Environments"); a job would create it unprotected`);
        return { errors, warnings };
    }
    if (expected.mainOnly) {
        const policy = environment.deployment_branch_policy;
        const branches = (state.branchPolicies ?? []).map((entry) => `${entry.type ?? "branch"}:${entry.name}`);
        if (!policy) {
            errors.push(`environment ${expected.name} accepts every branch: set its deployment branches to the branch main only (${settings} > ${expected.name} > Deployment branches and tags)`);
        } else if (policy.protected_branches) {
            warnings.push(`environment ${expected.name} accepts every protected branch; docs/ci-cd.md asks for main only`);
        } else if (branches.length !== 1 || branches[0] !== "branch:main") {
            errors.push(`environment ${expected.name} accepts ${branches.join(", ") || "no branch"}; it must accept the branch main only`);
        }
    }
    if (expected.reviewers) {
        const rule = (environment.protection_rules ?? []).find((candidate) => candidate.type === "required_reviewers");
        if (!rule || (rule.reviewers ?? []).length === 0) {
            errors.push(`environment ${expected.name} has no required reviewers: add the prod reviewers (${settings} > ${expected.name} > Required reviewers)`);
        } else if (!rule.prevent_self_review) {
            warnings.push(`environment ${expected.name} lets the person who started a deploy approve it (Prevent self-review is off)`);
        }
        if (environment.can_admins_bypass !== false) {
            warnings.push(`environment ${expected.name} lets administrators bypass its protection rules (Allow administrators to bypass configured protection rules)`);
        }
    }
    return { errors, warnings };
}

async function fetchState(name: string): Promise<EnvironmentState> {
    const api = process.env.GITHUB_API_URL ?? "https://api.github.com";
    const repo = process.env.GITHUB_REPOSITORY;
    const token = process.env.GITHUB_TOKEN;
    if (!repo || !token) {
        throw new Error("GITHUB_REPOSITORY and GITHUB_TOKEN must be set (this runs in a GitHub Actions job)");
    }
    const get = async (url: string) => {
        const response = await fetch(url, {
            headers: { authorization: `Bearer ${token}`, accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" },
            signal: AbortSignal.timeout(20_000),
        });
        if (response.status === 404) {
            return undefined;
        }
        if (!response.ok) {
            throw new Error(`${url}: HTTP ${response.status} ${await response.text()} (the job needs permissions: actions: read)`);
        }
        return response.json() as Promise<Record<string, unknown>>;
    };
    const base = `${api}/repos/${repo}/environments/${encodeURIComponent(name)}`;
    const environment = (await get(base)) as EnvironmentState["environment"];
    if (!environment?.deployment_branch_policy?.custom_branch_policies) {
        return { environment };
    }
    const policies = (await get(`${base}/deployment-branch-policies?per_page=100`)) as { branch_policies?: EnvironmentState["branchPolicies"] } | undefined;
    return { environment, branchPolicies: policies?.branch_policies ?? [] };
}

if (require.main === module) {
    (async () => {
        const expectations = process.argv.slice(2).map(parseExpectation);
        if (expectations.length === 0) {
            throw new Error("usage: ci-environments.ts NAME[:main][:reviewers]...");
        }
        let failed = false;
        for (const expected of expectations) {
            const { errors, warnings } = checkEnvironment(expected, await fetchState(expected.name));
            for (const warning of warnings) {
                process.stderr.write(`::warning title=Environment ${expected.name}::${warning}\n`);
            }
            for (const error of errors) {
                process.stderr.write(`::error title=Environment ${expected.name}::${error}\n`);
            }
            failed ||= errors.length > 0;
            if (errors.length === 0) {
                process.stderr.write(`${expected.name}: exists${expected.mainOnly ? ", main only" : ""}${expected.reviewers ? ", required reviewers" : ""}\n`);
            }
        }
        process.exit(failed ? 1 : 0);
    })().catch((error) => {
        process.stderr.write(`::error title=Environments::${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
    });
}
