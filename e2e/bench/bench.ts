// Benchmark (npm run bench): the program's operations on the dev stack next to their
// floors on the same engine, measured side by side in one run, printed as ratios. Every
// operation goes through the CLI, as an operator runs it (harness/stack.ts): the language
// host starts node, which compiles index.ts.
//   cold up      vs  the manual procedure by hand: network, PostgreSQL until healthy,
//                    role and database, docker build, docker run until healthy
//   no-op up     vs  no-op up of an empty program with the same providers (same CLI,
//                    language host, compile, backend, engine), in its own project directory
//   preview      vs  preview of that empty program
//   destroy      (reported, no floor)
// No-op up and preview are measured for each way the CLI can compile the program (below),
// with the compiler's cache empty (a fresh CI runner) and warm (the same directory run
// before). The cold up of round 1 is broken down from the engine's events: where the time
// goes, and the chain of resources that decides when it ends.
// Each figure is the median of E2E_BENCH_ROUNDS rounds (default 3). Nothing here is a
// test: it prints, it never fails on a ratio.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as typescript from "typescript";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { freePort } from "../harness/dav";
import { docker, psql, removeAll, waitHealthy } from "../harness/docker";
import { e2eEnvironment, ROOT } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { Result, StateResource, TestStack } from "../harness/stack";

const ROUNDS = Number(process.env.E2E_BENCH_ROUNDS ?? 3);

/**
 * How the CLI compiles the program. `env` is set for the operation; `runtime` is merged over
 * Pulumi.yaml's runtime options (null removes one); `cache` is the cache the compiler keeps
 * between runs. Each mode is set explicitly, whatever the project itself chose.
 */
interface Mode {
    name: string;
    env: Record<string, string>;
    runtime?: Record<string, unknown>;
    cache: "ts-node" | "tsx";
}

const MODES: Mode[] = [
    // @pulumi/pulumi 3.248's default: its vendored ts-node 7.0.1 with the project's TypeScript,
    // type-checking with tsconfig.json (a tsconfig with noCheck would silence the check).
    { name: "type-checked", env: { PULUMI_NODEJS_TRANSPILE_ONLY: "false" }, runtime: { tsconfig: null }, cache: "ts-node" },
    { name: "transpile-only", env: { PULUMI_NODEJS_TRANSPILE_ONLY: "true" }, cache: "ts-node" },
    // Another loader through nodeargs: no ts-node at all (typescript: false), tsx (esbuild) registered by node.
    { name: "tsx nodeargs", env: {}, runtime: { typescript: false, nodeargs: "--require tsx/cjs", tsconfig: null }, cache: "tsx" },
];

async function timed<T>(work: () => Promise<T> | T): Promise<{ seconds: number; value: T }> {
    const start = process.hrtime.bigint();
    const value = await work();
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value };
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
}

/** The manual procedure the program replaces, as fast as a person with a script could run it; seconds per step. */
async function byHand(source: CalendarsSource, round: number): Promise<Record<string, number>> {
    const names = { network: "bench-messages_internal", postgres: "bench-postgres", caldav: "bench-caldav" };
    const image = `calendars-e2e/bench-by-hand:${round}`;
    const steps: Record<string, number> = {};
    const step = async (name: string, work: () => Promise<unknown> | unknown) => {
        steps[name] = (await timed(work)).seconds;
    };
    try {
        await step("network", () => docker("network", "create", "--subnet", "172.28.0.0/16", names.network));
        await step("PostgreSQL until healthy", async () => {
            docker("run", "--detach", "--name", names.postgres, "--network", names.network, "--network-alias", "postgresql",
                "--env", "POSTGRES_USER=messages", "--env", "POSTGRES_PASSWORD=bench",
                "--health-cmd", "pg_isready -h 127.0.0.1 -U messages -d postgres", "--health-interval", "5s",
                "--health-start-period", "10s", "--health-start-interval", "1s", e2eEnvironment().postgresImage);
            await waitHealthy(names.postgres);
        });
        await step("role and database", () => {
            psql(names.postgres, "messages", "postgres", "CREATE ROLE caldav LOGIN PASSWORD 'bench'");
            psql(names.postgres, "messages", "postgres", "CREATE DATABASE caldav OWNER caldav");
        });
        await step("docker build", () => docker("build", "--quiet", "--tag", image, `${source.dir}/src/caldav`));
        await step("CalDAV until healthy", async () => {
            docker("run", "--detach", "--name", names.caldav, "--network", names.network,
                ...["PGHOST=postgresql", "PGDATABASE=caldav", "PGUSER=caldav", "PGPASSWORD=bench", "CALDAV_DB_SCHEMA=sabre",
                    "CALDAV_BASE_URI=/caldav/", "CALDAV_INBOUND_API_KEY=k", "CALDAV_OUTBOUND_API_KEY=k", "CALDAV_INTERNAL_API_KEY=k",
                    "CALDAV_CALLBACK_BASE_URL=http://172.28.0.30:8000"].flatMap((e) => ["--env", e]),
                "--health-cmd", "php -r 'exit(trim((string) @file_get_contents(\"http://127.0.0.1/caldav/healthz\")) === \"ok\" ? 0 : 1);'",
                "--health-interval", "15s", "--health-start-period", "60s", "--health-start-interval", "2s",
                image, "sh", "-c", "/usr/local/bin/init-database.sh && exec apache2-foreground");
            await waitHealthy(names.caldav, 180_000);
        });
        return steps;
    } finally {
        removeAll({ containers: [names.caldav, names.postgres], networks: [names.network] });
        docker("image", "rm", "--force", image);
    }
}

