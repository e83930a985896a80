// `npm run mutation:references`: the mutation operator Stryker does not have. Stryker
// mutates literals and operators, never an identifier into a constant, so it cannot see a
// refactor that drops a setting: `CALDAV_BASE_URI: args.baseUri` becoming `"/caldav/"`.
// This operator replaces each reference to a config value or a component argument that
// carries one (REFERENCES below) with that setting's default, one at a time, and runs the
// unit suite against each such mutant in a sandbox copy of the repository. A mutant the
// suite does not fail is a setting a user could set in vain, unnoticed: a survivor is
// either killed by a new test or explained in EQUIVALENT.
//
//   npm run mutation:references                    every reference
//   npm run mutation:references -- server.ts       only the files whose path contains server.ts
//
// Prints its progress, then the score and every survivor; exits 1 when a survivor is not
// explained. It never changes the repository: mutants are written in the sandbox only.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as ts from "typescript";
import { CaldavConfig, parseConfig } from "../components/config";

const ROOT = path.join(__dirname, "..");
/** The stack the unit suite evaluates by default (test/harness.ts): derived names carry it. */
const STACK = "test";

/** Every setting at its default, as the program sees it (an external PostgreSQL, an attached network). */
const DEFAULTS: CaldavConfig = parseConfig({
    stack: STACK,
    keys: () => ["postgresAdminPassword"],
    get: () => undefined,
    secret: (key) => key === "postgresAdminPassword" ? pulumi.output("unused") : undefined,
});

function valueAt(config: string): unknown {
    return config.split(".").reduce<unknown>((object, field) => (object as Record<string, unknown>)[field], DEFAULTS);
}
const named = (suffix: string) => () => `${DEFAULTS.caldav.containerName}${suffix}`;

/**
 * Per file, the references that carry a setting (the whole property chain, e.g.
 * `args.database.schema`), and where that setting's default is: a path in the parsed
 * config, or a function for what the program derives from defaults (names) or what
 * only one mode has (the bundled PostgreSQL's admin address).
 */
const REFERENCES: Record<string, Record<string, string | (() => unknown)>> = {
    "index.ts": {
        "config.backup.enabled": "backup.enabled",
        "config.caldav.containerName": "caldav.containerName",
        "config.callbackBaseUrl": "callbackBaseUrl",
        "config.network.alias": "network.alias",
        "config.network.backendIp": "network.backendIp",
        "config.network.caldavIp": "network.caldavIp",
        "config.network.create": "network.create",
        "config.network.name": "network.name",
        "config.protect": "protect",
        "pg.admin.host": "postgres.admin.host",
        "pg.admin.port": "postgres.admin.port",
        "pg.admin.user": "postgres.admin.user",
        "pg.bundledImage": "postgres.bundledImage",
        "pg.database": "postgres.database",
        "pg.host": "postgres.host",
        "pg.port": "postgres.port",
        "pg.schema": "postgres.schema",
        "pg.user": "postgres.user",
    },
    "components/apiKeys.ts": {
        "args.mode": "apiKeys.mode",
        "args.rotation": "apiKeys.rotation",
    },
    "components/backup.ts": {
        "args.containerName": named("-dump"),
        "args.image": "backup.image",
        "args.keep": "backup.keep",
        "args.location.name": "backup.location.name",
        "db.host": "postgres.host",
        "db.port": "postgres.port",
        "db.name": "postgres.database",
        "db.user": "postgres.user",
        "db.schema": "postgres.schema",
    },
    "components/bundledPostgres.ts": {
        "args.adminHost": () => "localhost",
        "args.adminPort": () => 5432,
        "args.adminUser": "postgres.admin.user",
        "args.alias": "postgres.host",
        "args.containerName": named("-postgres"),
        "args.image": "postgres.bundledImage",
        "args.network": "network.name",
        "args.port": "postgres.port",
        "args.volumeName": named("-pgdata"),
    },
    "components/database.ts": {
        "args.admin.port": "postgres.admin.port",
        "args.admin.sslmode": "postgres.admin.sslmode",
        "args.admin.user": "postgres.admin.user",
        "args.database": "postgres.database",
        "args.protect": "protect",
        "args.user": "postgres.user",
    },
    "components/image.ts": {
        "source.context": "image.context",
        "source.imageName": "image.imageName",
        "source.repo": "image.repo",
    },
    "components/network.ts": {
        "args.allocationRange": "network.allocationRange",
        "args.create": "network.create",
        "args.gateway": "network.gateway",
        "args.name": "network.name",
        "args.subnet": "network.subnet",
    },
    "components/server.ts": {
        "args.baseUri": "caldav.baseUri",
        "args.callbackBaseUrl": "callbackBaseUrl",
        "args.containerName": "caldav.containerName",
        "args.database.host": "postgres.host",
        "args.database.port": "postgres.port",
        "args.database.schema": "postgres.schema",
        "args.healthTimeoutSeconds": "caldav.healthTimeoutSeconds",
        "args.memoryMb": "caldav.memoryMb",
        "args.network.alias": "network.alias",
        "args.network.ip": "network.caldavIp",
        "args.network.name": "network.name",
        "args.publish": "caldav.publish",
    },
};

/** Mutants no test can kill, by `<file>:<chain>:<default>`, and why. */
const EQUIVALENT: Record<string, string> = {
    'components/server.ts:args.network.name:"messages_internal"':
        "the gate of the server's outputs: network.name fails only when the network fails to register, and then the " +
        "container's own registration rejects, unhandled, which ends the program (as the language host does): a gate " +
        "that does not wait for it changes nothing a run can see",
};

interface Mutant {
    file: string;
    line: number;
    chain: string;
    start: number;
    end: number;
    replacement: string;
}

