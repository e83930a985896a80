// The rollback tool's real Docker host (dockerHost), against a `docker` stand-in first on
// PATH that answers from a world of its own and records every command line, and the
// command as a process of its own (`npm run rollback` runs scripts/rollback.ts so).
// The tool's decisions are rollback.test.ts's; this is what it asks Docker to do.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "./fixtures";
import { dockerHost, RollbackError, ToolsSetup, USAGE } from "../scripts/rollback";

const ROOT = path.join(__dirname, "..");
const PGPASS = "/run/secrets/caldav.pgpass";
const PASSWORD_LINE = "*:*:*:*:role-secret-value\n";
const OLD_ID = `sha256:${"a".repeat(64)}`;

interface StandInWorld {
    /** Successive `docker container inspect` answers, by name (the last one repeats). */
    containers: Record<string, unknown[]>;
    /** `docker image inspect`, by ID. */
    images: Record<string, { RepoTags: string[] | null; RepoDigests: string[] | null }>;
    /** Containers that `docker stop`, `docker start` and `docker cp` do not know. */
    unknown: string[];
    /** What `docker run` answers. */
    run: { status: number; stdout: string; stderr: string };
}

interface Call {
    argv: string[];
    /** For `docker run`: the files it was given (content and mode) and their directory's mode, read while they existed. */
    files?: Record<string, { content: string; mode: number; dirMode: number }>;
}

/** A `docker` that answers from `world` and records each call; PATH has it first until `restore`. */
function standIn(world: StandInWorld): { calls: () => Call[]; restore: () => void } {
    const bin = tempDir("docker-bin");
    const worldFile = path.join(bin, "world.json");
    const callsFile = path.join(bin, "calls.jsonl");
    fs.writeFileSync(worldFile, JSON.stringify(world));
    fs.writeFileSync(path.join(bin, "docker"), `#!${process.execPath}
const fs = require("fs");
const args = process.argv.slice(2);
const world = JSON.parse(fs.readFileSync(${JSON.stringify(worldFile)}, "utf8"));
const call = { argv: args };
function answer(status, stdout = "", stderr = "") {
    fs.appendFileSync(${JSON.stringify(callsFile)}, JSON.stringify(call) + "\\n");
    process.stdout.write(stdout);
    process.stderr.write(stderr);
    process.exit(status);
}
const [command, sub, name] = args;
if (command === "container" && sub === "inspect") {
    const answers = world.containers[name];
    if (!answers) answer(1, "[]\\n", "Error: No such container: " + name + "\\n");
    const counter = ${JSON.stringify(bin)} + "/inspected-" + name;
    const seen = fs.existsSync(counter) ? Number(fs.readFileSync(counter, "utf8")) : 0;
    fs.writeFileSync(counter, String(seen + 1));
    answer(0, JSON.stringify([answers[Math.min(seen, answers.length - 1)]]));
}
if (command === "image" && sub === "inspect") {
    const image = world.images[name];
    image ? answer(0, JSON.stringify([image])) : answer(1, "[]\\n", "Error: No such image: " + name + "\\n");
}
if (command === "stop" || command === "start") {
    world.unknown.includes(sub) ? answer(1, "", "Error response from daemon: No such container: " + sub + "\\n") : answer(0, sub + "\\n");
}
if (command === "cp" && world.unknown.includes(sub.split(":")[0])) {
    answer(1, "", "Error response from daemon: No such container: " + sub.split(":")[0] + "\\n");
}
if (command === "cp") {
    // As docker cp does: the file's mode in the container (0600, as uploaded).
    fs.writeFileSync(args[2], ${JSON.stringify(PASSWORD_LINE)}, { mode: 0o600 });
    answer(0);
}
if (command === "run") {
    call.files = {};
    const given = (flag) => args.flatMap((arg, i) => (args[i - 1] === flag ? [arg] : []));
    const files = [...given("--env-file"), ...given("--volume").filter((v) => v.endsWith(":ro")).map((v) => v.split(":")[0])];
    for (const file of files) {
        const mode = (f) => fs.statSync(f).mode & 0o777;
        call.files[file] = { content: fs.readFileSync(file, "utf8"), mode: mode(file), dirMode: mode(require("path").dirname(file)) };
    }
    answer(world.run.status, world.run.stdout, world.run.stderr);
}
answer(125, "", "stand-in: unexpected docker " + args.join(" ") + "\\n");
`, { mode: 0o755 });
    const before = process.env.PATH;
    process.env.PATH = `${bin}:${before}`;
    return {
        calls: () => (fs.existsSync(callsFile) ? fs.readFileSync(callsFile, "utf8").trim().split("\n").map((line) => JSON.parse(line)) : []),
        restore: () => {
            process.env.PATH = before;
        },
    };
}

