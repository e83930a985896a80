// `npm run bench:unit [-- <rounds>]`: the unit suite's wall time as `npm test` runs it
// (test/run.ts: one process per core, each loading a share of the files) beside
// `node --test` (a process per file), in alternating rounds of the same run, so that
// both see the same machine. Prints each round and the ratio of the medians.
// Measures only: it asserts nothing about time.
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";

const ROOT = path.join(__dirname, "..");
const LOADERS = ["--require", "tsx/cjs", "--require", "./test/preload.ts"];
const VARIANTS: Record<string, string[]> = {
    "npm test (shared processes)": [...LOADERS, "test/run.ts"],
    "node --test (a process per file)": [...LOADERS, "--test", `--test-concurrency=${os.availableParallelism()}`, "test/*.test.ts"],
};

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const rounds = Number(process.argv[2] ?? 3);
if (!Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write("usage: npm run bench:unit [-- <rounds, a positive integer>]\n");
    process.exit(2);
}
const times = new Map<string, number[]>(Object.keys(VARIANTS).map((name) => [name, []]));
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;
for (let round = 1; round <= rounds; round++) {
    for (const [name, args] of Object.entries(VARIANTS)) {
        const started = process.hrtime.bigint();
        // Through a shell for the glob, as package.json's scripts would.
        const result = spawnSync("sh", ["-c", `exec "${process.execPath}" ${args.join(" ")}`], { cwd: ROOT, env, encoding: "utf8" });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const summary = /^# pass (\d+)$/m.exec(result.stdout)?.[1];
        if (result.status !== 0) {
            process.stderr.write(`${name} failed (exit ${result.status}):\n${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}\n`);
            process.exit(1);
        }
        times.get(name)!.push(seconds);
        process.stdout.write(`round ${round}/${rounds}  ${name.padEnd(34)} ${seconds.toFixed(1).padStart(5)} s  (${summary} tests passed)\n`);
    }
}
const [shared, perFile] = [...times.values()].map(median);
process.stdout.write(`median: shared ${shared.toFixed(1)} s, per file ${perFile.toFixed(1)} s: npm test takes ${(shared / perFile).toFixed(2)}x the time of node --test ` +
    `on ${os.availableParallelism()} cores\n`);
