// `npm run dev:up` / `dev:down` (scripts/dev.sh) with the tools a laptop already has: they are
// used as they are, nothing is built or started next to them, and what cannot work is said.
// (Building the toolchain and starting the project's own engine are run for real; see README.)
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "./fixtures";

const SCRIPT = path.join(__dirname, "..", "scripts", "dev.sh");

interface Run {
    status: number | null;
    stderr: string;
    /** Each call of the fake commands: `<command> <args>` and the backend it was given. */
    calls: string[];
    state: string;
}

/**
 * Runs dev.sh with only the fake commands given (shell script bodies) besides the system's
 * own (/usr/bin, /bin: node, bash, coreutils), its state in a directory of its own.
 */
function dev(args: string[], commands: Record<string, string>, env: Record<string, string> = {}, prepare?: (state: string) => void): Run {
    const bin = tempDir("dev-bin");
    const state = tempDir("dev-state");
    const calls = path.join(bin, "calls");
    for (const [name, body] of Object.entries(commands)) {
        fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $* [$PULUMI_BACKEND_URL]" >>${calls}\n${body}\n`, { mode: 0o755 });
    }
    prepare?.(state);
    const result = spawnSync("bash", [SCRIPT, ...args], {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: state, CALENDARS_DEV_STATE: state, ...env },
    });
    return {
        status: result.status,
        stderr: result.stderr,
        calls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [],
        state,
    };
}

const PULUMI = `case "$1 $2" in
"version "*) echo v3.248.0 ;;
"stack output") echo http://127.0.0.1:8080/caldav/ ;;
esac`;
const DOCKER_UP = `case "$*" in
*APIVersion*) echo 1.45 ;;
version*) echo 26.1.5 ;;
esac`;

describe("dev:up and dev:down with the tools already installed", () => {
    test("dev:up uses the Pulumi CLI and Docker Engine there are, builds and starts nothing, and prints where CalDAV answers", () => {
        const run = dev(["up"], { pulumi: PULUMI, docker: DOCKER_UP });
        assert.equal(run.status, 0, run.stderr);
        const backend = `[file://${run.state}]`;
        assert.deepEqual(run.calls.filter((call) => call.startsWith("pulumi ") && !call.startsWith("pulumi version")), [
            `pulumi stack select dev --create --secrets-provider passphrase ${backend}`,
            `pulumi up --stack dev --yes ${backend}`,
            `pulumi stack output publicUrl --stack dev ${backend}`,
        ]);
        assert.match(run.stderr, /CalDAV answers at http:\/\/127\.0\.0\.1:8080\/caldav\/ \(health: http:\/\/127\.0\.0\.1:8080\/caldav\/healthz\)/);
        assert.equal(fs.readFileSync(path.join(run.state, "dev-env.sh"), "utf8"), "", "no tool of the project's own chosen");
        assert.equal(fs.existsSync(path.join(run.state, "dev-engine")), false, "no engine started");
    });

    test("a Docker Engine that is configured but does not answer is reported, never replaced by a second one", () => {
        const run = dev(["up"], { pulumi: PULUMI, docker: "exit 1" }, { DOCKER_HOST: "unix:///tmp/nowhere/docker.sock" });
        assert.equal(run.status, 1);
        assert.match(run.stderr, /a Docker Engine is configured \(unix:\/\/\/tmp\/nowhere\/docker\.sock\) but does not answer: start it/);
        assert.deepEqual(run.calls.filter((call) => / (up|stack) /.test(call)), [], "nothing deployed");
        assert.equal(fs.existsSync(path.join(run.state, "dev-engine")), false);
    });

    test("without a Pulumi CLI and without Go to build one, dev:up says how to get either, before anything else", () => {
        const run = dev(["up"], { docker: DOCKER_UP });
        assert.equal(run.status, 1);
        assert.match(run.stderr, /no Pulumi CLI on PATH, and no Go to build the project's own: install the Pulumi CLI 3\.219 or later .* or Go 1\.26 or later/);
        assert.deepEqual(run.calls, []);
    });

    test("dev:down destroys the stack and deletes the dev database volume, and leaves an engine it did not start alone", () => {
        const run = dev(["down"], { pulumi: PULUMI, docker: "true" }, {}, (state) => fs.mkdirSync(path.join(state, ".pulumi", "stacks"), { recursive: true }));
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(run.calls.map((call) => call.replace(/ \[.*\]$/, "")), [
            "pulumi destroy --stack dev --yes",
            "docker volume inspect calendars-caldav-dev-pgdata",
            "docker volume rm --force calendars-caldav-dev-pgdata",
        ]);
        assert.doesNotMatch(run.stderr, /engine/);
    });

    test("dev:pulumi runs the command against the dev stack's own backend", () => {
        const run = dev(["pulumi", "stack", "ls"], { pulumi: PULUMI });
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(run.calls, [`pulumi stack ls [file://${run.state}]`]);
    });
});
