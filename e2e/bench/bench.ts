// Benchmark (npm run bench): the program's operations on the dev stack next to their
// floors on the same engine, measured side by side in one run, printed as ratios.
//   cold up      vs  the manual procedure by hand: network, PostgreSQL until healthy,
//                    role and database, docker build, docker run until healthy
//   no-op up     vs  up of an empty program with the same providers (same CLI, backend, engine)
//   preview      vs  preview of that empty program
//   destroy      (reported, no floor)
// Each figure is the median of E2E_BENCH_ROUNDS rounds (default 3). Nothing here is a
// test: it prints, it never fails on a ratio.
import * as dockerProvider from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as random from "@pulumi/random";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../harness/dav";
import { docker, psql, removeAll, waitHealthy } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const ROUNDS = Number(process.env.E2E_BENCH_ROUNDS ?? 3);

async function timed(work: () => Promise<unknown> | unknown): Promise<number> {
    const start = process.hrtime.bigint();
    await work();
    return Number(process.hrtime.bigint() - start) / 1e9;
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
        return await timed(async () => {
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
        });
    } finally {
        removeAll({ containers: [names.caldav, names.postgres], networks: [names.network] });
        docker("image", "rm", "--force", image);
    }
}

async function main(): Promise<void> {
    const rows: Record<string, number[]> = {
        "cold up": [], "by hand": [], "no-op up": [], "empty up": [], preview: [], "empty preview": [], destroy: [],
    };
    for (let round = 1; round <= ROUNDS; round++) {
        process.stderr.write(`round ${round}/${ROUNDS}\n`);
        const source = CalendarsSource.create();
        const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-bench-sources-"));
        // Each side builds a commit of its own, so both pay the same (uncached) build steps.
        source.commit(`by hand ${round}`, { "src/caldav/NOTICE": `by hand ${round}\n` });
        rows["by hand"].push(await byHand(source, round));
        source.commit(`program ${round}`, { "src/caldav/NOTICE": `program ${round}\n` });

        const stack = await TestStack.create("dev", {
            source: { repo: source.url, cacheDir },
            postgres: { bundledImage: e2eEnvironment().postgresImage, adminPort: await freePort() },
            caldav: { publish: `127.0.0.1:${await freePort()}` },
        });
        // The floor of the engine: a program with nothing in it but the same three providers.
        const empty = await TestStack.create("empty", {}, {}, async () => {
            new dockerProvider.Provider("docker");
            new random.Provider("random");
            new postgresql.Provider("postgresql", { host: "127.0.0.1", superuser: false });
            return {};
        });
        let volume: string | undefined;
        try {
            rows["cold up"].push(await timed(() => stack.up()));
            rows.preview.push(await timed(() => stack.preview()));
            rows["no-op up"].push(await timed(() => stack.up()));
            volume = `${(await stack.outputs()).containerName.value}-pgdata`;
            rows["empty up"].push(await timed(() => empty.up()));
            rows["empty preview"].push(await timed(() => empty.preview()));
            rows.destroy.push(await timed(() => stack.destroy()));
        } finally {
            await stack.dispose();
            await empty.dispose();
            if (volume) {
                removeAll({ volumes: [volume] });
            }
            source.remove();
            fs.rmSync(cacheDir, { recursive: true, force: true });
        }
    }
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
    const line = (name: string, floor?: string, goal?: number) => {
        const ratio = floor ? m[name] / m[floor] : undefined;
        const verdict = ratio === undefined || goal === undefined ? "" : ratio <= goal ? `  (goal <= ${goal}x: met)` : `  (goal <= ${goal}x: NOT met)`;
        return `${name.padEnd(10)} ${m[name].toFixed(2).padStart(7)} s` +
            (floor ? `   ${floor.padEnd(14)} ${m[floor].toFixed(2).padStart(7)} s   ratio ${ratio!.toFixed(2)}x${verdict}` : "");
    };
    process.stdout.write([
        `median of ${ROUNDS} round(s), same engine, one run:`,
        line("cold up", "by hand", 1.3),
        line("no-op up", "empty up", 1.5),
        line("preview", "empty preview", 1.5),
        line("destroy"),
        "",
    ].join("\n"));
}

main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
});
