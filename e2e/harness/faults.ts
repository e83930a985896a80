// Faults injected into a deployed stack from outside, as they happen to an operator: the
// Docker daemon restarted (an upgrade, a reboot), a second operator's CLI, a database that
// goes away, a full disk, a CLI killed mid-operation. Every wait polls an observable state
// with a deadline; nothing sleeps for a fixed time to let something happen.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { e2eEnvironment, ROOT } from "./environment";
import { processParents } from "./processes";
import { TestStack } from "./stack";

/** A CLI process a scenario started that runs longer than this has hung: it is killed. */
const TIMEOUT_MS = 300_000;

/** Seconds since `t0` (Date.now()), one decimal. */
export const since = (t0: number) => Number(((Date.now() - t0) / 1000).toFixed(1));

function log(line: string): void {
    process.stderr.write(`    [faults] ${line}\n`);
}

/**
 * Polls `probe` every `everyMs` until it returns a value other than undefined, and returns
 * it; after `timeoutMs`, fails naming `what` and the last thing the probe threw.
 */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined) {
                return value;
            }
        } catch (error) {
            last = ` (last: ${(error as Error).message})`;
        }
        if (Date.now() > deadline) {
            throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${last}`);
        }
        await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
}

/**
 * The e2e engine (e2e/engine/engine.sh) stopped and started again on the same data root,
 * as a Docker upgrade or a reboot does: dockerd stops every container (each with its stop
 * timeout), then starts those whose restart policy says so. Only on the suite's own
 * engine (E2E_ENGINE=own). Returns how long each half took, in seconds.
 */
export function restartEngine(): { stopSeconds: number; startSeconds: number } {
    if ((process.env.E2E_ENGINE ?? "own") !== "own") {
        throw new Error(`restartEngine needs the suite's own engine (E2E_ENGINE=own), not ${process.env.E2E_ENGINE}`);
    }
    const script = path.join(ROOT, "e2e", "engine", "engine.sh");
    const run = (command: "stop" | "start") => {
        const t0 = Date.now();
        // fd 9 is run.sh's lock: a dockerd started from here must not hold it (run.sh does the same).
        const result = spawnSync("bash", ["-c", `exec 9>&-; exec "$0" ${command}`, script], { encoding: "utf8", timeout: 120_000 });
        for (const line of result.stderr.split("\n").filter((l) => l.trim())) {
            log(`engine.sh ${command}: ${line}`);
        }
        if (result.status !== 0) {
            throw new Error(`e2e/engine/engine.sh ${command} failed (${result.status ?? result.error?.message}): ${result.stderr.trim()}`);
        }
        return since(t0);
    };
    return { stopSeconds: run("stop"), startSeconds: run("start") };
}

