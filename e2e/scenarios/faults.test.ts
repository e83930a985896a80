// Faults a deployed stack survives, injected for real and checked from outside as the
// Calendars backend and an operator see it: /caldav/healthz, an authenticated PROPFIND, an
// event written before the fault read back after it, and `preview --expect-no-changes`
// once recovered. The Docker daemon restarted on the same data root; two operators at
// once; PostgreSQL restarted, and stopped for longer than a health interval, under the
// running server; a backup.location that is full; `pulumi up` killed with SIGKILL between
// the dump and the new server. What the operator sees and types: docs/runbook.md.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Backups } from "../harness/backups";
import { Calendar } from "../harness/calendar";
import { dav, freePort } from "../harness/dav";
import { docker, inspect, removeAll, waitHealthy } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { childrenOf, dockerEvents, killTree, lockFiles, processesWith, pulumi, restartEngine, since, Tmpfs, until } from "../harness/faults";
import { processesIn } from "../harness/processes";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const LOCKED = /the stack is currently locked by 1 lock\(s\)\. Either wait for the other process\(es\) to end or delete the lock file with `pulumi cancel`\./;

function note(line: string): void {
    process.stderr.write(`    [faults] ${line}\n`);
}

/** Docker's RFC 3339 times with nanoseconds, as milliseconds since the epoch. */
const dockerTime = (time: string) => Date.parse(time.replace(/(\.\d{3})\d*/, "$1"));

