// `npm test`: the unit suite, with node's test runner, in one process per core.
//
// `node --test` runs each test file in a process of its own, and each process
// loads Pulumi, the providers' SDKs and the program before its first test: about
// a second per file, most of the suite's time. Here each process loads a share of
// the files in turn (test/shard.ts), so that all of that loads once per process.
// Files do not share state through that: each evaluation of the program has a
// runtime store of its own (test/harness.ts), and every test file also passes
// alone (`npm test -- test/<file>`), as Stryker runs them (stryker.config.mjs).
//
// Files are shared out by how long each took in the last run on this machine
// (longest first, each to the least loaded process), so that the processes end
// together; without that record (a fresh clone), in turn by name. Each file is in
// exactly one share: the shares are computed here, once, and handed to each
// process in its entry file.
//
//   npm test                                 every test/*.test.ts
//   npm test -- test/a.test.ts test/b.test.ts   only those files
//   npm test -- --test-name-pattern <regexp>    only the tests whose name matches
//
// Reports as `node --test` does: spec on a terminal, TAP otherwise. Exit status 1
// when a test fails, or when a file cannot load.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { suiteName } from "./shard";

const ROOT = path.join(__dirname, "..");
const SHARD_MODULE = path.join(__dirname, "shard.ts");
/** Durations of the last run, by file (machine-local, like the other caches under node_modules/.cache). */
const DURATIONS = path.join(ROOT, "node_modules", ".cache", "calendars-caldav-test", "durations.json");

interface Options {
    files: string[];
    namePatterns: string[];
}

function usage(problem: string): never {
    process.stderr.write(`npm test: ${problem}\nusage: npm test [-- [--test-name-pattern <regexp>]... [test/<file>.test.ts]...]\n`);
    process.exit(2);
}

function parseArguments(args: string[]): Options {
    const files: string[] = [];
    const namePatterns: string[] = [];
    for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        if (arg === "--test-name-pattern") {
            if (args[i + 1] === undefined) {
                usage("--test-name-pattern needs a regular expression");
            }
            namePatterns.push(args[++i]);
        } else if (arg.startsWith("--test-name-pattern=")) {
            namePatterns.push(arg.slice("--test-name-pattern=".length));
        } else if (arg.startsWith("-")) {
            usage(`unknown option ${arg}`);
        } else {
            const file = path.resolve(arg);
            if (!fs.existsSync(file)) {
                usage(`no test file ${arg}`);
            }
            files.push(file);
        }
    }
    if (files.length === 0) {
        const dir = path.join(ROOT, "test");
        files.push(...fs.readdirSync(dir).filter((name) => name.endsWith(".test.ts")).sort().map((name) => path.join(dir, name)));
    }
    return { files, namePatterns };
}

/** A file's key in the record of durations: the name of the suite test/shard.ts makes of it. */
const key = suiteName;

function lastDurations(): Record<string, number> {
    try {
        return JSON.parse(fs.readFileSync(DURATIONS, "utf8"));
    } catch {
        return {};
    }
}

/**
 * Splits `files` into `count` shares of about the same total duration: longest
 * first, each to the share with the least so far (files never timed count as the
 * mean of those that were, or all alike). Each share keeps name order.
 */
export function shareOut(files: string[], count: number, durations: Record<string, number>): string[][] {
    const known = files.map((file) => durations[key(file)]).filter((ms): ms is number => typeof ms === "number" && ms >= 0);
    const fallback = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
    const weight = (file: string) => durations[key(file)] ?? fallback;
    const shares = Array.from({ length: Math.min(count, files.length) }, () => ({ files: [] as string[], total: 0 }));
    const byWeight = [...files].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b));
    for (const file of byWeight) {
        const lightest = shares.reduce((best, share) => (share.total < best.total ? share : best));
        lightest.files.push(file);
        lightest.total += weight(file);
    }
    return shares.map((share) => share.files.sort());
}

async function main(): Promise<void> {
    const { files, namePatterns } = parseArguments(process.argv.slice(2));
    const shares = shareOut(files, os.availableParallelism(), lastDurations());
    const entries = fs.mkdtempSync(path.join(os.tmpdir(), "caldav-unit-"));
    const durations: Record<string, number> = {};
    let failed = false;
    try {
        // One entry file per process: node's runner starts a process per file it is given.
        const entryFiles = shares.map((share, index) => {
            const entry = path.join(entries, `share-${index + 1}-of-${shares.length}.js`);
            fs.writeFileSync(entry, `require(${JSON.stringify(SHARD_MODULE)}).load(${JSON.stringify(share)});\n`);
            return entry;
        });
        const stream = run({
            files: entryFiles,
            concurrency: entryFiles.length,
            ...(namePatterns.length > 0 && { testNamePatterns: namePatterns }),
        });
        stream.on("test:fail", (event) => {
            failed = true;
            const share = entryFiles.indexOf(event.name);
            if (share >= 0) {
                // The process itself failed (it exited in a test, or crashed): say which files it held.
                process.stderr.write(`npm test: the process running ${shares[share].map(key).join(", ")} ended before its tests did\n`);
            }
        });
        stream.on("test:pass", (event) => {
            // The suite test/shard.ts makes of each file is at the top of its process.
            if (event.nesting === 0 && files.some((file) => key(file) === event.name) && !event.name.startsWith("..")) {
                durations[event.name] = event.details.duration_ms;
            }
        });
        const reporter = process.stdout.isTTY ? new spec() : tap;
        await new Promise<void>((resolve, reject) => {
            stream.compose(reporter as any).on("end", resolve).on("error", reject).pipe(process.stdout, { end: false });
        });
    } finally {
        fs.rmSync(entries, { recursive: true, force: true });
    }
    if (failed) {
        process.exitCode = 1;
    }
    if (namePatterns.length > 0) {
        // Durations of some of each file's tests would share the files out wrongly next time.
        return;
    }
    try {
        fs.mkdirSync(path.dirname(DURATIONS), { recursive: true });
        // Written aside and renamed: a run beside this one reads the old record or the new one.
        const written = `${DURATIONS}.${process.pid}`;
        fs.writeFileSync(written, `${JSON.stringify({ ...lastDurations(), ...durations }, null, 2)}\n`);
        fs.renameSync(written, DURATIONS);
    } catch {
        // Without a record, the next run shares the files out by name.
    }
}

if (require.main === module) {
    main().catch((error) => {
        process.stderr.write(`npm test: ${error instanceof Error ? error.stack : String(error)}\n`);
        process.exitCode = 1;
    });
}