/** What a CLI process the scenario started reported when it ended. */
export interface Exit {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

/**
 * `pulumi <args> --stack <stack> --non-interactive` in the stack's directory, as a second
 * terminal or a CI job runs it (`process` to kill it with killTree, as a cancelled CI job is).
 * `exit` resolves when the CLI ended, whatever the status;
 * after TIMEOUT_MS it is killed, and says so on its stderr.
 */
export function pulumi(stack: TestStack, args: string[]): { process: ChildProcess; exit: Promise<Exit> } {
    const child = spawn(path.join(e2eEnvironment().toolchainBin, "pulumi"), [...args, "--stack", stack.name, "--non-interactive"], {
        cwd: stack.dir,
        env: stack.environment(),
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const t0 = Date.now();
    const progress = (stream: string) => (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n").filter((l) => l.trim())) {
            log(`[${stack.name} pulumi ${args[0]}${stream} +${since(t0)}s] ${line.trimEnd()}`);
        }
    };
    child.stdout!.on("data", (chunk: Buffer) => { stdout += chunk; progress("")(chunk); });
    child.stderr!.on("data", (chunk: Buffer) => { stderr += chunk; progress(" stderr")(chunk); });
    // A CLI that hangs fails the test instead of the whole run (the harness's operations do the same).
    const timer = setTimeout(() => {
        stderr += `\n[faults] pulumi ${args.join(" ")} did not end within ${TIMEOUT_MS / 1000} s: killed\n`;
        killTree(child.pid!);
    }, TIMEOUT_MS);
    const exit = new Promise<Exit>((resolve, reject) => {
        child.once("error", (error) => { clearTimeout(timer); reject(error); });
        child.once("close", (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    });
    return { process: child, exit };
}

/** Lock files the file backend holds for the stack (one per running update, refresh or destroy). */
export function lockFiles(stack: TestStack): string[] {
    const locks = path.join(stack.dir, "backend", ".pulumi", "locks");
    if (!fs.existsSync(locks)) {
        return [];
    }
    return (fs.readdirSync(locks, { recursive: true }) as string[])
        .filter((entry) => entry.endsWith(".json"))
        .map((entry) => path.join(locks, entry));
}

/**
 * SIGKILL to `pid` and every process it started, children and grandchildren, all at once:
 * what a CI runner does to a cancelled job. (The CLI's process group is not enough: the
 * CLI starts its language host and providers in process groups of their own, and they
 * outlive a SIGKILL of the group.) Returns the processes it killed.
 */
export function killTree(pid: number): { pid: number; command: string }[] {
    const descendants = (): Map<number, string> => {
        const parents = processParents();
        const tree = [pid];
        for (let i = 0; i < tree.length; i++) {
            for (const [child, parent] of parents) {
                if (parent === tree[i]) {
                    tree.push(child);
                }
            }
        }
        const commands = new Map<number, string>();
        for (const member of tree) {
            try {
                commands.set(member, fs.readFileSync(`/proc/${member}/cmdline`, "utf8").split("\0").join(" ").trim());
            } catch {
                // Ended meanwhile.
            }
        }
        return commands;
    };
    const signal = (member: number, name: NodeJS.Signals) => {
        try {
            process.kill(member, name);
        } catch {
            // Ended meanwhile.
        }
    };
    // Stopped first, so that none starts another process between the look and the kill.
    const stopped = new Map<number, string>();
    for (let found = descendants(); [...found.keys()].some((member) => !stopped.has(member)); found = descendants()) {
        for (const [member, command] of found) {
            if (!stopped.has(member)) {
                signal(member, "SIGSTOP");
                stopped.set(member, command);
            }
        }
    }
    for (const member of stopped.keys()) {
        signal(member, "SIGKILL");
    }
    return [...stopped].map(([member, command]) => ({ pid: member, command }));
}

/** The direct children of `pid`. */
export function childrenOf(pid: number): number[] {
    return [...processParents()].filter(([, parent]) => parent === pid).map(([child]) => child);
}

/** Processes on this host whose command line contains `marker` (e.g. a build step's). */
export function processesWith(marker: string): number[] {
    const found: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (/^\d+$/.test(entry) && Number(entry) !== process.pid) {
            try {
                if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) {
                    found.push(Number(entry));
                }
            } catch {
                // Ended meanwhile.
            }
        }
    }
    return found;
}

/**
 * `docker events` on the e2e engine, from now on, with `filters` (`event=die`,
 * `container=<name>`...): `next` resolves with the first event for which `match` is true.
 * `stop()` ends the watcher (always call it).
 */
export function dockerEvents(filters: string[], match: (event: any) => boolean): { next: Promise<any>; stop: () => void } {
    const child = spawn("docker", ["events", "--format", "{{json .}}", ...filters.flatMap((f) => ["--filter", f])], {
        env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    let stderr = "";
    const next = new Promise<any>((resolve, reject) => {
        child.stdout!.on("data", (chunk: Buffer) => {
            buffered += chunk;
            let newline: number;
            while ((newline = buffered.indexOf("\n")) >= 0) {
                const line = buffered.slice(0, newline);
                buffered = buffered.slice(newline + 1);
                const event = JSON.parse(line);
                if (match(event)) {
                    resolve(event);
                }
            }
        });
        child.stderr!.on("data", (chunk: Buffer) => { stderr += chunk; });
        child.once("close", (code) => reject(new Error(`docker events ended (${code}) before the event: ${stderr.trim()}`)));
    });
    // An unobserved rejection after stop() is not a failure.
    next.catch(() => undefined);
    return { next, stop: () => child.kill("SIGTERM") };
}

/**
 * A small tmpfs mounted on a host directory, for a backup.location that can fill up.
 * `unmount()` is idempotent: call it in an after hook, also after a failure.
 */
export class Tmpfs {
    private mounted = false;

    private constructor(readonly dir: string) {}

    static mount(dir: string, sizeKb: number): Tmpfs {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "e2e-faults-backups", dir], { encoding: "utf8" });
        if (result.status !== 0) {
            throw new Error(`mount -t tmpfs on ${dir} failed (needs root): ${result.stderr.trim()}`);
        }
        const tmpfs = new Tmpfs(dir);
        tmpfs.mounted = true;
        return tmpfs;
    }

    /** Bytes still free for files. */
    free(): number {
        const stats = fs.statfsSync(this.dir);
        return stats.bavail * stats.bsize;
    }

    /** Fills what is free with the file `name` (in the tmpfs's root); returns its size. */
    fill(name: string): number {
        const file = path.join(this.dir, name);
        const fd = fs.openSync(file, "a");
        try {
            const chunk = Buffer.alloc(64 * 1024);
            for (;;) {
                try {
                    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(this.free(), 4096)));
                } catch (error) {
                    if ((error as NodeJS.ErrnoException).code === "ENOSPC") {
                        break;
                    }
                    throw error;
                }
            }
        } finally {
            fs.closeSync(fd);
        }
        return fs.statSync(file).size;
    }

    unmount(): void {
        if (!this.mounted) {
            return;
        }
        const result = spawnSync("umount", [this.dir], { encoding: "utf8" });
        if (result.status !== 0) {
            throw new Error(`umount ${this.dir} failed: ${result.stderr.trim()}`);
        }
        this.mounted = false;
        fs.rmdirSync(this.dir);
    }
}