/**
 * The floor of the engine: a project directory of its own with this project's Pulumi.yaml,
 * package.json and tsconfig.json (so the CLI runs and compiles it the same way) and an
 * index.ts with nothing in it but the same three providers.
 */
function emptyProject(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-bench-empty-"));
    const project = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const tsconfig: unknown = project.runtime?.options?.tsconfig;
    for (const file of ["Pulumi.yaml", "package.json", "tsconfig.json", ...(typeof tsconfig === "string" ? [tsconfig] : [])]) {
        fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
    }
    fs.writeFileSync(path.join(dir, "index.ts"), [
        `import * as docker from "@pulumi/docker";`,
        `import * as postgresql from "@pulumi/postgresql";`,
        `import * as random from "@pulumi/random";`,
        ``,
        `new docker.Provider("docker");`,
        `new random.Provider("random");`,
        `new postgresql.Provider("postgresql", { host: "127.0.0.1", superuser: false });`,
        ``,
    ].join("\n"));
    return dir;
}

/** Runs `work` on `stack` compiled as `mode` says, with the compiler's cache `cache`. */
class Compiles {
    private readonly original: string;
    private readonly warm = new Map<string, string>();

    constructor(private readonly stack: TestStack, private readonly scratch: string) {
        this.original = fs.readFileSync(path.join(stack.dir, "Pulumi.yaml"), "utf8");
    }

    async run<T>(mode: Mode, cache: "cold" | "warm", work: () => Promise<T>): Promise<T> {
        const project = parseYaml(this.original);
        const options = { ...project.runtime?.options, ...mode.runtime };
        project.runtime = { name: "nodejs", options: Object.fromEntries(Object.entries(options).filter(([, value]) => value !== null)) };
        fs.writeFileSync(path.join(this.stack.dir, "Pulumi.yaml"), toYaml(project));
        this.stack.setEnv("PULUMI_NODEJS_TRANSPILE_ONLY", mode.env.PULUMI_NODEJS_TRANSPILE_ONLY);
        // Cold: a new, empty directory. Warm: the one the previous operation in this mode filled.
        const dir = cache === "cold" || !this.warm.has(mode.name) ? fs.mkdtempSync(path.join(this.scratch, "cache-")) : this.warm.get(mode.name)!;
        this.warm.set(mode.name, dir);
        // ts-node's cache directory; tsx keeps its cache in the temporary directory (tsx-<uid>).
        this.stack.setEnv("TS_NODE_CACHE_DIRECTORY", mode.cache === "ts-node" ? dir : undefined);
        this.stack.setEnv("TMPDIR", mode.cache === "tsx" ? dir : undefined);
        try {
            return await work();
        } finally {
            fs.writeFileSync(path.join(this.stack.dir, "Pulumi.yaml"), this.original);
        }
    }
}

/** Seconds, from milliseconds, for the breakdown's columns. */
const sec = (ms: number) => (ms / 1000).toFixed(1).padStart(5);

/**
 * Where a cold up's time goes, from the engine's events (as they reached this process: the
 * event log is polled every 0.2 s): the phases before the first resource, each resource's
 * step (pre-event to outputs event), and the critical path among the custom resources (the
 * ones a provider creates), walked back from the step that ended last through the
 * dependency (in the state: dependencies, property dependencies and the provider; a
 * component stands for the custom resources in it) that ended last before it started. A step that starts well after its dependencies ended waited for
 * the program (an apply, a check), not for the engine.
 */
