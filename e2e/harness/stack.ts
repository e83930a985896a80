// A stack of this project run for real, the way an operator runs it: the Pulumi CLI in a
// project directory. Each stack gets a directory of its own holding a copy of the project
// (Pulumi.yaml, package.json, tsconfig.json and the tsconfig Pulumi.yaml names, index.ts,
// components/ and a symlink to the repository's node_modules), its stack file (the
// committed Pulumi.<stack>.yaml with the scenario's overrides), its own file backend,
// PULUMI_HOME and ts-node compile cache. Every operation is the
// Automation API with a *local* program (workDir = that directory): the CLI starts the
// Node.js language host found next to it on PATH (e2e/toolchain's, or the official one
// with E2E_TOOLCHAIN=external), which runs node with @pulumi/pulumi/cmd/run, which
// compiles index.ts as Pulumi.yaml and that tsconfig say. Nothing of the program runs in
// the test process.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import {
    CommandError,
    DiagnosticEvent,
    EngineEvent,
    LocalWorkspace,
    OutputMap,
    PulumiCommand,
    Stack,
} from "@pulumi/pulumi/automation";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { e2eEnvironment, ROOT } from "./environment";
import { processesIn as processesUnder, processParents } from "./processes";

const PROJECT = "calendars-caldav";

/** What of a project directory the CLI needs to run it (node_modules is linked, not copied). */
const PROJECT_ENTRIES = ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components"];

export type Config = Record<string, unknown>;

/** A diagnostic the engine reported during an operation (a program's log, an error). */
export interface Diagnostic {
    severity: DiagnosticEvent["severity"];
    /** The resource it is about, if any. */
    urn?: string;
    message: string;
}

/** What one operation did: the step of every resource that was not left as it was. */
export interface Result {
    /** URN -> step (`create`, `update`, `replace`, `delete`, ...). */
    changes: Map<string, string>;
    outputs: OutputMap;
    /** The engine's diagnostics, in order. */
    diagnostics: Diagnostic[];
    /** Every engine event, with when it reached this process (ms since the operation was started; ±0.2 s: the event log is polled). */
    timeline: { ms: number; event: EngineEvent }[];
}

/** A resource as the state records it. */
export interface StateResource {
    urn: string;
    type: string;
    parent?: string;
    dependencies?: string[];
    /** Property name -> URNs its value came from. */
    propertyDependencies?: Record<string, string[]>;
    /** Its provider: `<provider URN>::<provider ID>`. */
    provider?: string;
}

/**
 * A failed operation. `message` is the CLI's whole output (exit code, stdout, stderr), as
 * the Automation API reports it; the parts are kept apart, with the engine's diagnostics,
 * so that a scenario can say where an operator sees a message.
 */
export class OperationError extends Error {
    constructor(
        message: string,
        readonly stdout: string,
        readonly stderr: string,
        readonly diagnostics: Diagnostic[],
    ) {
        super(message);
        this.name = "OperationError";
    }
}

function merge(base: Config, overrides: Config): Config {
    const merged: Config = { ...base };
    for (const [key, value] of Object.entries(overrides)) {
        const current = merged[key];
        merged[key] = value && typeof value === "object" && current && typeof current === "object" && !Array.isArray(value)
            ? { ...(current as Config), ...(value as Config) }
            : value;
    }
    return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
}

/** A config value set with --secret: `{ secure: <ciphertext> }` in the stack file. */
function isSecure(value: unknown): boolean {
    return typeof value === "object" && value !== null && "secure" in value;
}

/** An operation (or a process of its own) that runs longer than this has hung: it fails the test instead of the whole run. */
const OPERATION_TIMEOUT_MS = 300_000;
/** After a hung operation was interrupted (SIGINT, as Ctrl-C), how long it has to end before its processes are killed. */
const INTERRUPT_GRACE_MS = 15_000;

function hung(result: { error?: Error; stderr: string }, what: string): void {
    if (result.error) {
        throw new Error(`${what} did not end within ${OPERATION_TIMEOUT_MS / 1000} s (${result.error.message}); its stderr:\n${result.stderr}`);
    }
}

function log(line: string): void {
    process.stderr.write(`    ${line}\n`);
}

/**
 * Processes this test process started (children, grandchildren...) whose working directory
 * is `dir` or below: the CLI of a stack, its language host, node, the providers.
 */
