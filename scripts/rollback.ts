// Restores a dump taken before an image change and redeploys the image it was taken from.
//
//   npm run rollback -- --stack prod                       list the dumps (changes nothing)
//   npm run rollback -- --stack prod --dump <file>         show what it would overwrite, ask, then do it
//   npm run rollback -- --stack prod --dump <file> --yes   the same without asking (CI, scripts)
//
// Runs on the Docker host with the stack's backend and secrets at hand (as `pulumi up`
// does); --work-dir is where Pulumi.<stack>.yaml lives (default: this repository).
//
// Nothing is changed until every check passed: the dump reads back whole (while the
// server still runs), the image it was taken from is on this host, the stack's config
// for that image previews. Then: stop the CalDAV container; in one transaction, drop the
// schema and restore the dump (a failure rolls back and starts the server again); set
// source.ref or prebuiltImage (whichever the stack already uses) and `pulumi up`; start
// the server if `up` left it stopped; and report success only once the server runs the
// dump's image, healthy, on a schema with tables.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { BACKUP_DIR, DUMP_FILE, LIST_SCRIPT, RESTORE_SCRIPT, VERIFY_SCRIPT } from "../components/backup";
import { PROJECT } from "../components/config";
import { FULL_SHA } from "../components/source";

const ROOT = path.join(__dirname, "..");

export const USAGE = `usage: npm run rollback -- --stack <stack> [--dump <file> [--yes]] [--work-dir <dir>]

  --stack <stack>   the stack to roll back (e.g. prod)
  --dump <file>     the dump to restore (caldav-<seq>-<time>-<image>.dump); without it,
                    the stack's dumps are listed and nothing is changed
  --yes             do not ask for the stack name before changing anything
  --work-dir <dir>  where Pulumi.<stack>.yaml lives (default: this repository)
  --help            this text`;

/** A refusal or failure the tool explains itself (no stack trace). */
export class RollbackError extends Error {}

/** Bad arguments: the usage follows the message. */
export class UsageError extends RollbackError {}

export interface Options {
    stack: string;
    dump?: string;
    yes: boolean;
    workDir: string;
}

/** The tool's arguments; undefined for --help. */
export function parseArgs(argv: string[]): Options | undefined {
    const options: Partial<Options> = { yes: false, workDir: ROOT };
    for (let i = 0; i < argv.length; i++) {
        const value = () => {
            const next = argv[++i];
            if (next === undefined || next.startsWith("--")) {
                throw new UsageError(`${argv[i - 1]} needs a value`);
            }
            return next;
        };
        switch (argv[i]) {
            case "--help": case "-h": return undefined;
            case "--stack": options.stack = value(); break;
            case "--dump": options.dump = value(); break;
            case "--work-dir": options.workDir = path.resolve(value()); break;
            case "--yes": options.yes = true; break;
            default: throw new UsageError(`unknown argument ${argv[i]}`);
        }
    }
    if (!options.stack) {
        throw new UsageError("--stack <stack> is required (the stack to roll back, e.g. prod)");
    }
    if (options.dump !== undefined && !DUMP_FILE.test(options.dump)) {
        throw new UsageError(`--dump ${options.dump} is not a dump file name (caldav-<seq>-<time>-<image>.dump); run without --dump to list them`);
    }
    return options as Options;
}

/** The image a dump's data was used by, from its .image file. */
export interface DumpImage {
    id: string;
    reference?: string;
}

/** One line of the listing script: file, image ID, reference. */
export function parseListing(listing: string): Map<string, DumpImage> {
    return new Map(listing.split("\n").filter((line) => line.trim()).map((line) => {
        const [file, id, reference] = line.trim().split(/\s+/);
        const known = (value?: string) => (value && value !== "unknown" ? value : undefined);
        return [file, { id: known(id) ?? "unknown", reference: known(reference) }] as const;
    }));
}

/** How the stack gets its image today. */
export interface ImageConfig {
    prebuiltImage?: string;
    sourceRef?: string;
}

export type Redeploy = { key: "source.ref" | "prebuiltImage"; value: string };

