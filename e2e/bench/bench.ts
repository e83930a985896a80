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
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { freePort } from "../harness/dav";
import { docker, psql, removeAll, waitHealthy } from "../harness/docker";
import { e2eEnvironment, ROOT } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { Result, StateResource, TestStack } from "../harness/stack";

const ROUNDS = Number(process.env.E2E_BENCH_ROUNDS ?? 3);

/**
 * How the CLI compiles the program. `env` is set for the operation; `runtime` replaces
 * Pulumi.yaml's runtime options (else the project's own are used); `cache` is the cache
 * the compiler keeps between runs.
 */
interface Mode {
    name: string;
    env: Record<string, string>;
    runtime?: Record<string, unknown>;
    cache: "ts-node" | "tsx";
}

const MODES: Mode[] = [
    // @pulumi/pulumi 3.248's default: its vendored ts-node 7.0.1 with the project's TypeScript, type-checking.
    { name: "type-checked", env: { PULUMI_NODEJS_TRANSPILE_ONLY: "false" }, cache: "ts-node" },
    { name: "transpile-only", env: { PULUMI_NODEJS_TRANSPILE_ONLY: "true" }, cache: "ts-node" },
    // Another loader through nodeargs: no ts-node at all (typescript: false), tsx (esbuild) registered by node.
    { name: "tsx nodeargs", env: {}, runtime: { typescript: false, nodeargs: "--require tsx/cjs" }, cache: "tsx" },
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

/** The manual procedure the program replaces, as fast as a person with a script could run it. */
async function byHand(source: CalendarsSource, round: number): Promise<number> {
    const names = { network: "bench-messages_internal", postgres: "bench-postgres", caldav: "bench-caldav" };
    const image = `calendars-e2e/bench-by-hand:${round}`;
    try {
        return (await timed(async () => {
            docker("network", "create", "--subnet", "172.28.0.0/16", names.network);
            docker("run", "--detach", "--name", names.postgres, "--network", names.network, "--network-alias", "postgresql",
                "--env", "POSTGRES_USER=messages", "--env", "POSTGRES_PASSWORD=bench",
                "--health-cmd", "pg_isready -h 127.0.0.1 -U messages -d postgres", "--health-interval", "5s",
                "--health-start-period", "10s", "--health-start-interval", "1s", e2eEnvironment().postgresImage);
            await waitHealthy(names.postgres);
            psql(names.postgres, "messages", "postgres", "CREATE ROLE caldav LOGIN PASSWORD 'bench'");
            psql(names.postgres, "messages", "postgres", "CREATE DATABASE caldav OWNER caldav");
            docker("build", "--quiet", "--tag", image, `${source.dir}/src/caldav`);
            docker("run", "--detach", "--name", names.caldav, "--network", names.network,
                ...["PGHOST=postgresql", "PGDATABASE=caldav", "PGUSER=caldav", "PGPASSWORD=bench", "CALDAV_DB_SCHEMA=sabre",
                    "CALDAV_BASE_URI=/caldav/", "CALDAV_INBOUND_API_KEY=k", "CALDAV_OUTBOUND_API_KEY=k", "CALDAV_INTERNAL_API_KEY=k",
                    "CALDAV_CALLBACK_BASE_URL=http://172.28.0.30:8000"].flatMap((e) => ["--env", e]),
                "--health-cmd", "php -r 'exit(trim((string) @file_get_contents(\"http://127.0.0.1/caldav/healthz\")) === \"ok\" ? 0 : 1);'",
                "--health-interval", "15s", "--health-start-period", "60s", "--health-start-interval", "2s",
                image, "sh", "-c", "/usr/local/bin/init-database.sh && exec apache2-foreground");
            await waitHealthy(names.caldav, 180_000);
        })).seconds;
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

    async run<T>(mode: Mode, cache: "cold" | "warm", work: () => Promise<T>): Promise<number> {
        const project = parseYaml(this.original);
        if (mode.runtime) {
            project.runtime = { name: "nodejs", options: { ...project.runtime?.options, ...mode.runtime } };
            delete project.runtime.options.tsconfig;
        }
        fs.writeFileSync(path.join(this.stack.dir, "Pulumi.yaml"), toYaml(project));
        this.stack.setEnv("PULUMI_NODEJS_TRANSPILE_ONLY", mode.env.PULUMI_NODEJS_TRANSPILE_ONLY);
        // Cold: a new, empty directory. Warm: the one the previous operation in this mode filled.
        const dir = cache === "cold" || !this.warm.has(mode.name) ? fs.mkdtempSync(path.join(this.scratch, "cache-")) : this.warm.get(mode.name)!;
        this.warm.set(mode.name, dir);
        // ts-node's cache directory; tsx keeps its cache in the temporary directory (tsx-<uid>).
        this.stack.setEnv("TS_NODE_CACHE_DIRECTORY", mode.cache === "ts-node" ? dir : undefined);
        this.stack.setEnv("TMPDIR", mode.cache === "tsx" ? dir : undefined);
        try {
            return (await timed(work)).seconds;
        } finally {
            fs.writeFileSync(path.join(this.stack.dir, "Pulumi.yaml"), this.original);
        }
    }
}

/** Seconds from the start of the operation to an event, from the harness's timeline. */
const at = (ms: number) => (ms / 1000).toFixed(1).padStart(5);

/**
 * Where a cold up's time goes, from the engine's events: the phases before the first
 * resource, each resource's step (pre-event to outputs), and the critical path, walked
 * back from the step that ended last through the dependency (in the state) that ended
 * last before it started; a step that started well after its dependencies ended waited
 * for the program (an apply, a check) rather than for the engine.
 */
function breakdown(result: Result, resources: StateResource[], total: number): string[] {
    const steps = new Map<string, { op: string; type: string; start: number; end?: number }>();
    let prelude: number | undefined;
    let summary: number | undefined;
    for (const { ms, event } of result.timeline) {
        if (event.preludeEvent) {
            prelude = ms;
        }
        if (event.summaryEvent) {
            summary = ms;
        }
        const pre = event.resourcePreEvent?.metadata;
        if (pre && !steps.has(pre.urn)) {
            steps.set(pre.urn, { op: pre.op, type: pre.type, start: ms });
        }
        const out = event.resOutputsEvent?.metadata;
        if (out && steps.has(out.urn)) {
            steps.get(out.urn)!.end = ms;
        }
    }
    const name = (urn: string) => urn.split("::").pop() as string;
    const stackUrn = [...steps.keys()].find((urn) => steps.get(urn)!.type === "pulumi:pulumi:Stack");
    const children = [...steps.entries()].filter(([urn]) => urn !== stackUrn);
    const firstChild = Math.min(...children.map(([, step]) => step.start));
    const lines = [
        `cold up of round 1, ${total.toFixed(1)} s, from the engine's events (times in s since the operation was started, ±0.2):`,
        `  ${at(prelude ?? 0)}  the CLI has loaded the stack and plugins and starts the update (prelude event)`,
        ...(stackUrn ? [`  ${at(steps.get(stackUrn)!.start)}  node runs @pulumi/pulumi/cmd/run, which registers the stack (ts-node registered)`] : []),
        `  ${at(firstChild)}  the first resource registers (index.ts and components compiled and evaluated, the source checked out)`,
        "  resource steps (start  end  seconds  op  type  name):",
    ];
    const byStart = children.sort(([, a], [, b]) => a.start - b.start);
    for (const [urn, step] of byStart) {
        const end = step.end ?? step.start;
        lines.push(`    ${at(step.start)} ${at(end)} ${((end - step.start) / 1000).toFixed(1).padStart(5)}  ${step.op.padEnd(7)} ${step.type.padEnd(40)} ${name(urn)}`);
    }
    lines.push(`  ${at(summary ?? 0)}  the engine's summary event; the operation returned at ${total.toFixed(1)} s`);

    // The critical path, walked back from the step that ended last.
    const state = new Map(resources.map((r) => [r.urn, r]));
    const ended = (urn: string) => steps.get(urn)?.end ?? steps.get(urn)?.start ?? 0;
    let current = [...steps.keys()].filter((urn) => urn !== stackUrn).sort((a, b) => ended(b) - ended(a))[0];
    const chain: string[] = [];
    while (current) {
        const step = steps.get(current)!;
        const deps = [...(state.get(current)?.dependencies ?? []), ...(state.get(current)?.parent ? [state.get(current)!.parent!] : [])]
            .filter((urn) => steps.has(urn) && urn !== stackUrn && ended(urn) <= step.start + 250);
        const previous = deps.sort((a, b) => ended(b) - ended(a))[0];
        const waited = (step.start - (previous ? ended(previous) : firstChild)) / 1000;
        chain.unshift(`    ${name(current)} (${step.op}, ${((ended(current) - step.start) / 1000).toFixed(1)} s` +
            (waited > 0.3 ? `, started ${waited.toFixed(1)} s after ${previous ? `${name(previous)} ended` : "the first registration"}` : "") + ")");
        current = previous;
    }
    lines.push("  critical path (each step waits for the one above):", ...chain);
    return lines;
}

type Row = { program: number[]; empty: number[] };

async function main(): Promise<void> {
    const coldUp: number[] = [];
    const hand: number[] = [];
    const destroy: number[] = [];
    const rows = new Map<string, Row>();
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
            const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-bench-sources-"));
            // Each side builds a commit of its own, so both pay the same (uncached) build steps.
            source.commit(`by hand ${round}`, { "src/caldav/NOTICE": `by hand ${round}\n` });
            hand.push(await byHand(source, round));
            source.commit(`program ${round}`, { "src/caldav/NOTICE": `program ${round}\n` });

            const stack = await TestStack.create("dev", {
                source: { repo: source.url, cacheDir },
                postgres: { bundledImage: e2eEnvironment().postgresImage, adminPort: await freePort() },
                caldav: { publish: `127.0.0.1:${await freePort()}` },
            });
            const compiles = new Compiles(stack, scratch);
            let volume: string | undefined;
            try {
                // As the project is set up (Pulumi.yaml, tsconfig.json), with ts-node's cache empty.
                const { seconds, value } = await timed(() => stack.up());
                coldUp.push(seconds);
                if (round === 1) {
                    report.push(...breakdown(value, await stack.resources(), seconds), "");
                }
                volume = `${(await stack.outputs()).containerName.value}-pgdata`;
                for (const mode of MODES) {
                    for (const [operation, work] of [["preview", (s: TestStack) => s.preview()], ["no-op up", (s: TestStack) => s.up()]] as const) {
                        for (const cache of ["cold", "warm"] as const) {
                            const r = row(`${operation}|${mode.name}|${cache}`);
                            r.program.push(await compiles.run(mode, cache, () => work(stack)));
                            r.empty.push(await emptyCompiles.run(mode, cache, () => work(empty)));
                        }
                    }
                }
                destroy.push((await timed(() => stack.destroy())).seconds);
            } finally {
                await stack.dispose();
                if (volume) {
                    removeAll({ volumes: [volume] });
                }
                source.remove();
                fs.rmSync(cacheDir, { recursive: true, force: true });
            }
        }
    } finally {
        await empty.dispose();
        fs.rmSync(emptyDir, { recursive: true, force: true });
        fs.rmSync(scratch, { recursive: true, force: true });
    }

    const s = (value: number) => `${value.toFixed(2).padStart(6)} s`;
    const verdict = (ratio: number, goal: number) => `${ratio.toFixed(2)}x (goal <= ${goal}x: ${ratio <= goal ? "met" : "NOT met"})`;
    const lines = [
        `median of ${ROUNDS} round(s), same engine, one run (${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} at the end):`,
        `cold up (project's compile, cache empty) ${s(median(coldUp))}   by hand ${s(median(hand))}   ${verdict(median(coldUp) / median(hand), 1.3)}`,
        `destroy ${s(median(destroy))}`,
        "",
        "operation  compile          cache   program     empty program   ratio",
    ];
    for (const [key, { program, empty: floor }] of rows) {
        const [operation, mode, cache] = key.split("|");
        lines.push(`${operation.padEnd(10)} ${mode.padEnd(16)} ${cache.padEnd(6)} ${s(median(program))}   ${s(median(floor))}        ${verdict(median(program) / median(floor), 1.5)}`);
    }
    process.stdout.write([...report, ...lines, ""].join("\n"));
}

main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
});
