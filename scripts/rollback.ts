// Restores a dump taken before an image change and redeploys the image it was taken from.
//
//   npm run rollback -- --stack prod                       list the dumps (changes nothing)
//   npm run rollback -- --stack prod --dump <file>         show what it would overwrite, ask, then do it
//   npm run rollback -- --stack prod --dump <file> --yes   the same without asking (CI, scripts)
//
// Runs on the Docker host with the stack's backend and secrets at hand (as `pulumi up`
// does); --work-dir is where Pulumi.<stack>.yaml lives (default: this repository).
// Steps: stop the CalDAV container; in one transaction, drop the CalDAV schema and
// restore the dump; record the dump's image as the deployed one; set source.ref (the
// image's commit) or prebuiltImage in the stack's config; `pulumi up` (whose dump
// before the image change keeps a copy of what was restored).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { BACKUP_DIR, DEPLOYED_MARKER } from "../components/backup";
import { PROJECT } from "../components/config";
import { FULL_SHA } from "../components/source";

const ROOT = path.join(__dirname, "..");

export class RollbackError extends Error {}

interface Options {
    stack: string;
    dump?: string;
    yes: boolean;
    workDir: string;
}

export function parseArgs(argv: string[]): Options {
    const options: Partial<Options> = { yes: false, workDir: ROOT };
    for (let i = 0; i < argv.length; i++) {
        const value = () => {
            const next = argv[++i];
            if (next === undefined || next.startsWith("--")) {
                throw new RollbackError(`${argv[i - 1]} needs a value`);
            }
            return next;
        };
        switch (argv[i]) {
            case "--stack": options.stack = value(); break;
            case "--dump": options.dump = value(); break;
            case "--work-dir": options.workDir = path.resolve(value()); break;
            case "--yes": options.yes = true; break;
            default: throw new RollbackError(`unknown argument ${argv[i]}; usage: npm run rollback -- --stack <stack> [--dump <file> [--yes]] [--work-dir <dir>]`);
        }
    }
    if (!options.stack) {
        throw new RollbackError("--stack <stack> is required (the stack to roll back, e.g. prod)");
    }
    if (options.dump !== undefined && !/^caldav-\d{8}T\d{6}Z-[A-Za-z0-9]+\.dump$/.test(options.dump)) {
        throw new RollbackError(`--dump ${options.dump} is not a dump file name (caldav-<time>-<image>.dump); run without --dump to list them`);
    }
    return options as Options;
}

function docker(args: string[], input?: string): string {
    const result = spawnSync("docker", args, { encoding: "utf8", input, maxBuffer: 64 * 1024 * 1024 });
    if (result.error) {
        throw new RollbackError(`docker is not usable here (${result.error.message}); run this on the Docker host`);
    }
    if (result.status !== 0) {
        throw new RollbackError(`docker ${args.slice(0, 2).join(" ")} failed: ${result.stderr.trim()}`);
    }
    return result.stdout.trim();
}

/** How the dump container of the stack reaches the database and the dumps: its own settings. */
interface DumpSetup {
    env: Record<string, string>;
    mount: string;
    network: string;
    tools: string;
}

/** The part of `docker container inspect` read here. */
interface ContainerInfo {
    Image: string;
    Config: { Env: string[] };
    Mounts: { Type: string; Name?: string; Source: string; Destination: string }[];
    NetworkSettings: { Networks: Record<string, unknown> };
}