/**
 * What to set so that `up` runs the dump's image again, without changing how the stack
 * gets its image: a stack that runs a published image gets that image's reference, a
 * stack that builds gets the commit the image was built from. `names` are the image's
 * own tags and digests (for dumps whose .image file has no reference).
 */
export function redeployConfig(current: ImageConfig, dump: DumpImage, names: { tags: string[]; digests: string[] }): Redeploy {
    const commitOf = (reference: string) => {
        const tag = reference.includes("@") ? "" : reference.split("/").pop()!.split(":")[1] ?? "";
        return FULL_SHA.test(tag) ? tag : undefined;
    };
    const candidates = dump.reference ? [dump.reference] : [...names.tags, ...names.digests];
    if (current.prebuiltImage !== undefined) {
        const published = dump.reference ?? [...names.digests, ...names.tags.filter((tag) => !tag.endsWith(":latest"))][0];
        if (published) {
            return { key: "prebuiltImage", value: published };
        }
        throw new RollbackError(`the image of this dump (${dump.id}) has no pinned name on this host, and the stack runs ` +
            "prebuiltImage: set prebuiltImage to that release yourself, then run the rollback again");
    }
    const commit = candidates.map(commitOf).find((sha) => sha !== undefined);
    if (commit) {
        return { key: "source.ref", value: commit };
    }
    throw new RollbackError(`the dump was taken from ${dump.reference ?? dump.id}, which was not built from a commit, and ` +
        "this stack builds from source: set source.ref to the commit of that release (or prebuiltImage, to run a " +
        "published image) yourself, then run the rollback again. Nothing was changed.");
}

/** The part of `docker container inspect` read here. */
export interface ContainerInfo {
    Image: string;
    Config: { Env: string[] };
    Mounts: { Type: string; Name?: string; Source: string; Destination: string }[];
    NetworkSettings: { Networks: Record<string, unknown> };
    State: { Running: boolean; Health?: { Status: string } };
}

/** How the tools container reaches the database and the dumps: the dump container's own settings. */
export interface ToolsSetup {
    /** The dump container: its password file is copied from it. */
    container: string;
    env: Record<string, string>;
    mount: string;
    network: string;
    image: string;
}