describe("faults a deployed stack survives", { skip: e2eEnvironment().fixtures !== "standin" && "needs the stand-in's migrations" }, () => {
    let source: CalendarsSource;
    let stack: TestStack;
    let cacheDir: string;
    let caldavPort: number;
    let calendar: Calendar;
    let tmpfs: Tmpfs | undefined;
    const name = "calendars-caldav-faults";
    const postgres = `${name}-postgres`;
    const caldavIp = "172.29.0.20";
    const network = "messages_internal";
    let backups: Backups;
    /** Each upgrade adds a migration, so that the image really changes (and a dump is due). */
    let upgrades = 0;
    const upgrade = (why: string) => source.commit(why, { [`src/caldav/sql/migrations/00${10 + ++upgrades}_e2e_faults.sql`]: `SELECT ${upgrades};\n` });

    const url = (suffix = "") => `http://127.0.0.1:${caldavPort}/caldav/${suffix}`;
    const key = async () => ((await stack.outputs()).apiKeys.value as { outbound: string }).outbound;
    const server = () => inspect("container", name);

    /** What the backend and an operator see of a working stack, from outside. */
    async function assertServes(): Promise<void> {
        const health = await dav(url("healthz"), "GET");
        assert.deepEqual([health.status, health.body], [200, "ok"], "/caldav/healthz");
        const propfind = await dav(url(), "PROPFIND", { key: await key(), user: calendar.user, depth: "0" });
        assert.equal(propfind.status, 207, `authenticated PROPFIND: ${propfind.body.slice(0, 300)}`);
        assert.equal(await calendar.get("before"), 200, "the event written before the faults");
    }

    /** Nothing to change, from the state (`preview`) nor from what runs (`preview --refresh`, the drift check). */
    async function assertNoChanges(): Promise<void> {
        await stack.preview({ expectNoChanges: true });
        stack.cli(["preview", "--refresh", "--expect-no-changes"]);
    }

    before(async () => {
        source = CalendarsSource.create();
        cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-sources-"));
        // backup.location on a tmpfs of its own, small enough to fill (fault 4); unmounted in after().
        tmpfs = Tmpfs.mount(fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-faults-backups-")), 4096);
        backups = new Backups({ dir: tmpfs.dir }, "faults");
        caldavPort = await freePort();
        const image = e2eEnvironment().postgresImage;
        stack = await TestStack.create("faults", {
            source: { repo: source.url, cacheDir },
            network: { create: true, subnet: "172.29.0.0/16", caldavIp },
            postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: await freePort(), bundledImage: image },
            caldav: { publish: `127.0.0.1:${caldavPort}`, containerName: name },
            backup: { enabled: true, image, keep: 3, location: tmpfs.dir },
            protect: false,
        });
        calendar = new Calendar(stack, caldavPort);
    });

    after(async () => {
        // A build step of a failed build test that BuildKit did not cancel.
        for (const pid of processesWith(`e2e-build-window-${process.pid}`)) {
            killTree(pid);
        }
        try {
            // A test that failed after a killed up leaves its lock: dispose would be refused.
            if (stack && lockFiles(stack).length > 0 && processesIn(stack.dir).length === 0) {
                stack.cli(["cancel", "--yes"]);
            }
            await stack?.dispose();
            removeAll({ containers: [`${name}-dump`], volumes: [`${name}-pgdata`] });
        } finally {
            tmpfs?.unmount();
            source?.remove();
            fs.rmSync(cacheDir, { recursive: true, force: true });
        }
    });

    test("deployed, with a calendar and an event written through DAV", async () => {
        await stack.up();
        assert.equal(await calendar.create(), 201);
        assert.equal(await calendar.put("before"), 201);
        await assertServes();
    });

    test("the Docker daemon restarted on the same data root: both containers come back by themselves, same data, same addresses", { skip: (process.env.E2E_ENGINE ?? "own") !== "own" && "restarts the suite's own engine only" }, async () => {
        const was = { server: server(), postgres: inspect("container", postgres) };
        const stopping = Date.now();
        const { stopSeconds, startSeconds } = restartEngine();
        const t0 = Date.now();
        // Started again (not the state from before the stop) and healthy.
        const backUp = (container: string, previous: any) => () => {
            const state = inspect("container", container).State;
            return state.Running && state.StartedAt !== previous.State.StartedAt && state.Health?.Status === "healthy" ? true : undefined;
        };
        await until("bundled PostgreSQL healthy again after the daemon restart", backUp(postgres, was.postgres), 120_000);
        const postgresSeconds = since(t0);
        await until("CalDAV container healthy again after the daemon restart", backUp(name, was.server), 120_000);
        const healthySeconds = since(t0);
        const stoppedAfter = (container: string) => ((dockerTime(inspect("container", container).State.FinishedAt) - stopping) / 1000).toFixed(1);
        note(`daemon restart: stop ${stopSeconds} s (PostgreSQL stopped after ${stoppedAfter(postgres)} s, CalDAV after ${stoppedAfter(name)} s), ` +
            `start ${startSeconds} s; then PostgreSQL healthy after ${postgresSeconds} s, CalDAV after ${healthySeconds} s`);

        for (const [container, previous, alias] of [[name, was.server, "calendars-caldav"], [postgres, was.postgres, "postgresql"]] as const) {
            const now = inspect("container", container);
            assert.equal(now.Id, previous.Id, `${container}: the same container, started again by its restart policy`);
            assert.equal(now.HostConfig.RestartPolicy.Name, "unless-stopped");
            const endpoint = now.NetworkSettings.Networks[network];
            assert.equal(endpoint.IPAddress, previous.NetworkSettings.Networks[network].IPAddress, `${container}: the same address`);
            assert.ok(endpoint.Aliases.includes(alias), `${container} answers as ${alias} (${endpoint.Aliases.join(" ")})`);
        }
        assert.equal(server().NetworkSettings.Networks[network].IPAddress, caldavIp, "network.caldavIp");
        assert.equal(server().NetworkSettings.Networks[network].IPAMConfig?.IPv4Address, caldavIp);
        await assertServes();
        await assertNoChanges();
    });

    test("a second up, and a destroy, while an up runs are refused as the stack is locked, and the first ends untouched", async () => {
        stack.configure({ caldav: { memoryMb: 384 } });
        const first = stack.up();
        first.catch(() => undefined);
        const lock = await until("the first up holds the stack's lock", () => lockFiles(stack)[0], 60_000, 50);
        const owner = JSON.parse(fs.readFileSync(lock, "utf8"));
        // The first up's docker provider held still (SIGSTOP) while the others try: the first
        // cannot end meanwhile, however loaded the machine is; SIGCONT lets it go on.
        const providers = await until("the first up's docker provider runs", () => {
            const found = processesIn(stack.dir).filter((p) => p.command.includes("pulumi-resource-docker")).map((p) => p.pid);
            return found.length > 0 ? found : undefined;
        }, 60_000, 50);
        const signal = (name: NodeJS.Signals) => providers.forEach((pid) => {
            try {
                process.kill(pid, name);
            } catch {
                // Ended meanwhile.
            }
        });
        signal("SIGSTOP");
        let second, destroy;
        try {
            [second, destroy] = await Promise.all([
                pulumi(stack, ["up", "--yes", "--skip-preview"]).exit,
                pulumi(stack, ["destroy", "--yes", "--skip-preview"]).exit,
            ]);
            assert.deepEqual(lockFiles(stack), [lock], "the first up still holds its lock");
        } finally {
            signal("SIGCONT");
        }
        for (const [what, exit] of [["up", second], ["destroy", destroy]] as const) {
            assert.equal(exit.code, 1, `${what} refused: ${exit.stdout}\n${exit.stderr}`);
            assert.match(exit.stderr, LOCKED, what);
            assert.match(exit.stderr, new RegExp(`created by ${owner.username}@${owner.hostname} \\(pid ${owner.pid}\\)`), `${what} names the other process`);
        }
        note(`concurrent up refused with: ${second.stderr.trim().split("\n").join(" | ")}`);
        const result = await first;
        assert.ok([...result.changes.keys()].some((urn) => urn.endsWith("::caldav")), "the first up replaced the server as planned");
        assert.equal(server().HostConfig.Memory, 384 * 1024 * 1024);
        assert.deepEqual(lockFiles(stack), [], "the lock went with the first up");
        assert.equal(inspect("container", postgres).State.Running, true, "the destroy touched nothing");
        await assertServes();
        await assertNoChanges();
    });

    test("PostgreSQL restarted, then stopped for more than a health interval: the server serves again without a redeploy", async () => {
        const started = server().State.StartedAt;
        let t0 = Date.now();
        docker("restart", postgres);
        await waitHealthy(postgres);
        await until("the event is served again after docker restart", async () => (await calendar.get("before")) === 200 || undefined, 60_000);
        note(`docker restart of PostgreSQL: the event is served again after ${since(t0)} s`);

        const stoppedAt = Date.now();
        docker("stop", postgres);
        // Two health checks of the server that started after the stop: stopped for longer than
        // one interval (15 s), and what Docker's health check says meanwhile.
        const probes = await until("two health checks of the CalDAV server since PostgreSQL stopped", () => {
            const log = (server().State.Health.Log as { Start: string; ExitCode: number; Output: string }[])
                .filter((entry) => dockerTime(entry.Start) > stoppedAt);
            return log.length >= 2 ? log : undefined;
        }, 60_000, 500);
        const down = {
            health: server().State.Health.Status,
            probes: probes.map((probe) => probe.ExitCode),
            healthz: (await dav(url("healthz"), "GET")).status,
            propfind: (await dav(url(), "PROPFIND", { key: await key(), user: calendar.user, depth: "0" })).status,
            get: await calendar.get("before"),
            put: await calendar.put("while-down"),
        };
        note(`PostgreSQL stopped ${since(stoppedAt)} s: ${JSON.stringify(down)}`);
        // The health check asks /caldav/healthz, which touches no database (the upstream contract):
        // the server stays "healthy" and Docker restarts nothing; DAV requests fail meanwhile.
        assert.deepEqual(down, { health: "healthy", probes: [0, 0], healthz: 200, propfind: 500, get: 500, put: 500 });

        t0 = Date.now();
        docker("start", postgres);
        await waitHealthy(postgres);
        await until("the event is served again after docker start", async () => (await calendar.get("before")) === 200 || undefined, 60_000);
        note(`PostgreSQL started again: the event is served after ${since(t0)} s`);
        assert.equal(server().State.StartedAt, started, "the CalDAV server was neither restarted nor replaced");
        assert.equal(await calendar.get("while-down"), 404, "what failed while the database was down was not stored");
        assert.equal(await calendar.put("after-restart"), 201);
        await assertServes();
        await assertNoChanges();
    });

    test("a full backup.location stops the upgrade before the server is replaced, and leaves no dump a rollback could pick", async () => {
        upgrade("an upgrade with room for its dump");
        await stack.up();
        const [good] = backups.dumps();
        assert.ok(good, `the upgrade took a dump: ${backups.files().join(" ")}`);
        const was = server();

        const filler = tmpfs!.fill("filler");
        assert.equal(tmpfs!.free(), 0, "backup.location is full");
        note(`backup.location filled: ${filler} bytes of filler`);
        upgrade("an upgrade whose dump finds no room");
        const message = (await stack.upInOwnProcess()) ?? "up succeeded";
        assert.match(message, /the dump before the image change failed \(exit code 1\), so the CalDAV server was not replaced: it still runs the previous image/);
        const logs = spawnSync("docker", ["logs", `${name}-dump`], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost } });
        note(`dump container's log: ${logs.stdout.trim()} | stderr: ${logs.stderr.trim()}`);
        assert.match(logs.stderr, /No space left on device/, "the dump container's log says why");
        const now = server();
        assert.equal(now.Id, was.Id, "the same server");
        assert.equal(now.Image, was.Image, "on the previous image");
        assert.equal(now.State.Health.Status, "healthy");
        await assertServes();

        const listing = stack.rollback([]);
        assert.equal(listing.status, 0, listing.stderr);
        assert.deepEqual(listing.stdout.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("caldav-")).map((line) => line.split(/\s+/)[0]), [good],
            `only the good dump is offered: ${listing.stdout}`);
        const files = backups.files();
        note(`backup.location after the failed dump: ${files.join(" ")}`);
        assert.deepEqual(files.filter((file) => !file.endsWith(".partial")), [good, good.replace(/\.dump$/, ".image")]);
        for (const partial of files.filter((file) => file.endsWith(".partial"))) {
            const refused = stack.rollback(["--dump", partial, "--yes"]);
            assert.equal(refused.status, 2, `${partial} refused as a dump name`);
        }

        // The operator frees the space and runs what the message says.
        fs.rmSync(path.join(tmpfs!.dir, "filler"));
        const replace = /pulumi up --replace '([^']+)'/.exec(message)?.[1];
        assert.ok(replace, "the message gives the command");
        const t0 = Date.now();
        const retry = await pulumi(stack, ["up", "--yes", "--skip-preview", "--replace", replace]).exit;
        assert.equal(retry.code, 0, retry.stderr);
        note(`pulumi up --replace <the dump container> after freeing space: ${since(t0)} s`);
        const dumps = backups.dumps();
        assert.equal(dumps.length, 2, dumps.join(" "));
        assert.deepEqual(backups.files().filter((file) => file.endsWith(".partial")), [], "the interrupted dump's leftovers are gone");
        assert.notEqual(server().Image, was.Image, "upgraded");
        await assertServes();
        await assertNoChanges();
    });

    /** The pending operations in the stack's state: what a killed CLI left "in an unknown state". */
    const pendingOperations = (): string[] => (JSON.parse(stack.cli(["stack", "export"])).deployment.pending_operations ?? [])
        .map((op: { type: string; resource: { urn: string } }) => `${op.type} ${op.resource.urn.split("::").pop()}`);

    /**
     * Runs `up` and kills it, and everything it started, with SIGKILL as soon as `reached`
     * resolves (an event the test watches for, never a delay); fails if `up` ends first.
     */
    async function killUpWhen(reached: Promise<unknown>): Promise<void> {
        reached.catch(() => undefined);
        const up = pulumi(stack, ["up", "--yes", "--skip-preview"]);
        await Promise.race([reached, up.exit.then((exit) => {
            throw new Error(`up ended (${exit.code}) before the moment to kill it:\n${exit.stdout}\n${exit.stderr}`);
        })]);
        // The CLI and everything it started, as a CI runner kills a cancelled job.
        const killed = killTree(up.process.pid!);
        note(`killed: ${killed.map((p) => p.command.split(" ")[0].split("/").pop()).join(", ")}`);
        assert.equal((await up.exit).signal, "SIGKILL");
        await until("no process of the killed up left", () => processesIn(stack.dir).length === 0 || undefined, 10_000);
    }

    /** What an operator runs after a killed `up` (docs/runbook.md), each step checked. */
    async function recoverFromKilledUp(): Promise<void> {
        const refused = await pulumi(stack, ["up", "--yes", "--skip-preview"]).exit;
        assert.equal(refused.code, 1, "the killed up's lock is still there");
        assert.match(refused.stderr, LOCKED);
        assert.deepEqual(processesIn(stack.dir), [], "no pulumi process of the stack runs: the lock is stale");
        note(`pulumi cancel: ${stack.cli(["cancel", "--yes"]).trim()}`);
        assert.deepEqual(lockFiles(stack), []);
        note(`pulumi refresh --clear-pending-creates: ${stack.cli(["refresh", "--clear-pending-creates", "--yes", "--skip-preview"]).trim().split("\n").join(" | ")}`);
        assert.deepEqual(pendingOperations(), [], "refresh --clear-pending-creates cleared them");
    }

    test("up killed with SIGKILL between the dump and the new server: the stale lock and the orphan dump container cleared, the next up finishes the upgrade", async () => {
        const was = server();
        const dumpsBefore = backups.dumps();
        upgrade("an upgrade whose up is killed after its dump");
        const died = dockerEvents(["event=die", `container=${name}-dump`], () => true);
        try {
            await killUpWhen(died.next);
        } finally {
            died.stop();
        }
        const dumps = backups.dumps();
        assert.equal(dumps.length, dumpsBefore.length + 1, `the dump was taken: ${dumps.join(" ")}`);
        const listing = stack.rollback([]);
        assert.equal(listing.status, 0, listing.stderr);
        assert.match(listing.stdout, new RegExp(`^\\s*${dumps.at(-1)}\\s+sha256:`, "m"), "the rollback tool offers it");
        assert.equal(lockFiles(stack).length, 1, "the killed up's lock is left");
        assert.deepEqual(pendingOperations(), ["creating backup-container"], "the dump container, interrupted while creating");
        assert.equal(server().Id, was.Id, "the old server still runs");
        await assertServes();

        // The runbook's steps: the stale lock, the pending create. The dump container the state
        // does not know still holds its fixed name: the next up removes it (it has ended; a
        // one-shot that holds no data), saying so with its last lines, and goes on.
        const t0 = Date.now();
        await recoverFromKilledUp();
        assert.match(docker("logs", `${name}-dump`), /^dumped caldav schema sabre/m, "the killed run's dump container is there");
        const next = await pulumi(stack, ["up", "--yes", "--skip-preview"]).exit;
        assert.equal(next.code, 0, `${next.stdout}\n${next.stderr}`);
        assert.match(next.stdout, new RegExp(`removed ${name}-dump, left by an earlier pulumi up that did not finish \\(it had ended, exit code 0; its last lines: [^\\n]*dumped caldav schema sabre`));
        note(`recovered (check, cancel, refresh, up) in ${since(t0)} s`);
        assert.match(docker("logs", `${name}-dump`), /has not finished: caldav-\d{6}-\d{8}T\d{6}Z-[0-9a-f]{12}\.dump holds the data from before it/);
        assert.notEqual(server().Image, was.Image, "upgraded");
        assert.deepEqual(backups.dumps(), dumps, "no second dump: the one the killed up took is the one to roll back to");
        await assertServes();
        await assertNoChanges();
    });

    test("up killed with SIGKILL during the image build: nothing keeps building, and the next up builds and deploys", async () => {
        const was = server();
        const dumpsBefore = backups.dumps();
        // A slow build step (as composer install is) whose process the test can see on the host.
        const marker = `e2e-build-window-${process.pid}`;
        const dockerfile = fs.readFileSync(path.join(source.dir, "src/caldav/Dockerfile"), "utf8");
        source.commit("a slow build step", {
            "src/caldav/Dockerfile": dockerfile.replace("EXPOSE 80", `RUN sleep 600 || echo "${marker}: cut short"\nEXPOSE 80`),
        });
        await killUpWhen(until("the build's slow step runs", () => processesWith(marker)[0], 120_000));
        // BuildKit cancels a build whose client went away.
        const killedAt = Date.now();
        await until("the killed build's step ended", () => processesWith(marker).length === 0 || undefined, 60_000);
        note(`the killed build's step ended ${since(killedAt)} s after the kill`);
        assert.equal(server().Id, was.Id, "the old server still runs");
        assert.deepEqual(backups.dumps(), dumpsBefore, "no dump: the image was not built yet");
        note(`pending operations after a kill during the build: ${pendingOperations().join(", ") || "none"}`);
        await assertServes();

        const t0 = Date.now();
        await recoverFromKilledUp();
        // The same commit again; its slow step is cut short this time so that the build ends.
        const up = pulumi(stack, ["up", "--yes", "--skip-preview"]);
        const step = await until("the build's slow step runs again", () => processesWith(marker)[0], 120_000);
        const sleeping = await until("the slow step's sleep started", () => childrenOf(step)[0], 10_000, 20);
        process.kill(sleeping, "SIGTERM");
        const exit = await up.exit;
        assert.equal(exit.code, 0, `${exit.stdout}\n${exit.stderr}`);
        note(`recovered (check, cancel, refresh, up with its build) in ${since(t0)} s`);
        assert.notEqual(server().Image, was.Image, "the new image runs");
        const dumps = backups.dumps();
        assert.equal(dumps.filter((dump) => !dumpsBefore.includes(dump)).length, 1, `one new dump: ${dumps.join(" ")}`);
        assert.ok(dumps.at(-1)! > dumpsBefore.at(-1)!, "the newest");
        assert.equal(dumps.length, Math.min(dumpsBefore.length + 1, 3), "backup.keep 3");
        await assertServes();
        await assertNoChanges();
    });
});