function breakdown(title: string, result: Result, resources: StateResource[], total: number): string[] {
    type Step = { op: string; type: string; custom: boolean; start: number; end: number };
    const steps = new Map<string, Step>();
    let prelude = 0;
    let summary = 0;
    for (const { ms, event } of result.timeline) {
        prelude = event.preludeEvent ? ms : prelude;
        summary = event.summaryEvent ? ms : summary;
        const pre = event.resourcePreEvent?.metadata;
        if (pre && !steps.has(pre.urn)) {
            steps.set(pre.urn, { op: pre.op, type: pre.type, custom: Boolean(pre.provider) || pre.type.startsWith("pulumi:providers:"), start: ms, end: ms });
        }
        const out = event.resOutputsEvent?.metadata;
        if (out && steps.has(out.urn)) {
            steps.get(out.urn)!.end = ms;
        }
    }
    const name = (urn: string) => `${urn.split("::")[2].split("$").pop()}::${urn.split("::").pop()}`;
    const stack = [...steps.entries()].find(([, step]) => step.type === "pulumi:pulumi:Stack");
    const custom = [...steps.entries()].filter(([, step]) => step.custom).sort(([, a], [, b]) => a.start - b.start);
    const first = Math.min(...custom.map(([, step]) => step.start));
    const lines = [
        `${title}: ${total.toFixed(1)} s; from the engine's events, in s since the operation was started:`,
        `  ${sec(prelude)}  prelude: the CLI has read the stack and starts the update`,
        ...(stack ? [`  ${sec(stack[1].start)}  the stack registers: node runs @pulumi/pulumi/cmd/run, TypeScript registered`] : []),
        `  ${sec(first)}  the first custom resource registers: index.ts and components compiled and run, the source checked out`,
        ...custom.map(([urn, step]) => `    ${sec(step.start)} ${sec(step.end)} ${sec(step.end - step.start)}  ${step.op.padEnd(7)} ${name(urn)}`),
        `  ${sec(summary)}  summary: the engine is done; the operation returned at ${total.toFixed(1)} s`,
    ];
    // Custom resources under each URN (itself if custom, else the custom resources it parents).
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const customUnder = (urn: string): string[] => steps.get(urn)?.custom
        ? [urn]
        : resources.filter((r) => r.parent === urn).flatMap((r) => customUnder(r.urn));
    let current = custom.map(([urn]) => urn).sort((a, b) => steps.get(b)!.end - steps.get(a)!.end)[0];
    const chain: string[] = [];
    while (current) {
        const step = steps.get(current)!;
        const resource = byUrn.get(current);
        const provider = resource?.provider ? [resource.provider.slice(0, resource.provider.lastIndexOf("::"))] : [];
        const declared = [...(resource?.dependencies ?? []), ...Object.values(resource?.propertyDependencies ?? {}).flat(), ...provider];
        const previous = [...new Set(declared.flatMap(customUnder))]
            .filter((urn) => steps.has(urn) && steps.get(urn)!.end <= step.start + 250)
            .sort((a, b) => steps.get(b)!.end - steps.get(a)!.end)[0];
        const waited = step.start - (previous ? steps.get(previous)!.end : first);
        chain.unshift(`    ${sec(step.start)} ${sec(step.end)} ${sec(step.end - step.start)}  ${name(current)}` +
            (waited > 300 ? `  (started ${sec(waited).trim()} s after ${previous ? "its last dependency ended" : "the first registration"})` : ""));
        current = previous;
    }
    lines.push("  critical path (start, end, seconds; each waits for the one above):", ...chain);
    return lines;
}

/** Samples and their median, for the table. */
const show = (values: number[]) => `${median(values).toFixed(2).padStart(6)} s`;
const samples = (values: number[]) => `[${values.map((v) => v.toFixed(2)).join(" ")}]`;
const ratio = (value: number[], floor: number[], goal: number) => {
    const r = median(value) / median(floor);
    return `${r.toFixed(2)}x (goal <= ${goal}x: ${r <= goal ? "met" : "NOT met"})`;
};

/** The compile the project is set up for (Pulumi.yaml, the tsconfig it names), as the bench names it. */
function projectMode(): string {
    const project = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const options = project.runtime?.options ?? {};
    if (options.typescript === false) {
        return `typescript: false, nodeargs ${JSON.stringify(options.nodeargs ?? "")}`;
    }
    const tsconfig = typeof options.tsconfig === "string" ? options.tsconfig : "tsconfig.json";
    // What @pulumi/pulumi's run script reads: this file's own compilerOptions.noCheck.
    const config = typescript.parseConfigFileTextToJson(tsconfig, fs.readFileSync(path.join(ROOT, tsconfig), "utf8")).config ?? {};
    return config.compilerOptions?.noCheck === true ? `transpile-only (${tsconfig}: noCheck)` : `type-checked (${tsconfig})`;
}