/** `a.b.c` for a chain of property accesses on an identifier, else undefined. */
function chainOf(node: ts.Node): string | undefined {
    if (ts.isIdentifier(node)) {
        return node.text;
    }
    if (ts.isPropertyAccessExpression(node)) {
        const base = chainOf(node.expression);
        return base === undefined ? undefined : `${base}.${node.name.text}`;
    }
    return undefined;
}

/** Where a reference is read as a value (not assigned, not a type, not a longer chain's head). */
function isRead(node: ts.PropertyAccessExpression): boolean {
    const parent = node.parent;
    if (ts.isPropertyAccessExpression(parent) && parent.expression === node) {
        return false;
    }
    if (ts.isBinaryExpression(parent) && parent.left === node && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
        return false;
    }
    return !ts.isTypeQueryNode(parent) && !ts.isQualifiedName(parent);
}

function mutantsOf(file: string): Mutant[] {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const references = REFERENCES[file];
    const mutants: Mutant[] = [];
    const visit = (node: ts.Node) => {
        if (ts.isPropertyAccessExpression(node) && isRead(node)) {
            const chain = chainOf(node);
            const setting = chain === undefined ? undefined : references[chain];
            if (chain !== undefined && setting !== undefined) {
                const value = typeof setting === "function" ? setting() : valueAt(setting);
                mutants.push({
                    file,
                    line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1,
                    chain,
                    start: node.getStart(),
                    end: node.getEnd(),
                    replacement: value === undefined ? "undefined" : JSON.stringify(value),
                });
            }
        }
        ts.forEachChild(node, visit);
    };
    visit(source);
    const found = new Set(mutants.map((m) => m.chain));
    const stale = Object.keys(references).filter((chain) => !found.has(chain));
    if (stale.length > 0) {
        throw new Error(`${file} no longer reads ${stale.join(", ")}: update REFERENCES in ${path.relative(ROOT, __filename)}`);
    }
    return mutants;
}

/** A copy of the working tree (tracked and untracked files, not ignored ones) with its own git repository. */
function sandbox(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "caldav-reference-mutants-"));
    const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
    if (listed.status !== 0) {
        throw new Error(`git ls-files failed in ${ROOT}: ${listed.stderr}`);
    }
    for (const file of listed.stdout.split("\0").filter((f) => f && fs.existsSync(path.join(ROOT, f)))) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
    }
    const git = (...args: string[]) => spawnSync("git", ["-c", "user.name=mutants", "-c", "user.email=mutants@localhost", ...args], { cwd: dir });
    git("init", "--quiet");
    git("add", "--all");
    git("commit", "--quiet", "-m", "sandbox");
    // After the commit: the repository's own files only, as in a clone.
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    return dir;
}

/**
 * The test file written to kill these mutants runs first; only a mutant it misses meets the
 * whole suite (the verdict is always the whole suite's).
 */
const FIRST = ["test/keys-wiring.test.ts"];

/** Runs the unit suite (or `files`) in the sandbox; the failing tests' lines, or undefined when it passes. */
function failures(dir: string, files: string[] = []): string[] | undefined {
    const result = spawnSync(process.execPath, ["--require", "tsx/cjs", "--require", "./test/preload.ts", "test/run.ts", ...files], {
        cwd: dir,
        // Git never looks above the sandbox, whatever a mutant does to a working directory.
        env: { ...process.env, GIT_CEILING_DIRECTORIES: path.dirname(dir) },
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
    });
    return result.status === 0 ? undefined : `${result.stdout}`.split("\n").filter((line) => /^\s*not ok/.test(line));
}

function main(): number {
    const filters = process.argv.slice(2);
    const files = Object.keys(REFERENCES).filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)));
    const mutants = files.flatMap(mutantsOf);
    const dir = sandbox();
    process.stdout.write(`reference mutants: ${mutants.length} in ${files.length} files; each runs the unit suite in ${dir}\n`);
    const baseline = failures(dir);
    if (baseline) {
        process.stdout.write(`the unit suite fails without any mutant: fix it first (npm test)\n${baseline.join("\n")}\n`);
        fs.rmSync(dir, { recursive: true, force: true });
        return 1;
    }
    const survivors: Mutant[] = [];
    try {
        mutants.forEach((mutant, index) => {
            const target = path.join(dir, mutant.file);
            const original = fs.readFileSync(target, "utf8");
            fs.writeFileSync(target, `${original.slice(0, mutant.start)}${mutant.replacement}${original.slice(mutant.end)}`);
            const killed = failures(dir, FIRST) !== undefined || failures(dir) !== undefined;
            fs.writeFileSync(target, original);
            if (!killed) {
                survivors.push(mutant);
            }
            process.stdout.write(`[${index + 1}/${mutants.length}] ${killed ? "killed  " : "SURVIVED"} ${mutant.file}:${mutant.line} ${mutant.chain} -> ${mutant.replacement}\n`);
        });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    const killed = mutants.length - survivors.length;
    const score = mutants.length === 0 ? 100 : (100 * killed) / mutants.length;
    process.stdout.write(`\nreference mutants: ${killed} of ${mutants.length} killed (${score.toFixed(1)}%)\n`);
    const unexplained = survivors.filter((m) => EQUIVALENT[`${m.file}:${m.chain}:${m.replacement}`] === undefined);
    for (const m of survivors) {
        const why = EQUIVALENT[`${m.file}:${m.chain}:${m.replacement}`];
        process.stdout.write(`  survived ${m.file}:${m.line} ${m.chain} -> ${m.replacement}${why ? ` (equivalent: ${why})` : " (no test sees it: write one)"}\n`);
    }
    return unexplained.length === 0 ? 0 : 1;
}

process.exitCode = main();
