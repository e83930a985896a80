// The bundled PostgreSQL's start command, run here with stand-ins for the image's
// entrypoint, pg_isready and psql: it applies the stack's admin password once the
// server answers, marks that for the health check, and turns `docker stop` into
// PostgreSQL's fast shutdown, exiting with the server's own status.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { localSource, tempDir } from "./fixtures";
import { evaluateOnce } from "./harness";

/** The start command of the bundled PostgreSQL container, and the marker file it writes. */
async function startScript(): Promise<{ script: string; marker: string }> {
    const evaluation = await evaluateOnce({
        source: localSource(),
        network: { create: true },
        postgres: { mode: "bundled", adminHost: "127.0.0.1" },
    }, {});
    assert.ifError(evaluation.error);
    const command: string[] = evaluation.one("docker:index/container:Container", "postgres").inputs.command;
    assert.deepEqual(command.slice(0, 2), ["sh", "-c"]);
    const marker = /touch ([^\s;]+)/.exec(command[2])?.[1];
    assert.ok(marker);
    return { script: command[2], marker };
}

function stubs(dir: string): string {
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    // The server: logs its start, answers SIGINT (fast shutdown) with status 7, or dies at once.
    fs.writeFileSync(path.join(bin, "docker-entrypoint.sh"), `#!${process.execPath}
const fs = require("fs");
fs.appendFileSync(process.env.STUB_LOG, "entrypoint " + process.argv.slice(2).join(" ") + "\\n");
if (process.env.STUB_DIE) process.exit(3);
process.on("SIGINT", () => { fs.appendFileSync(process.env.STUB_LOG, "entrypoint SIGINT\\n"); process.exit(7); });
// Never outlives the test, whatever the script under test does with it.
setTimeout(() => process.exit(99), 30000);
`, { mode: 0o755 });
    // Not ready at the first probe; from the second on, ready once the server has started (never if it dies).
    fs.writeFileSync(path.join(bin, "pg_isready"), `#!/bin/sh
n=$(cat "$STUB_DIR/probes" 2>/dev/null || echo 0); echo $((n+1)) > "$STUB_DIR/probes"
echo "pg_isready $*" >> "$STUB_LOG"
[ -z "$STUB_DIE" ] && [ "$n" -ge 1 ] && grep -q "^entrypoint postgres" "$STUB_LOG"
`, { mode: 0o755 });
    // The script's wait between probes: logged, not waited (a test that waits a second per probe is only slower).
    fs.writeFileSync(path.join(bin, "sleep"), `#!/bin/sh
echo "sleep $*" >> "$STUB_LOG"
`, { mode: 0o755 });
    // Reads its input like psql; fails (as with a wrong admin role) when STUB_PSQL_FAILS is set.
    fs.writeFileSync(path.join(bin, "psql"), `#!/bin/sh
echo "psql $*" >> "$STUB_LOG"; echo "stdin $(cat | tr '\\n' ' ')" >> "$STUB_LOG"
[ -z "$STUB_PSQL_FAILS" ]
`, { mode: 0o755 });
    return bin;
}

/** Waits for `condition`, checking every 10 ms; no deadline (the stub server ends itself after 30 s). */
async function until(condition: () => boolean): Promise<void> {
    while (!condition()) {
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}

/**
 * Runs the start command in a directory of its own, its marker file there (one left by a
 * previous start when `staleMarker`), with the stand-ins and `env`.
 */
async function startFresh(env: Record<string, string>, { staleMarker }: { staleMarker: boolean }) {
    const { script, marker } = await startScript();
    const dir = tempDir("pg-start");
    const applied = path.join(dir, "applied");
    if (staleMarker) {
        fs.writeFileSync(applied, "left by the previous start");
    }
    return { dir, applied, ...start(script.split(marker).join(applied), dir, env) };
}

/** The admin password's file, as the container gets it. */
function passwordFile(dir: string): string {
    const file = path.join(dir, "postgres-password");
    fs.writeFileSync(file, "s3cret-pw", { mode: 0o600 });
    return file;
}

function start(script: string, dir: string, env: Record<string, string>) {
    const bin = stubs(dir);
    const child = spawn("sh", ["-c", script], {
        env: { PATH: `${bin}:${process.env.PATH}`, STUB_DIR: dir, STUB_LOG: path.join(dir, "log"), PGPORT: "6544", POSTGRES_USER: "pgadmin", POSTGRES_PASSWORD_FILE: passwordFile(dir), ...env },
        // The script's own stderr goes to a file the test reads.
        stdio: ["ignore", "ignore", fs.openSync(path.join(dir, "stderr"), "w")],
        // A process group of its own: the test ends the script and the server together.
        detached: true,
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const log = () => (fs.existsSync(path.join(dir, "log")) ? fs.readFileSync(path.join(dir, "log"), "utf8") : "");
    const stop = () => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            // already gone
        }
    };
    return { child, exited, log, stop };
}

describe("bundled PostgreSQL start command", () => {
    test("applies the admin password once the server answers, then marks it; a stop is a fast shutdown with the server's status", async () => {
        const { applied, child, exited, log, stop } = await startFresh({}, { staleMarker: true });
        try {
            await until(() => log().includes("stdin"));
            await until(() => fs.existsSync(applied));
            const lines = log().split("\n");
            const probes = lines.map((l, i) => (l.startsWith("pg_isready") ? i : -1)).filter((i) => i >= 0);
            assert.ok(probes.length >= 2 && lines.findIndex((l) => l.startsWith("psql")) > probes[probes.length - 1], "psql once the server answers");
            assert.ok(lines.includes("entrypoint postgres"), "the image's own entrypoint runs the server");
            assert.ok(lines.filter((l) => l.startsWith("pg_isready")).every((l) => / -p 6544 -U pgadmin /.test(l)), "probes the server's port as the admin");
            assert.match(log(), /^psql .*-v ON_ERROR_STOP=1 .*-p 6544 -U pgadmin/m);
            assert.match(log(), /^stdin \\set password `cat "\$POSTGRES_PASSWORD_FILE"` ALTER ROLE "pgadmin" PASSWORD :'password'; $/m,
                "the password goes in as a psql variable that psql reads from its file, never in SQL text");
            assert.doesNotMatch(log(), /s3cret-pw/, "nor on a command line (ps, docker top)");
            child.kill("SIGTERM");
            assert.equal(await exited, 7, "exits with the server's status");
            assert.match(log(), /entrypoint SIGINT/, "docker stop is PostgreSQL's fast shutdown");
        } finally {
            stop();
        }
    });

    test("a server that dies before it answers ends the container, without marking the password applied", async () => {
        const { applied, exited, log, stop } = await startFresh({ STUB_DIE: "1" }, { staleMarker: true });
        try {
            assert.equal(await exited, 1);
            assert.ok(!fs.existsSync(applied), "a marker left by a previous start is removed first");
            assert.doesNotMatch(log(), /^psql/m);
        } finally {
            stop();
        }
    });

    test("a password that cannot be applied is not marked applied: the health check keeps failing", async () => {
        const { dir, applied, stop } = await startFresh({ STUB_PSQL_FAILS: "1" }, { staleMarker: false });
        try {
            const stderr = () => fs.readFileSync(path.join(dir, "stderr"), "utf8");
            // Whichever comes first once psql has failed: the marker (wrong) or the script's message.
            await until(() => fs.existsSync(applied) || stderr().includes("could not set the admin password"));
            assert.ok(!fs.existsSync(applied), "not marked: the health check keeps failing");
        } finally {
            stop();
        }
    });
});