export function toolsSetup(dumpContainer: string, info: ContainerInfo): ToolsSetup {
    const env = Object.fromEntries(info.Config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    const mount = info.Mounts.find((m) => m.Destination === BACKUP_DIR);
    if (!mount) {
        throw new RollbackError(`${dumpContainer} has no ${BACKUP_DIR} mount`);
    }
    if (!env.STACK) {
        throw new RollbackError(`${dumpContainer} predates per-stack dump directories: run pulumi up once (it changes no image) and try again`);
    }
    return {
        container: dumpContainer,
        env,
        mount: `${mount.Type === "volume" ? mount.Name : mount.Source}:${BACKUP_DIR}`,
        network: Object.keys(info.NetworkSettings.Networks)[0],
        image: info.Image,
    };
}

/** What the tool does on the Docker host. */
export interface Host {
    /** `docker container inspect`, or undefined when there is no such container. */
    container(name: string): ContainerInfo | undefined;
    /** The image's tags and digests, or undefined when it is not on this host. */
    image(id: string): { tags: string[]; digests: string[] } | undefined;
    stop(name: string): void;
    start(name: string): void;
    /** Runs `script` (sh) in the tools image; returns its exit status and output. */
    tools(setup: ToolsSetup, script: string, env?: Record<string, string>): { status: number; stdout: string; stderr: string };
    /** Waits until the container's health check passes (true) or the time is up (false). */
    healthy(name: string, timeoutSeconds: number): Promise<boolean>;
}

/** What the tool does with the stack. */
export interface StackOps {
    outputs(): Promise<Record<string, unknown>>;
    imageConfig(): Promise<ImageConfig>;
    setConfig(change: Redeploy): Promise<void>;
    /** Puts the stack's config file back as it was before setConfig. */
    restoreConfig(): void;
    /** The number of resources the update would delete (replacements aside). */
    preview(): Promise<number>;
    up(): Promise<void>;
}

export interface Io {
    log(line: string): void;
    /** What went wrong (stderr). */
    error(text: string): void;
    /** Resolves when the operator confirmed (typed the stack name); rejects otherwise. */
    confirm(stack: string): Promise<void>;
}

const HEALTH_TIMEOUT_SECONDS = 180;

export async function rollback(options: Options, stack: StackOps, host: Host, io: Io): Promise<void> {
    const log = io.log;
    const outputs = await stack.outputs();
    const server = outputs.containerName as string | undefined;
    if (!server) {
        throw new RollbackError(`stack ${options.stack} has no containerName output: deploy it first`);
    }
    const dumpContainer = `${server}-dump`;
    const dumpInfo = host.container(dumpContainer);
    if (!dumpInfo) {
        throw new RollbackError(`no dump container ${dumpContainer} on this Docker host: is backup.enabled true for this stack, and did an up run since?`);
    }
    const setup = toolsSetup(dumpContainer, dumpInfo);
    const tools = (script: string, env: Record<string, string> = {}) => host.tools(setup, script, env);

    const listed = tools(LIST_SCRIPT);
    if (listed.status !== 0) {
        throw new RollbackError(`listing the dumps failed: ${listed.stderr.trim()}`);
    }
    const dumps = parseListing(listed.stdout);
    if (options.dump === undefined) {
        log(dumps.size === 0 ? `no dumps of stack ${options.stack} yet` : `dumps of stack ${options.stack}, newest first (file, image its data was used by):`);
        dumps.forEach((image, file) => log(`  ${file}  ${image.id}  ${image.reference ?? ""}`));
        return;
    }
    const dump = options.dump;
    const taken = dumps.get(dump);
    if (taken === undefined) {
        throw new RollbackError(`${dump} is not among the dumps of stack ${options.stack}; run without --dump to list them`);
    }
    const names = taken.id === "unknown" ? undefined : host.image(taken.id);
    if (!names) {
        throw new RollbackError(`the image ${dump} was taken from (${taken.id}) is not on this host (built images are kept; ` +
            "`docker image prune` removes them): restore by hand (README, Operations). Nothing was changed.");
    }
    const current = await stack.imageConfig();
    const redeploy = redeployConfig(current, taken, names);
    const configured = redeploy.key === "prebuiltImage" ? current.prebuiltImage : current.sourceRef;
    const changesConfig = configured !== redeploy.value;
    const { PGDATABASE: database, CALDAV_DB_SCHEMA: schema, PGHOST: pgHost } = setup.env;

    log(`This will, for stack ${options.stack}:`);
    log(`  1. check that ${dump} reads back whole and that the stack previews${changesConfig ? ` with ${redeploy.key} ${redeploy.value}` : ""}, deleting nothing;`);
    log(`  2. stop the CalDAV container ${server} (the service is down until step 4 ends);`);
    log(`  3. in one transaction, DROP schema ${schema} of database ${database} on ${pgHost} with everything in it ` +
        `(every calendar, event and share written since the dump) and restore ${dump};`);
    log(changesConfig
        ? `  4. set ${redeploy.key} to ${redeploy.value} in Pulumi.${options.stack}.yaml and run pulumi up, which runs image ${taken.id} again.`
        : `  4. run pulumi up (${redeploy.key} is already ${redeploy.value}) and start ${server} on image ${taken.id}.`);
    await io.confirm(options.stack);

    // Every check before anything changes.
    const check = tools(RESTORE_SCRIPT, { MODE: "check", DUMP: dump });
    if (check.status !== 0) {
        throw new RollbackError(`${check.stderr.trim()} The server was not stopped.`);
    }
    log(check.stdout.trim());
    if (changesConfig) {
        await stack.setConfig(redeploy);
    }
    const unchanged = `Nothing was changed${changesConfig ? ` (Pulumi.${options.stack}.yaml is as it was)` : ""}.`;
    let deletes: number;
    try {
        deletes = await stack.preview();
    } catch (error) {
        stack.restoreConfig();
        throw new RollbackError(`the stack does not preview${changesConfig ? ` with ${redeploy.key} ${redeploy.value}` : ""}: ${(error as Error).message.trim()}\n${unchanged}`);
    }
    if (deletes > 0) {
        // The up that follows the restore only swaps the image: a plan that deletes is not this tool's to run.
        stack.restoreConfig();
        throw new RollbackError(`the stack's preview would delete ${deletes} resource(s): run pulumi preview --diff to see why. ${unchanged}`);
    }

    const wasRunning = host.container(server)?.State.Running ?? false;
    if (wasRunning) {
        host.stop(server);
        log(`stopped ${server}`);
    }
    const applied = tools(RESTORE_SCRIPT, { MODE: "apply", DUMP: dump });
    if (applied.status !== 0) {
        stack.restoreConfig();
        if (wasRunning) {
            host.start(server);
        }
        throw new RollbackError(`${applied.stderr.trim()}${wasRunning ? ` ${server} was started again.` : ""}`);
    }
    log(applied.stdout.trim());
    if (changesConfig) {
        log(`set ${redeploy.key} ${redeploy.value}: commit Pulumi.${options.stack}.yaml`);
    }

    try {
        await stack.up();
    } catch (error) {
        throw new RollbackError(`the data of ${dump} is restored, but pulumi up failed: ${(error as Error).message.trim()}\n` +
            `State: schema ${schema} holds the data of ${dump}; the stack's config asks for ${redeploy.key} ${redeploy.value}; ` +
            `${server} is not running the dump's image. Fix the cause and run pulumi up for stack ${options.stack}; ` +
            "do not start the old container, whose newer image would migrate the restored data again.");
    }

    // `up` changes nothing when the image was already the configured one: the server the
    // tool stopped is then still stopped (`unless-stopped` does not restart it).
    const problems: string[] = [];
    const afterUp = host.container(server);
    if (!afterUp) {
        problems.push(`there is no container ${server}`);
    } else if (!afterUp.State.Running) {
        host.start(server);
        log(`started ${server}`);
    }
    if (afterUp && !(await host.healthy(server, HEALTH_TIMEOUT_SECONDS))) {
        problems.push(`${server} is not healthy after ${HEALTH_TIMEOUT_SECONDS} s (docker logs ${server})`);
    }
    const running = host.container(server);
    if (running?.Image !== taken.id) {
        problems.push(`${server} runs ${running?.Image ?? "nothing"}, not the dump's image ${taken.id}`);
    }
    const verified = tools(VERIFY_SCRIPT);
    const tables = Number(verified.stdout.split("\n")[0]);
    if (verified.status !== 0 || !(tables > 0)) {
        problems.push(`schema ${schema} has no table (${verified.stderr.trim() || `${tables} tables`})`);
    }
    if (problems.length > 0) {
        throw new RollbackError(`the data of ${dump} is restored, but: ${problems.join("; ")}. ` +
            `Look at docker logs ${server}, fix the cause and run pulumi up for stack ${options.stack}.`);
    }
    log(`stack ${options.stack} runs ${taken.id} again, healthy, with the data of ${dump} (${tables} tables in schema ${schema})`);
}

// ---------------------------------------------------------------- the real host and stack ---

function docker(args: string[]): { status: number; stdout: string; stderr: string } {
    const result = spawnSync("docker", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (result.error) {
        throw new RollbackError(`docker is not usable here (${result.error.message}); run this on the Docker host`);
    }
    return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

function dockerOk(args: string[]): string {
    const result = docker(args);
    if (result.status !== 0) {
        throw new RollbackError(`docker ${args.slice(0, 2).join(" ")} failed: ${result.stderr.trim()}`);
    }
    return result.stdout.trim();
}

export const dockerHost: Host = {
    container(name) {
        const result = docker(["container", "inspect", name]);
        return result.status === 0 ? JSON.parse(result.stdout)[0] : undefined;
    },
    image(id) {
        const result = docker(["image", "inspect", id]);
        if (result.status !== 0) {
            return undefined;
        }
        const image = JSON.parse(result.stdout)[0];
        return { tags: image.RepoTags ?? [], digests: image.RepoDigests ?? [] };
    },
    stop(name) {
        dockerOk(["stop", name]);
    },
    start(name) {
        dockerOk(["start", name]);
    },
    tools(setup, script, env = {}) {
        // The connection's password stays in files readable by root only, never on a command line.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "caldav-rollback-"));
        const envFile = path.join(dir, "env");
        try {
            fs.writeFileSync(envFile, Object.entries({ ...setup.env, ...env }).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
            const secrets: string[] = [];
            if (setup.env.PGPASSFILE) {
                dockerOk(["cp", `${setup.container}:${setup.env.PGPASSFILE}`, path.join(dir, "pgpass")]);
                secrets.push("--volume", `${path.join(dir, "pgpass")}:${setup.env.PGPASSFILE}:ro`);
            }
            return docker(["run", "--rm", "--network", setup.network, "--volume", setup.mount, ...secrets, "--env-file", envFile,
                "--entrypoint", "sh", setup.image, "-c", script]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    },
    async healthy(name, timeoutSeconds) {
        const deadline = Date.now() + timeoutSeconds * 1000;
        for (;;) {
            const state = dockerHost.container(name)?.State;
            if (state?.Health?.Status === "healthy") {
                return true;
            }
            if (!state?.Running || Date.now() > deadline) {
                return false;
            }
            // Docker's own health state, polled; the wait ends on the condition.
            await new Promise((resolve) => setTimeout(resolve, 1000));
        }
    },
};

/**
 * The stack in --work-dir, run as `pulumi preview` / `pulumi up` run it there: the CLI
 * starts the Node.js language host, which runs the project's program (index.ts) in a
 * process of its own, so every operation evaluates it afresh.
 */
async function pulumiStack(options: Options): Promise<StackOps> {
    const stack = await LocalWorkspace.selectStack({ stackName: options.stack, workDir: options.workDir });
    const file = path.join(options.workDir, `Pulumi.${options.stack}.yaml`);
    let saved: string | undefined;
    const progress = { onOutput: (text: string) => process.stderr.write(text), color: "never" as const };
    return {
        outputs: async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value])),
        async imageConfig() {
            const all = await stack.getAllConfig();
            const sourceValue = all[`${PROJECT}:source`]?.value;
            return {
                prebuiltImage: all[`${PROJECT}:prebuiltImage`]?.value,
                sourceRef: sourceValue ? (JSON.parse(sourceValue) as { ref?: string }).ref : undefined,
            };
        },
        async setConfig(change) {
            saved = fs.readFileSync(file, "utf8");
            await stack.setConfig(`${PROJECT}:${change.key}`, { value: change.value }, change.key.includes("."));
        },
        restoreConfig() {
            if (saved !== undefined) {
                fs.writeFileSync(file, saved);
            }
        },
        preview: async () => (await stack.preview(progress)).changeSummary.delete ?? 0,
        up: async () => void await stack.up(progress),
    };
}

const terminal: Io = {
    log: (line) => process.stdout.write(`${line}\n`),
    error: (text) => process.stderr.write(`${text}\n`),
    async confirm(stack) {
        if (!process.stdin.isTTY) {
            throw new RollbackError("refusing without confirmation: not a terminal; pass --yes once you have read the plan above");
        }
        const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question(`Type the stack name (${stack}) to go ahead: `);
        rl.close();
        if (answer.trim() !== stack) {
            throw new RollbackError("not confirmed; nothing was changed");
        }
    },
};

/** The command: its exit status (0 done, 1 refused or failed, 2 bad arguments). */
export async function main(argv: string[], io: Io = terminal, connect = pulumiStack, host = dockerHost): Promise<number> {
    let options: Options | undefined;
    try {
        options = parseArgs(argv);
    } catch (error) {
        io.error(`rollback: ${(error as Error).message}\n${USAGE}`);
        return 2;
    }
    if (!options) {
        io.log(USAGE);
        return 0;
    }
    try {
        const confirmed = options.yes ? { ...io, confirm: async () => undefined } : io;
        await rollback(options, await connect(options), host, confirmed);
        return 0;
    } catch (error) {
        io.error(`rollback: ${error instanceof RollbackError ? error.message : (error as Error).stack}`);
        return 1;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2)).then((status) => process.exit(status));
}