function processesIn(dir: string): number[] {
    const parents = processParents();
    const descends = (pid: number): boolean => {
        for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) {
            if (p === process.pid) {
                return true;
            }
        }
        return false;
    };
    return processesUnder(dir).map((found) => found.pid).filter(descends);
}

/**
 * Copies the project directory `from` into `to` as the CLI needs it: the files of
 * PROJECT_ENTRIES that exist there, the tsconfig file Pulumi.yaml's runtime options name,
 * and node_modules as a symlink to the repository's.
 */
function copyProject(from: string, to: string): void {
    const project = parseYaml(fs.readFileSync(path.join(from, "Pulumi.yaml"), "utf8")) ?? {};
    const tsconfig: unknown = project.runtime?.options?.tsconfig;
    for (const entry of [...PROJECT_ENTRIES, ...(typeof tsconfig === "string" ? [tsconfig] : [])]) {
        if (fs.existsSync(path.join(from, entry))) {
            fs.cpSync(path.join(from, entry), path.join(to, entry), { recursive: true });
        }
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(to, "node_modules"), "dir");
}

export class TestStack {
    private constructor(
        readonly name: string,
        readonly dir: string,
        private readonly stack: Stack,
        private readonly env: Record<string, string>,
    ) {}

    /**
     * A new stack `name` whose config is the committed `Pulumi.<name>.yaml` (if any)
     * with `config` merged over it (objects field by field; undefined removes a key).
     */
    static async create(
        name: string,
        config: Config,
        secrets: Record<string, string> = {},
        /** Another project directory than this repository (the benchmark's empty program). */
        project: string = ROOT,
    ): Promise<TestStack> {
        const environment = e2eEnvironment();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `calendars-e2e-${name}-`));
        copyProject(project, dir);
        fs.mkdirSync(path.join(dir, "backend"));
        fs.mkdirSync(path.join(dir, "home"));
        const committed = path.join(ROOT, `Pulumi.${name}.yaml`);
        const base = fs.existsSync(committed) ? parseYaml(fs.readFileSync(committed, "utf8"))?.config ?? {} : {};
        const unprefixed = Object.fromEntries(Object.entries<unknown>(base).map(([k, v]) => [k.replace(`${PROJECT}:`, ""), v]));
        TestStack.writeConfig(dir, name, merge(unprefixed, config));

        const env: Record<string, string> = {
            PULUMI_BACKEND_URL: `file://${path.join(dir, "backend")}`,
            PULUMI_HOME: path.join(dir, "home"),
            PULUMI_CONFIG_PASSPHRASE: "calendars-caldav-e2e",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            // With the built toolchain, a plugin it lacks must fail, not be downloaded.
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: String(environment.toolchain === "build"),
            DOCKER_HOST: environment.dockerHost,
            // The CLI finds the language host and the providers here.
            PATH: `${environment.toolchainBin}:${process.env.PATH}`,
            // ts-node's compile cache (default: one per user in the temp directory), kept with the
            // stack and removed with it: every stack starts with it empty, as a fresh CI runner does.
            TS_NODE_CACHE_DIRECTORY: path.join(dir, "ts-node-cache"),
        };
        const pulumiCommand = await PulumiCommand.get({ root: path.dirname(environment.toolchainBin), skipVersionCheck: true });
        const stack = await LocalWorkspace.createOrSelectStack(
            { stackName: name, workDir: dir },
            { envVars: env, pulumiHome: env.PULUMI_HOME, pulumiCommand, secretsProvider: "passphrase" },
        );
        for (const [key, value] of Object.entries(secrets)) {
            await stack.setConfig(`${PROJECT}:${key}`, { value, secret: true });
        }
        return new TestStack(name, dir, stack, env);
    }

    private static writeConfig(dir: string, name: string, config: Config): void {
        const file = path.join(dir, `Pulumi.${name}.yaml`);
        const existing = fs.existsSync(file) ? parseYaml(fs.readFileSync(file, "utf8")) ?? {} : {};
        // Keys of this project are rewritten; secrets and the encryption salt are kept.
        const kept = Object.fromEntries(Object.entries<unknown>(existing.config ?? {})
            .filter(([key, value]) => !key.startsWith(`${PROJECT}:`) || isSecure(value)));
        const prefixed = Object.fromEntries(Object.entries(config).map(([key, value]) => [`${PROJECT}:${key}`, value]));
        fs.writeFileSync(file, toYaml({ ...existing, config: { ...kept, ...prefixed } }));
    }

    /** The stack's current (non-secret) config, keys without the project prefix. */
    config(): Config {
        const file = parseYaml(fs.readFileSync(path.join(this.dir, `Pulumi.${this.name}.yaml`), "utf8")) ?? {};
        return Object.fromEntries(Object.entries<unknown>(file.config ?? {})
            .filter(([key, value]) => key.startsWith(`${PROJECT}:`) && !isSecure(value))
            .map(([key, value]) => [key.slice(PROJECT.length + 1), value]));
    }

    /** Merges `overrides` into the config, as `pulumi config set --path` would. */
    configure(overrides: Config): void {
        TestStack.writeConfig(this.dir, this.name, merge(this.config(), overrides));
    }

    /**
     * The environment the CLI runs in for this stack (its backend, PULUMI_HOME, passphrase,
     * DOCKER_HOST, PATH with the toolchain): for CLI processes a scenario starts and signals itself.
     */
    environment(): Record<string, string> {
        return { ...process.env as Record<string, string>, ...this.env };
    }

    /** Sets (or, with undefined, removes) a variable of the environment the CLI and the program run in. */
    setEnv(name: string, value: string | undefined): void {
        if (value === undefined) {
            delete this.env[name];
            delete this.stack.workspace.envVars[name];
        } else {
            this.env[name] = value;
            this.stack.workspace.envVars[name] = value;
        }
    }

    /**
     * Runs one CLI operation with progress on stderr (the CLI's stdout and stderr, one line
     * at a time, with the time into the operation), the resources it changed and the
     * engine's diagnostics; a failure becomes an OperationError. After OPERATION_TIMEOUT_MS
     * the operation is interrupted as Ctrl-C would, then its processes are killed, and it fails.
     */
    private async operation<T>(
        what: string,
        run: (options: {
            onEvent: (e: EngineEvent) => void;
            onOutput: (s: string) => void;
            onError: (s: string) => void;
            signal: AbortSignal;
            color: "never";
        }) => Promise<T>,
    ): Promise<{ value: T } & Omit<Result, "outputs">> {
        const changes = new Map<string, string>();
        const diagnostics: Diagnostic[] = [];
        const timeline: Result["timeline"] = [];
        const called = Date.now();
        let started = called;
        const progress = (stream: string) => (text: string) => {
            for (const line of text.split("\n")) {
                if (line.trim()) {
                    log(`[${this.name} ${what}${stream} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line.trimEnd()}`);
                }
            }
        };
        const onEvent = (event: EngineEvent) => {
            timeline.push({ ms: Date.now() - called, event });
            if (event.preludeEvent) {
                started = Date.now();
            }
            if (event.diagnosticEvent) {
                const { severity, urn, message } = event.diagnosticEvent;
                diagnostics.push({ severity, urn, message });
            }
            const metadata = event.resOutputsEvent?.metadata ?? event.resourcePreEvent?.metadata;
            if (metadata && metadata.op !== "same" && metadata.op !== "read" && metadata.type !== "pulumi:pulumi:Stack") {
                changes.set(metadata.urn, metadata.op);
            }
        };
        const controller = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
                controller.abort();
                timer = setTimeout(() => {
                    const pids = processesIn(this.dir);
                    for (const pid of pids) {
                        try {
                            process.kill(pid, "SIGKILL");
                        } catch {
                            // Ended meanwhile.
                        }
                    }
                    reject(new Error(`${what} of stack ${this.name} did not end within ${OPERATION_TIMEOUT_MS / 1000} s; ` +
                        `interrupted, then killed ${pids.length ? `processes ${pids.join(" ")}` : "nothing (all had ended)"}`));
                }, INTERRUPT_GRACE_MS);
            }, OPERATION_TIMEOUT_MS);
        });
        try {
            const value = await Promise.race([
                run({ onEvent, onOutput: progress(""), onError: progress(" stderr"), signal: controller.signal, color: "never" }),
                timeout,
            ]);
            return { value, changes, diagnostics, timeline };
        } catch (error) {
            if (error instanceof CommandError) {
                // A failed command reaches the Automation API as execa's error (code -2), with the
                // CLI's stdout and stderr on it; the result's own are empty then.
                type Output = { stdout?: string; stderr?: string };
                const result = (error as unknown as { commandResult: Output & { err?: Output } }).commandResult;
                const output = { stdout: result.err?.stdout ?? result.stdout ?? "", stderr: result.err?.stderr ?? result.stderr ?? "" };
                const interrupted = controller.signal.aborted
                    ? `${what} of stack ${this.name} did not end within ${OPERATION_TIMEOUT_MS / 1000} s and was interrupted:\n`
                    : "";
                throw new OperationError(interrupted + error.message, output.stdout, output.stderr, diagnostics);
            }
            throw error;
        } finally {
            clearTimeout(timer);
        }
    }

    async up(): Promise<Result> {
        const { value, ...result } = await this.operation("up", (options) => this.stack.up(options));
        return { ...result, outputs: value.outputs };
    }

    /**
     * `up` for programs expected to fail: returns the error message (the CLI's output;
     * undefined when the up succeeded). The program runs in processes of its own (the CLI's
     * language host starts node), so a failure cannot hang the test process; the name stays
     * from when programs ran in the test process.
     */
    async upInOwnProcess(): Promise<string | undefined> {
        try {
            await this.up();
            return undefined;
        } catch (error) {
            if (error instanceof OperationError) {
                return error.message;
            }
            throw error;
        }
    }

    /**
     * `npm run rollback` (scripts/rollback.ts) on this stack, in a process of its own with the
     * stack's environment, as an operator runs it; returns its exit status and output.
     */
    rollback(args: string[]): { status: number | null; stdout: string; stderr: string } {
        const result = spawnSync(process.execPath,
            ["--import", "tsx", path.join(ROOT, "scripts", "rollback.ts"), "--stack", this.name, "--work-dir", this.dir, ...args],
            { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...this.env, PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true" }, timeout: OPERATION_TIMEOUT_MS });
        hung(result, "rollback");
        for (const line of result.stderr.split("\n").filter((l) => l.trim())) {
            log(`[${this.name} rollback] ${line}`);
        }
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    }

    async preview(options: { expectNoChanges?: boolean } = {}): Promise<Result> {
        const { changes, diagnostics, timeline } = await this.operation("preview", (o) => this.stack.preview({ ...o, ...options }));
        return { changes, diagnostics, timeline, outputs: {} };
    }

    async destroy(): Promise<Result> {
        const { changes, diagnostics, timeline } = await this.operation("destroy", (options) => this.stack.destroy(options));
        return { changes, diagnostics, timeline, outputs: {} };
    }

    async outputs(): Promise<OutputMap> {
        return this.stack.outputs();
    }

    /** The resources in the stack's state. */
    async resources(): Promise<StateResource[]> {
        const deployment = await this.stack.exportStack();
        return deployment.deployment.resources ?? [];
    }

    /** URNs of the resources in the stack's state. */
    async urns(): Promise<string[]> {
        return (await this.resources()).map((resource) => resource.urn);
    }

    /** Runs the CLI in the stack's directory and environment (e.g. `state unprotect`). */
    cli(args: string[]): string {
        const result = spawnSync(path.join(e2eEnvironment().toolchainBin, "pulumi"),
            [...args, "--stack", this.name, "--non-interactive"],
            { cwd: this.dir, encoding: "utf8", env: { ...process.env, ...this.env }, timeout: OPERATION_TIMEOUT_MS });
        hung(result, `pulumi ${args.join(" ")}`);
        if (result.status !== 0) {
            throw new Error(`pulumi ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
        }
        return result.stdout;
    }

    /**
     * Tears everything down, also after a failure: unprotects, destroys, removes the
     * stack and its directory. What the program retains on purpose (the database,
     * the bundled server's volume) is the scenario's to remove.
     */
    async dispose(): Promise<void> {
        try {
            try {
                this.cli(["state", "unprotect", "--all", "--yes"]);
            } catch {
                // Nothing to unprotect, or no stack yet: destroy says what matters.
            }
            await this.operation("destroy", (options) => this.stack.destroy({ ...options, onOutput: () => undefined }));
        } finally {
            fs.rmSync(this.dir, { recursive: true, force: true });
        }
    }
}
