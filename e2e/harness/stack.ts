// A stack of this project run for real, in the manner of Pulumi's ProgramTest: its
// own work directory (a copy of Pulumi.yaml and of a committed stack file with the
// scenario's overrides), its own file backend and PULUMI_HOME, the CLI and plugins of
// e2e/toolchain, and index.ts evaluated afresh on every operation as an Automation
// API inline program (the Node.js language host cannot be built here; the inline
// program is Pulumi's own in-process language server).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    EngineEvent,
    LocalWorkspace,
    OutputMap,
    PulumiCommand,
    Stack,
} from "@pulumi/pulumi/automation";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { e2eEnvironment, ROOT } from "./environment";

const PROJECT = "calendars-caldav";
const PROGRAM_DIRS = [path.join(ROOT, "components") + path.sep];
const INDEX = path.join(ROOT, "index.ts");

export type Config = Record<string, unknown>;

/** What one operation did: the step of every resource that was not left as it was. */
export interface Result {
    /** URN -> step (`create`, `update`, `replace`, `delete`, ...). */
    changes: Map<string, string>;
    outputs: OutputMap;
}

/** index.ts, loaded afresh so that each operation evaluates the program from scratch. */
async function program(): Promise<Record<string, unknown>> {
    for (const file of Object.keys(require.cache)) {
        if (file === INDEX || PROGRAM_DIRS.some((dir) => file.startsWith(dir))) {
            delete require.cache[file];
        }
    }
    return { ...require(INDEX) };
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

/** An operation in a process of its own that runs longer than this has hung: it fails the test instead of the whole run. */
const OWN_PROCESS_TIMEOUT_MS = 300_000;

function hung(result: { error?: Error; stderr: string }, what: string): void {
    if (result.error) {
        throw new Error(`${what} did not end within ${OWN_PROCESS_TIMEOUT_MS / 1000} s (${result.error.message}); its stderr:\n${result.stderr}`);
    }
}

function log(line: string): void {
    process.stderr.write(`    ${line}\n`);
}

/**
 * Runs `work`; if it fails, what the program printed on stderr meanwhile is added to the
 * error. An inline program shares this process: a message the SDK cannot hand to the
 * engine (an error hook's log once the program's main has returned) lands on stderr,
 * which is where an operator sees it, as the language host shows a program's stderr.
 */
async function withProgramStderr<T>(work: () => Promise<T>): Promise<T> {
    const printed: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
        printed.push(String(chunk));
        return write(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
        return await work();
    } catch (error) {
        const program = printed.filter((text) => text.includes("[runtime]")).join("");
        if (error instanceof Error && program) {
            error.message += `\nprogram stderr:\n${program}`;
        }
        throw error;
    } finally {
        process.stderr.write = write;
    }
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
        /** Another program than index.ts (the benchmark's empty program). */
        inline: () => Promise<Record<string, unknown>> = program,
    ): Promise<TestStack> {
        const environment = e2eEnvironment();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `calendars-e2e-${name}-`));
        fs.mkdirSync(path.join(dir, "backend"));
        fs.mkdirSync(path.join(dir, "home"));
        fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
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
            PATH: `${environment.toolchainBin}:${process.env.PATH}`,
        };
        const pulumiCommand = await PulumiCommand.get({ root: path.dirname(environment.toolchainBin), skipVersionCheck: true });
        const stack = await LocalWorkspace.createOrSelectStack(
            { stackName: name, projectName: PROJECT, program: inline },
            { workDir: dir, envVars: env, pulumiHome: env.PULUMI_HOME, pulumiCommand, secretsProvider: "passphrase" },
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

    private recorder(operation: string): { onEvent: (e: EngineEvent) => void; onOutput: (s: string) => void; changes: Map<string, string> } {
        const changes = new Map<string, string>();
        let started = Date.now();
        return {
            changes,
            onOutput: (text) => {
                // Progress on stderr, one line at a time, with the time into the operation.
                for (const line of text.split("\n")) {
                    if (line.trim()) {
                        log(`[${this.name} ${operation} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line.trimEnd()}`);
                    }
                }
            },
            onEvent: (event) => {
                if (event.preludeEvent) {
                    started = Date.now();
                }
                const metadata = event.resOutputsEvent?.metadata ?? event.resourcePreEvent?.metadata;
                if (metadata && metadata.op !== "same" && metadata.op !== "read" && metadata.type !== "pulumi:pulumi:Stack") {
                    changes.set(metadata.urn, metadata.op);
                }
            },
        };
    }

    async up(): Promise<Result> {
        const { changes, onEvent, onOutput } = this.recorder("up");
        const result = await withProgramStderr(() => this.stack.up({ onEvent, onOutput, color: "never" }));
        return { changes, outputs: result.outputs };
    }

    /**
     * `up` in a process of its own, for programs expected to throw: returns the error
     * message (undefined when the up succeeded). See harness/operation.ts.
     */
    upInOwnProcess(): string | undefined {
        const result = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "operation.ts"), this.dir, this.name, "up"],
            { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...this.env }, timeout: OWN_PROCESS_TIMEOUT_MS });
        hung(result, "up");
        return result.status === 0 ? undefined : result.stderr;
    }

    /**
     * `npm run rollback` (scripts/rollback.ts) on this stack, in a process of its own with the
     * stack's environment, as an operator runs it; returns its exit status and output.
     */
    rollback(args: string[]): { status: number | null; stdout: string; stderr: string } {
        const result = spawnSync(process.execPath,
            ["--import", "tsx", path.join(ROOT, "scripts", "rollback.ts"), "--stack", this.name, "--work-dir", this.dir, ...args],
            { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...this.env, PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true" }, timeout: OWN_PROCESS_TIMEOUT_MS });
        hung(result, "rollback");
        for (const line of result.stderr.split("\n").filter((l) => l.trim())) {
            log(`[${this.name} rollback] ${line}`);
        }
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    }

    async preview(options: { expectNoChanges?: boolean } = {}): Promise<Result> {
        const { changes, onEvent, onOutput } = this.recorder("preview");
        await this.stack.preview({ onEvent, onOutput, color: "never", ...options });
        return { changes, outputs: {} };
    }

    async destroy(): Promise<Result> {
        const { changes, onEvent, onOutput } = this.recorder("destroy");
        await this.stack.destroy({ onEvent, onOutput, color: "never" });
        return { changes, outputs: {} };
    }

    async outputs(): Promise<OutputMap> {
        return this.stack.outputs();
    }

    /** URNs of the resources in the stack's state. */
    async urns(): Promise<string[]> {
        const deployment = await this.stack.exportStack();
        return (deployment.deployment.resources ?? []).map((resource: { urn: string }) => resource.urn);
    }

    /** Runs the CLI in the stack's directory and environment (e.g. `state unprotect`). */
    cli(args: string[]): string {
        const result = spawnSync(path.join(e2eEnvironment().toolchainBin, "pulumi"),
            [...args, "--stack", this.name, "--non-interactive"],
            { cwd: this.dir, encoding: "utf8", env: { ...process.env, ...this.env } });
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
            await this.stack.destroy({ color: "never", onOutput: () => undefined });
        } finally {
            fs.rmSync(this.dir, { recursive: true, force: true });
        }
    }
}