function dumpSetup(dumpContainer: string): DumpSetup {
    let info: ContainerInfo;
    try {
        info = JSON.parse(docker(["container", "inspect", dumpContainer]))[0];
    } catch (error) {
        throw new RollbackError(`no dump container ${dumpContainer} on this Docker host (${(error as Error).message}): is backup.enabled true for this stack, and did an up run since?`);
    }
    const env = Object.fromEntries(info.Config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    const mount = info.Mounts.find((m) => m.Destination === BACKUP_DIR);
    if (!mount) {
        throw new RollbackError(`${dumpContainer} has no ${BACKUP_DIR} mount`);
    }
    return {
        env,
        mount: `${mount.Type === "volume" ? mount.Name : mount.Source}:${BACKUP_DIR}`,
        network: Object.keys(info.NetworkSettings.Networks)[0],
        tools: info.Image,
    };
}

/** Runs `script` (sh) in the tools image with the backups mounted and the database's env, secrets in a 0600 file. */
function inTools(setup: DumpSetup, script: string, env: Record<string, string> = {}): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "caldav-rollback-"));
    const envFile = path.join(dir, "env");
    try {
        fs.writeFileSync(envFile, Object.entries({ ...setup.env, ...env }).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
        return docker(["run", "--rm", "--network", setup.network, "--volume", setup.mount, "--env-file", envFile,
            "--entrypoint", "sh", setup.tools, "-c", script]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * What to set in the stack's config so that `up` runs that image again: from the reference
 * it was deployed as (`<imageName>:<commit>` when built), else from the image's own names.
 */
export function redeployConfig(reference: string | undefined, repoTags: string[], repoDigests: string[]): { key: "source.ref" | "prebuiltImage"; value: string } | undefined {
    if (reference) {
        const tag = reference.split("/").pop()!.split(":")[1] ?? "";
        return FULL_SHA.test(tag) ? { key: "source.ref", value: tag } : { key: "prebuiltImage", value: reference };
    }
    const built = repoTags.map((tag) => tag.split(":").pop() as string).find((tag) => FULL_SHA.test(tag));
    if (built) {
        return { key: "source.ref", value: built };
    }
    const published = [...repoDigests, ...repoTags.filter((tag) => !tag.endsWith(":latest"))][0];
    return published ? { key: "prebuiltImage", value: published } : undefined;
}

async function confirm(stack: string, yes: boolean): Promise<void> {
    if (yes) {
        return;
    }
    if (!process.stdin.isTTY) {
        throw new RollbackError("refusing without confirmation: not a terminal; pass --yes once you have read the plan above");
    }
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Type the stack name (${stack}) to go ahead: `);
    rl.close();
    if (answer.trim() !== stack) {
        throw new RollbackError("not confirmed; nothing was changed");
    }
}

async function selectStack(options: Options): Promise<Stack> {
    // The program in this process (as `pulumi up` would run index.ts).
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module's exports are the stack outputs
    const program = async () => ({ ...require(path.join(ROOT, "index.ts")) });
    return LocalWorkspace.selectStack({ stackName: options.stack, projectName: PROJECT, program }, { workDir: options.workDir });
}

export async function rollback(options: Options, log: (line: string) => void): Promise<void> {
    const stack = await selectStack(options);
    const outputs = await stack.outputs();
    const server = outputs.containerName?.value as string | undefined;
    if (!server) {
        throw new RollbackError(`stack ${options.stack} has no containerName output: deploy it first`);
    }
    const setup = dumpSetup(`${server}-dump`);
    // One line per dump: file, image ID, reference (what its .image file holds).
    const listing = inTools(setup, `cd ${BACKUP_DIR} && for f in $(ls -1 caldav-*.dump 2>/dev/null | sort -r); do printf '%s %s\\n' "$f" "$(cat "\${f%.dump}.image" 2>/dev/null | tr '\\n' ' ')"; done`);
    const dumps = new Map(listing.split("\n").filter(Boolean).map((line) => {
        const [file, id = "unknown", reference] = line.trim().split(/\s+/);
        return [file, { id, reference }] as const;
    }));

    if (options.dump === undefined) {
        log(dumps.size === 0 ? `no dumps of stack ${options.stack} yet` : `dumps of stack ${options.stack}, newest first (file, image it was used by):`);
        dumps.forEach((image, file) => log(`  ${file}  ${image.id}  ${image.reference ?? ""}`));
        return;
    }
    const taken = dumps.get(options.dump);
    if (taken === undefined) {
        throw new RollbackError(`${options.dump} is not among the dumps of stack ${options.stack}; run without --dump to list them`);
    }
    const imageId = taken.id;
    let redeploy = redeployConfig(taken.reference, [], []);
    if (!redeploy) {
        try {
            const image = JSON.parse(docker(["image", "inspect", imageId]))[0];
            redeploy = redeployConfig(undefined, image.RepoTags ?? [], image.RepoDigests ?? []);
        } catch {
            redeploy = undefined;
        }
    }
    if (!redeploy) {
        throw new RollbackError(`the image ${options.dump} was taken from (${imageId}) is no longer on this host or has no tag; ` +
            "set source.ref or prebuiltImage to that release yourself, then restore by hand (README, Operations)");
    }
    const { PGDATABASE: database, CALDAV_DB_SCHEMA: schema, PGHOST: host } = setup.env;
    log(`This will, for stack ${options.stack}:`);
    log(`  1. stop the CalDAV container ${server} (the service is down until step 4 ends);`);
    log(`  2. DROP schema ${schema} of database ${database} on ${host} with everything in it (every calendar, event and share written since the dump) and restore ${options.dump};`);
    log(`  3. set ${redeploy.key} to ${redeploy.value} in Pulumi.${options.stack}.yaml;`);
    log(`  4. run pulumi up, which dumps the restored data again, then runs image ${imageId}.`);
    await confirm(options.stack, options.yes);

    docker(["stop", server]);
    log(`stopped ${server}`);
    inTools(setup, `set -eu
cd ${BACKUP_DIR}
{ printf 'DROP SCHEMA IF EXISTS "%s" CASCADE;\\n' "$CALDAV_DB_SCHEMA"; pg_restore --file=- "$DUMP"; } | psql -X -q -v ON_ERROR_STOP=1 --single-transaction >/dev/null
cp "\${DUMP%.dump}.image" ${DEPLOYED_MARKER}.partial && mv ${DEPLOYED_MARKER}.partial ${DEPLOYED_MARKER}`, { DUMP: options.dump });
    log(`restored ${options.dump} into ${database}.${schema}`);

    await stack.setConfig(`${PROJECT}:${redeploy.key}`, { value: redeploy.value }, redeploy.key.includes("."));
    if (redeploy.key === "source.ref" && (await stack.getAllConfig())[`${PROJECT}:prebuiltImage`] !== undefined) {
        await stack.removeConfig(`${PROJECT}:prebuiltImage`);
    }
    log(`set ${redeploy.key} ${redeploy.value}; commit Pulumi.${options.stack}.yaml`);
    await stack.up({ onOutput: (text) => process.stderr.write(text), color: "never" });
    log(`stack ${options.stack} runs ${imageId} again, with the data of ${options.dump}`);
}

if (require.main === module) {
    rollback(parseArgs(process.argv.slice(2)), (line) => process.stdout.write(`${line}\n`)).then(
        () => process.exit(0),
        (error: Error) => {
            process.stderr.write(`rollback: ${error.message}\n`);
            process.exit(1);
        },
    );
}
