#!/usr/bin/env node
// Checks what `npm run dev:up` needs before it touches any state, and says exactly
// what is missing and how to get it. Exit 1 with every problem listed, 0 when ready.
import { spawnSync } from "node:child_process";

const NODE_MIN = [20, 19, 0];
const PULUMI_MIN = [3, 219, 0]; // error hooks
const DOCKER_API_MIN = [1, 44]; // health check start interval (Docker Engine 25)

const parse = (text) => (text.match(/\d+(\.\d+)+/)?.[0] ?? "").split(".").map(Number);
const atLeast = (have, want) => {
    for (let i = 0; i < want.length; i++) {
        if ((have[i] ?? 0) !== want[i]) {
            return (have[i] ?? 0) > want[i];
        }
    }
    return true;
};
const run = (command, args) => {
    const result = spawnSync(command, args, { encoding: "utf8", timeout: 20_000 });
    return result.error ? { missing: true } : { status: result.status, out: `${result.stdout}${result.stderr}`.trim() };
};

const problems = [];

if (!atLeast(parse(process.versions.node), NODE_MIN)) {
    problems.push(`Node.js ${process.versions.node} is too old: install Node.js ${NODE_MIN.join(".")} or later (CI uses the version in .nvmrc)`);
}

const pulumi = run("pulumi", ["version"]);
if (pulumi.missing) {
    problems.push(`the Pulumi CLI is not on PATH: install version ${PULUMI_MIN.join(".")} or later (https://www.pulumi.com/docs/install/)`);
} else if (!atLeast(parse(pulumi.out), PULUMI_MIN)) {
    problems.push(`Pulumi CLI ${pulumi.out} is too old: this program needs ${PULUMI_MIN.join(".")} or later (pulumi self-update, or https://www.pulumi.com/docs/install/)`);
}

const docker = run("docker", ["version", "--format", "{{.Server.APIVersion}}"]);
if (docker.missing) {
    problems.push("the docker CLI is not on PATH: install Docker Engine 25 or later (https://docs.docker.com/engine/install/)");
} else if (docker.status !== 0) {
    problems.push(`no Docker Engine answers (${docker.out.split("\n").pop()}): start it, or set DOCKER_HOST to its socket`);
} else if (!atLeast(parse(docker.out), DOCKER_API_MIN)) {
    problems.push(`the Docker Engine speaks API ${docker.out}; this program needs API ${DOCKER_API_MIN.join(".")} (Docker Engine 25) or later: upgrade the engine`);
}

if (problems.length > 0) {
    process.stderr.write(`dev:up cannot start (${problems.length} problem${problems.length > 1 ? "s" : ""}); nothing was changed:\n`);
    for (const problem of problems) {
        process.stderr.write(`  - ${problem}\n`);
    }
    process.exit(1);
}