const WORLD: StandInWorld = {
    containers: {},
    images: { [OLD_ID]: { RepoTags: ["calendars-caldav:0123456789abcdef0123456789abcdef01234567"], RepoDigests: null } },
    unknown: ["gone"],
    run: { status: 4, stdout: "checked\n", stderr: "dump.dump cannot be read\n" },
};

const SETUP: ToolsSetup = {
    container: "dav-eu-dump",
    env: { PGHOST: "caldav-pg", PGDATABASE: "caldav", PGUSER: "caldav", PGPASSFILE: PGPASS, CALDAV_DB_SCHEMA: "sabre", STACK: "prod" },
    mount: "dav-eu-backups:/backups",
    network: "caldav_net",
    image: "sha256:tools",
};

const state = (running: boolean, health?: string) => ({ Image: OLD_ID, State: { Running: running, ...(health && { Health: { Status: health } }) } });

describe("the rollback tool's Docker host", () => {
    test("the tools container: the dump container's image, network and backups, the script as sh -c, the password only in files of mode 600 that are gone afterwards", () => {
        const docker = standIn(WORLD);
        let result;
        try {
            result = dockerHost.tools(SETUP, "echo restore", { MODE: "check", DUMP: "dump.dump" });
        } finally {
            docker.restore();
        }
        assert.deepEqual(result, WORLD.run, "what the script answered");
        const [copy, run, ...more] = docker.calls();
        assert.deepEqual(more, []);
        const pgpass = copy.argv[2];
        assert.deepEqual(copy.argv, ["cp", `dav-eu-dump:${PGPASS}`, pgpass], "the password file of the dump container");
        const envFile = run.argv[run.argv.indexOf("--env-file") + 1];
        assert.deepEqual(run.argv, [
            "run", "--rm", "--network", "caldav_net", "--volume", "dav-eu-backups:/backups", "--volume", `${pgpass}:${PGPASS}:ro`,
            "--env-file", envFile, "--entrypoint", "sh", "sha256:tools", "-c", "echo restore",
        ]);
        assert.deepEqual(run.files, {
            [envFile]: {
                content: "PGHOST=caldav-pg\nPGDATABASE=caldav\nPGUSER=caldav\nPGPASSFILE=/run/secrets/caldav.pgpass\nCALDAV_DB_SCHEMA=sabre\nSTACK=prod\nMODE=check\nDUMP=dump.dump\n",
                mode: 0o600,
                dirMode: 0o700,
            },
            [pgpass]: { content: PASSWORD_LINE, mode: 0o600, dirMode: 0o700 },
        });
        assert.equal(path.dirname(pgpass), path.dirname(envFile));
        assert.ok(!fs.existsSync(path.dirname(envFile)), "removed once the container ran");
        assert.ok(!JSON.stringify(docker.calls().map((c) => c.argv)).includes("role-secret-value"), "no password on a command line");
    });

    test("a dump container without a password file: nothing copied, nothing more mounted", () => {
        const docker = standIn(WORLD);
        try {
            const env = { ...SETUP.env };
            delete env.PGPASSFILE;
            dockerHost.tools({ ...SETUP, env }, "true");
        } finally {
            docker.restore();
        }
        const calls = docker.calls();
        assert.deepEqual(calls.map((c) => c.argv[0]), ["run"]);
        assert.deepEqual(calls[0].argv.filter((arg) => arg === "--volume"), ["--volume"]);
    });

    test("a password file that cannot be copied: nothing is run, the message names the copy and quotes Docker, no file is left", () => {
        const docker = standIn(WORLD);
        try {
            assert.throws(() => dockerHost.tools({ ...SETUP, container: "gone" }, "true"), (e: Error) => e instanceof RollbackError &&
                e.message === `docker cp gone:${PGPASS} failed: Error response from daemon: No such container: gone`);
        } finally {
            docker.restore();
        }
        assert.deepEqual(docker.calls().map((c) => c.argv[0]), ["cp"]);
        const dir = path.dirname(docker.calls()[0].argv[2]);
        assert.ok(!fs.existsSync(dir), `${dir} removed`);
    });

    test("containers and images: what docker inspect says, undefined when Docker has none", () => {
        const docker = standIn({
            ...WORLD,
            containers: { "dav-eu": [state(true, "healthy")] },
            images: { ...WORLD.images, [`sha256:${"b".repeat(64)}`]: { RepoTags: null, RepoDigests: ["x/caldav@sha256:" + "c".repeat(64)] } },
        });
        try {
            assert.deepEqual(dockerHost.container("dav-eu"), state(true, "healthy"));
            assert.equal(dockerHost.container("gone"), undefined);
            assert.deepEqual(dockerHost.image(OLD_ID), { tags: WORLD.images[OLD_ID].RepoTags, digests: [] });
            assert.deepEqual(dockerHost.image(`sha256:${"b".repeat(64)}`), { tags: [], digests: ["x/caldav@sha256:" + "c".repeat(64)] });
            assert.equal(dockerHost.image(`sha256:${"d".repeat(64)}`), undefined);
        } finally {
            docker.restore();
        }
        assert.deepEqual(docker.calls().map((c) => c.argv.join(" ")), [
            "container inspect dav-eu", "container inspect gone",
            `image inspect ${OLD_ID}`, `image inspect sha256:${"b".repeat(64)}`, `image inspect sha256:${"d".repeat(64)}`,
        ]);
    });

    test("stop and start: a failure names the docker command and quotes Docker", () => {
        const docker = standIn(WORLD);
        try {
            dockerHost.stop("dav-eu");
            dockerHost.start("dav-eu");
            assert.throws(() => dockerHost.start("gone"), (e: Error) => e instanceof RollbackError &&
                e.message === "docker start gone failed: Error response from daemon: No such container: gone");
        } finally {
            docker.restore();
        }
        assert.deepEqual(docker.calls().map((c) => c.argv.join(" ")), ["stop dav-eu", "start dav-eu", "start gone"]);
    });

    test("without docker on PATH: said so, run it on the Docker host", () => {
        const before = process.env.PATH;
        process.env.PATH = tempDir("no-docker");
        try {
            assert.throws(() => dockerHost.container("dav-eu"), (e: Error) => e instanceof RollbackError &&
                /^docker is not usable here \(.*ENOENT.*\); run this on the Docker host$/.test(e.message));
        } finally {
            process.env.PATH = before;
        }
    });

    test("health: true once Docker says healthy, false when it is stopped, gone, or the time is up", async (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        const docker = standIn({
            ...WORLD,
            containers: {
                healthy: [state(true, "healthy")],
                stopped: [state(false, "unhealthy")],
                later: [state(true, "starting"), state(true, "healthy")],
                starting: [state(true, "starting")],
                unchecked: [state(false)],
            },
        });
        try {
            assert.equal(await dockerHost.healthy("healthy", 180), true);
            assert.equal(await dockerHost.healthy("stopped", 180), false);
            assert.equal(await dockerHost.healthy("gone", 180), false);
            assert.equal(await dockerHost.healthy("unchecked", 180), false, "a stopped container without a health check");
            // Starting at first: asked again after the poll interval (the mocked clock's tick).
            const later = dockerHost.healthy("later", 180);
            t.mock.timers.tick(1000);
            assert.equal(await later, true);
            const late = dockerHost.healthy("starting", 0);
            t.mock.timers.tick(1000);
            assert.equal(await late, false);
        } finally {
            docker.restore();
        }
        const asked = docker.calls().map((c) => c.argv[2]);
        assert.deepEqual(asked.slice(0, 6), ["healthy", "stopped", "gone", "unchecked", "later", "later"]);
        assert.ok(asked.slice(6).every((name) => name === "starting") && asked.length <= 8, asked.join(", "));
    });
});

describe("the rollback command as a process", () => {
    const command = (...argv: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "rollback.ts"), ...argv],
        { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

    test("--help prints the usage on stdout and exits 0", () => {
        const help = command("--help");
        assert.deepEqual([help.status, help.stdout, help.stderr], [0, `${USAGE}\n`, ""]);
    });

    test("bad arguments: the message and the usage on stderr, exit 2", () => {
        const bad = command("--stack");
        assert.deepEqual([bad.status, bad.stdout, bad.stderr], [2, "", `rollback: --stack needs a value\n${USAGE}\n`]);
    });
});