async function main(): Promise<void> {
    const hand: Record<string, number>[] = [];
    const coldUp = new Map<string, number[]>(MODES.map((mode) => [mode.name, []]));
    const destroy: number[] = [];
    const rows = new Map<string, { program: number[]; empty: number[] }>();
    const row = (key: string) => rows.get(key) ?? rows.set(key, { program: [], empty: [] }).get(key)!;
    const report: string[] = [];
    const emptyDir = emptyProject();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-bench-caches-"));
    const empty = await TestStack.create("empty", {}, {}, emptyDir);
    const emptyCompiles = new Compiles(empty, scratch);
    try {
        // The empty program's providers exist from then on: its ups are no-ops, as the program's are.
        await empty.up();
        for (let round = 1; round <= ROUNDS; round++) {
            process.stderr.write(`round ${round}/${ROUNDS}\n`);
            const source = CalendarsSource.create();
            try {
                // Each side builds a commit of its own (a file the image does not copy: the build's cache serves both alike).
                source.commit(`by hand ${round}`, { "src/caldav/NOTICE": `by hand ${round}\n` });
                hand.push(await byHand(source, round));
                for (const [index, mode] of MODES.entries()) {
                    source.commit(`program ${round} ${mode.name}`, { "src/caldav/NOTICE": `program ${round} ${mode.name}\n` });
                    // A new stack each time: its own directory, an empty compile cache, an empty checkout cache.
                    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-bench-sources-"));
                    const stack = await TestStack.create("dev", {
                        source: { repo: source.url, cacheDir },
                        postgres: { bundledImage: e2eEnvironment().postgresImage, adminPort: await freePort() },
                        caldav: { publish: `127.0.0.1:${await freePort()}` },
                    });
                    const compiles = new Compiles(stack, scratch);
                    let volume: string | undefined;
                    try {
                        const { seconds, value } = await timed(() => compiles.run(mode, "cold", () => stack.up()));
                        coldUp.get(mode.name)!.push(seconds);
                        if (round === 1) {
                            report.push(...breakdown(`cold up, ${mode.name}, round 1`, value, await stack.resources(), seconds), "");
                        }
                        volume = `${(await stack.outputs()).containerName.value}-pgdata`;
                        if (index === 0) {
                            // Preview and no-op up in every mode, cold and warm, on this stack and on the empty one.
                            for (const each of MODES) {
                                for (const [operation, work] of [["preview", (s: TestStack) => s.preview()], ["no-op up", (s: TestStack) => s.up()]] as const) {
                                    for (const cache of ["cold", "warm"] as const) {
                                        const r = row(`${operation}|${each.name}|${cache}`);
                                        r.program.push((await timed(() => compiles.run(each, cache, () => work(stack)))).seconds);
                                        r.empty.push((await timed(() => emptyCompiles.run(each, cache, () => work(empty)))).seconds);
                                    }
                                }
                            }
                            destroy.push((await timed(() => stack.destroy())).seconds);
                        }
                    } finally {
                        await stack.dispose();
                        if (volume) {
                            removeAll({ volumes: [volume] });
                        }
                        fs.rmSync(cacheDir, { recursive: true, force: true });
                    }
                }
            } finally {
                source.remove();
            }
        }
    } finally {
        await empty.dispose();
        fs.rmSync(emptyDir, { recursive: true, force: true });
        fs.rmSync(scratch, { recursive: true, force: true });
    }

    const handTotal = hand.map((steps) => Object.values(steps).reduce((a, b) => a + b, 0));
    const lines = [
        `median of ${ROUNDS} round(s), same engine, one run (${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the end);`,
        `the project compiles as: ${projectMode()}`,
        "",
        `by hand                           ${show(handTotal)}  ${samples(handTotal)}`,
        ...Object.keys(hand[0]).map((step) => `  ${step.padEnd(31)} ${show(hand.map((h) => h[step]))}`),
        ...MODES.map((mode) => `cold up, ${mode.name.padEnd(23)} ${show(coldUp.get(mode.name)!)}  ${samples(coldUp.get(mode.name)!)}  ` +
            `ratio to by hand ${ratio(coldUp.get(mode.name)!, handTotal, 1.3)}`),
        `destroy                           ${show(destroy)}  ${samples(destroy)}`,
        "",
        "operation  compile          cache   program   empty program   ratio",
    ];
    for (const [key, { program, empty: floor }] of rows) {
        const [operation, mode, cache] = key.split("|");
        lines.push(`${operation.padEnd(10)} ${mode.padEnd(16)} ${cache.padEnd(6)} ${show(program)}   ${show(floor)}      ${ratio(program, floor, 1.5)}  ` +
            `${samples(program)} ${samples(floor)}`);
    }
    process.stdout.write([...report, ...lines, ""].join("\n"));
}

main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
});
