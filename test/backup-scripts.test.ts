// The scripts of components/backup-scripts, run here with sh and stand-ins for psql,
// pg_dump and pg_restore: which dump is taken, kept, labelled and restored, and that
// every failure leaves the dumps and the schema's state as they were. (The same
// scripts run against a real PostgreSQL in e2e/scenarios/upgrade.test.ts.)
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { BACKUP_DIR, DUMP_FILE, DUMP_SCRIPT, LIST_SCRIPT, RECORD_SCRIPT, RESTORE_SCRIPT } from "../components/backup";
import { tempDir } from "./fixtures";

const OLD = `sha256:${"a".repeat(64)}`;
const OLD_REFERENCE = "ghcr.io/suitenumerique/calendars-caldav:v0.1.0";
const NEW = `sha256:${"b".repeat(64)}`;
const NEW_REFERENCE = `calendars-caldav:${"0123456789".repeat(4)}`;
const deployed = (id: string, reference: string) => `calendars-caldav deployed=${id} reference=${reference}`;

interface World {
    /** backup.location. */
    dir: string;
    /** The schema's comment, as the stand-in psql keeps it. */
    state: string;
    tables: number;
    /** Stand-ins that fail: pg_dump, pg_restore (reading a dump), psql --single-transaction (the restore). */
    fail?: "pg_dump" | "pg_restore" | "apply";
    /** Every psql call's arguments, one line each. */
    calls: string[];
}

// The stand-in psql answers the scripts' three statements from files in `bin`; a
// COMMENT stores its :'state' variable; a --single-transaction run is the restore.
const PSQL = `#!/bin/sh
sql=$(cat)
echo "$*" >> "$WORLD/calls"
for a; do case $a in state=*) state=\${a#state=} ;; --single-transaction) restore=1 ;; esac; done
if [ -n "\${restore:-}" ]; then
    [ ! -f "$WORLD/fail-apply" ] || { echo "ERROR: role ghost does not exist" >&2; exit 3; }
    printf '%s' "$state" > "$WORLD/state"; exit 0
fi
case $sql in
*"count(*)"*) cat "$WORLD/tables" ;;
*obj_description*) cat "$WORLD/state" ;;
*"COMMENT ON SCHEMA"*) printf '%s' "$state" > "$WORLD/state" ;;
esac
`;
const PG_DUMP = `#!/bin/sh
for a; do case $a in --file=*) f=\${a#--file=} ;; esac; done
echo "dump of $PGDATABASE: $*" > "$f"
[ ! -f "$WORLD/fail-pg_dump" ] || exit 1
`;
const PG_RESTORE = `#!/bin/sh
[ "$1" != --version ] || { echo "pg_restore (PostgreSQL) 15"; exit 0; }
[ ! -f "$WORLD/fail-pg_restore" ] || { echo "pg_restore: error: could not read from input file: end of file" >&2; exit 1; }
for a; do case $a in --file=*) f=\${a#--file=} ;; esac; done
printf 'CREATE SCHEMA dav;\\nCREATE TABLE dav.calendars (id integer);\\n' > "$f"
`;

function world(options: Partial<World> = {}): World {
    return { dir: tempDir("backups"), state: "", tables: 5, calls: [], ...options };
}

/** Runs a script against `w`; the stack is `prod` unless `env` says otherwise. */
function run(script: string, w: World, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const bin = tempDir("backup-bin");
    const worldDir = tempDir("backup-world");
    for (const [name, text] of [["psql", PSQL], ["pg_dump", PG_DUMP], ["pg_restore", PG_RESTORE]]) {
        fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    }
    fs.writeFileSync(path.join(worldDir, "state"), w.state);
    fs.writeFileSync(path.join(worldDir, "tables"), `${w.tables}\n`);
    if (w.fail) {
        fs.writeFileSync(path.join(worldDir, `fail-${w.fail}`), "");
    }
    const result = spawnSync("sh", ["-c", script.split(BACKUP_DIR).join(w.dir)], {
        encoding: "utf8",
        env: {
            PATH: `${bin}:${process.env.PATH}`, WORLD: worldDir,
            PGDATABASE: "caldav_db", CALDAV_DB_SCHEMA: "dav", STACK: "prod", KEEP: "2",
            DEPLOYING_IMAGE: NEW, DEPLOYING_REFERENCE: NEW_REFERENCE, ...env,
        },
    });
    w.state = fs.readFileSync(path.join(worldDir, "state"), "utf8");
    w.calls = fs.existsSync(path.join(worldDir, "calls")) ? fs.readFileSync(path.join(worldDir, "calls"), "utf8").split("\n").filter(Boolean) : [];
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const files = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
const dumpsIn = (dir: string) => files(dir).filter((f) => f.endsWith(".dump"));
const read = (...parts: string[]) => fs.readFileSync(path.join(...parts), "utf8");

/** A dump written by an earlier run: `seq` and `time` name it, its .image file says OLD. */
function earlierDump(dir: string, seq: number, time: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const name = `caldav-${String(seq).padStart(6, "0")}-${time}-aaaaaaaaaaaa`;
    fs.writeFileSync(path.join(dir, `${name}.dump`), "old");
    fs.writeFileSync(path.join(dir, `${name}.image`), `${OLD}\n${OLD_REFERENCE}\n`);
    return `${name}.dump`;
}

describe("the dump before an image change (dump.sh)", () => {
    test("dumps the data of the image the schema records, into the stack's directory, and marks the upgrade pending", () => {
        const w = world({ state: deployed(OLD, OLD_REFERENCE) });
        const result = run(DUMP_SCRIPT, w);
        assert.equal(result.status, 0, result.stderr);
        const stackDir = path.join(w.dir, "prod");
        const [dump] = dumpsIn(stackDir);
        assert.match(dump, DUMP_FILE);
        assert.match(dump, /^caldav-000001-\d{8}T\d{6}Z-aaaaaaaaaaaa\.dump$/, "first in sequence, labelled with the image that used the data");
        assert.match(read(stackDir, dump), /^dump of caldav_db: --format=custom --schema=dav --file=/);
        assert.equal(read(stackDir, dump.replace(/\.dump$/, ".image")), `${OLD}\n${OLD_REFERENCE}\n`, "what a rollback redeploys");
        assert.equal(w.state, `${deployed(OLD, OLD_REFERENCE)} pending=${dump}`, "the new image is recorded only once it runs");
        assert.deepEqual(files(stackDir).filter((f) => f.includes("partial")), []);
        assert.deepEqual(files(w.dir), ["prod"], "nothing outside the stack's directory");
    });

    test("dumps and their directory are readable by their owner only", () => {
        const w = world({ state: deployed(OLD, OLD_REFERENCE) });
        assert.equal(run(DUMP_SCRIPT, w).status, 0);
        const stackDir = path.join(w.dir, "prod");
        assert.equal(fs.statSync(stackDir).mode & 0o777, 0o700);
        for (const file of files(stackDir)) {
            assert.equal(fs.statSync(path.join(stackDir, file)).mode & 0o777, 0o600, file);
        }
    });

    test("takes no dump when the schema holds the data of the image being deployed (a config change, not an upgrade)", () => {
        const w = world({ state: deployed(NEW, NEW_REFERENCE) });
        earlierDump(path.join(w.dir, "prod"), 1, "20260101T000000Z");
        earlierDump(path.join(w.dir, "prod"), 2, "20260102T000000Z");
        earlierDump(path.join(w.dir, "prod"), 3, "20260103T000000Z");
        const result = run(DUMP_SCRIPT, w, { KEEP: "1" });
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /no image change, nothing to dump/);
        assert.equal(dumpsIn(path.join(w.dir, "prod")).length, 3, "a lower backup.keep prunes nothing by itself");
        assert.equal(w.state, deployed(NEW, NEW_REFERENCE));
    });

    test("an empty schema (first deploy) is not dumped and its state is left to the record", () => {
        const w = world({ tables: 0 });
        const result = run(DUMP_SCRIPT, w);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /no tables yet/);
        assert.deepEqual(dumpsIn(path.join(w.dir, "prod")), []);
        assert.equal(w.state, "");
    });

    test("during an unfinished upgrade, no new dump is taken and none removed, whatever image comes next", () => {
        for (const next of [NEW, OLD, `sha256:${"c".repeat(64)}`]) {
            const w = world();
            const good = earlierDump(path.join(w.dir, "prod"), 7, "20260107T000000Z");
            w.state = `${deployed(OLD, OLD_REFERENCE)} pending=${good}`;
            const result = run(DUMP_SCRIPT, w, { KEEP: "1", DEPLOYING_IMAGE: next });
            assert.equal(result.status, 0, result.stderr);
            assert.match(result.stdout, new RegExp(`has not finished: ${good} holds the data from before it`));
            assert.deepEqual(dumpsIn(path.join(w.dir, "prod")), [good], "the dump of the good data stays, even with keep 1");
            assert.equal(w.state, `${deployed(OLD, OLD_REFERENCE)} pending=${good}`);
        }
    });

    test("keeps the newest backup.keep dumps by sequence, whatever the clock says", () => {
        const w = world({ state: deployed(OLD, OLD_REFERENCE) });
        const stackDir = path.join(w.dir, "prod");
        // Written while the clock was far ahead: their times sort after any dump taken now.
        earlierDump(stackDir, 1, "29990101T000000Z");
        const second = earlierDump(stackDir, 2, "29990102T000000Z");
        fs.writeFileSync(path.join(stackDir, "notes.txt"), "not a dump");
        const result = run(DUMP_SCRIPT, w, { KEEP: "2" });
        assert.equal(result.status, 0, result.stderr);
        const left = dumpsIn(stackDir);
        assert.equal(left.length, 2, left.join(" "));
        assert.equal(left[0], second);
        assert.match(left[1], /^caldav-000003-/, "the dump just taken is kept");
        assert.ok(!fs.existsSync(path.join(stackDir, "caldav-000001-29990101T000000Z-aaaaaaaaaaaa.image")), "removed with its dump");
        assert.ok(fs.existsSync(path.join(stackDir, "notes.txt")), "other files are left alone");
        assert.match(result.stdout, /removed prod\/caldav-000001-29990101T000000Z-aaaaaaaaaaaa\.dump \(backup\.keep 2\)/);
    });

    test("with keep 1 the dump just taken replaces the older one", () => {
        const w = world({ state: deployed(OLD, OLD_REFERENCE) });
        earlierDump(path.join(w.dir, "prod"), 41, "20260101T000000Z");
        assert.equal(run(DUMP_SCRIPT, w, { KEEP: "1" }).status, 0);
        const left = dumpsIn(path.join(w.dir, "prod"));
        assert.equal(left.length, 1);
        assert.match(left[0], /^caldav-000042-/);
    });

    test("stacks sharing a host directory neither prune nor label each other's dumps", () => {
        const shared = tempDir("shared-backups");
        const staging = earlierDump(path.join(shared, "staging"), 1, "20260101T000000Z");
        const prod = world({ dir: shared, state: deployed(OLD, OLD_REFERENCE) });
        assert.equal(run(DUMP_SCRIPT, prod, { KEEP: "1" }).status, 0);
        assert.deepEqual(dumpsIn(path.join(shared, "staging")), [staging]);
        assert.match(dumpsIn(path.join(shared, "prod"))[0], /^caldav-000001-/, "a sequence of its own");
    });

    test("leftovers of an interrupted run are removed, never listed as dumps", () => {
        const w = world({ state: deployed(NEW, NEW_REFERENCE) });
        fs.mkdirSync(path.join(w.dir, "prod"));
        fs.writeFileSync(path.join(w.dir, "prod", "caldav-000001-20260101T000000Z-aaaaaaaaaaaa.dump.partial"), "half");
        assert.equal(run(DUMP_SCRIPT, w).status, 0);
        assert.deepEqual(files(path.join(w.dir, "prod")), []);
    });

    test("without a state in the schema, the marker of earlier versions labels the dump, or says there is no change", () => {
        const w = world();
        fs.writeFileSync(path.join(w.dir, ".deployed-image"), `${OLD}\n${OLD_REFERENCE}\n`);
        assert.equal(run(DUMP_SCRIPT, w).status, 0);
        assert.match(dumpsIn(path.join(w.dir, "prod"))[0], /-aaaaaaaaaaaa\.dump$/);

        const same = world();
        fs.writeFileSync(path.join(same.dir, ".deployed-image"), `${NEW}\n${NEW_REFERENCE}\n`);
        assert.match(run(DUMP_SCRIPT, same).stdout, /no image change/);
        assert.deepEqual(dumpsIn(path.join(same.dir, "prod")), []);
    });

    test("an unwritable location fails before anything, naming backup.location", () => {
        const file = path.join(tempDir("backups"), "not-a-directory");
        fs.writeFileSync(file, "");
        const w = world({ dir: file, state: deployed(OLD, OLD_REFERENCE) });
        const result = run(DUMP_SCRIPT, w);
        assert.equal(result.status, 3);
        assert.match(result.stderr, /backup\.location is not a writable directory/);
        assert.equal(w.state, deployed(OLD, OLD_REFERENCE));
    });

    for (const fail of ["pg_dump", "pg_restore"] as const) {
        test(`a failing ${fail} (${fail === "pg_dump" ? "the dump" : "reading it back"}) fails the script, keeps no dump and leaves the state`, () => {
            const w = world({ state: deployed(OLD, OLD_REFERENCE), fail });
            const older = earlierDump(path.join(w.dir, "prod"), 1, "20260101T000000Z");
            const result = run(DUMP_SCRIPT, w, { KEEP: "1" });
            assert.notEqual(result.status, 0);
            assert.deepEqual(dumpsIn(path.join(w.dir, "prod")), [older], "nothing pruned either");
            assert.equal(w.state, deployed(OLD, OLD_REFERENCE));
        });
    }
});

describe("the record once the server runs (record.sh)", () => {
    test("records the image and ends the unfinished upgrade", () => {
        const w = world({ state: `${deployed(OLD, OLD_REFERENCE)} pending=caldav-000001-20260101T000000Z-aaaaaaaaaaaa.dump` });
        const result = run(RECORD_SCRIPT, w);
        assert.equal(result.status, 0, result.stderr);
        assert.equal(w.state, deployed(NEW, NEW_REFERENCE));
    });
});

describe("the restore (restore.sh)", () => {
    function withDump(options: Partial<World> = {}): { w: World; dump: string } {
        const w = world({ state: deployed(NEW, NEW_REFERENCE), ...options });
        return { w, dump: earlierDump(path.join(w.dir, "prod"), 3, "20260101T000000Z") };
    }

    test("check reads the whole dump and touches nothing", () => {
        const { w, dump } = withDump();
        const result = run(RESTORE_SCRIPT, w, { MODE: "check", DUMP: dump });
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`${dump} reads back whole \\(1 tables\\)`));
        assert.ok(!w.calls.some((call) => call.includes("--single-transaction")));
        assert.equal(w.state, deployed(NEW, NEW_REFERENCE));
    });

    test("apply drops the schema, restores the dump and records its image, in one transaction, files in that order", () => {
        const { w, dump } = withDump();
        const result = run(RESTORE_SCRIPT, w, { MODE: "apply", DUMP: dump });
        assert.equal(result.status, 0, result.stderr);
        const [restore] = w.calls.filter((call) => call.includes("--single-transaction"));
        assert.match(restore, /-v ON_ERROR_STOP=1 .*--single-transaction .*-f \S+\/drop\.sql -f \S+\/restore\.sql -f \S+\/state\.sql$/);
        assert.equal(w.state, deployed(OLD, OLD_REFERENCE), "the schema holds the dump's image's data");
        assert.match(result.stdout, /restored .*: 5 tables in schema dav, data of image aaaaaaaaaaaa/);
    });

    for (const mode of ["check", "apply"]) {
        test(`${mode}: a dump that does not read back whole changes nothing`, () => {
            const { w, dump } = withDump({ fail: "pg_restore" });
            const result = run(RESTORE_SCRIPT, w, { MODE: mode, DUMP: dump });
            assert.equal(result.status, 4);
            assert.match(result.stderr, /cannot be read by the tools image \(pg_restore \(PostgreSQL\) 15\): pg_restore: error: could not read from input file: end of file\. Nothing was changed\./);
            assert.ok(!w.calls.some((call) => call.includes("--single-transaction")), "the database is not touched");
            assert.equal(w.state, deployed(NEW, NEW_REFERENCE));
        });
    }

    test("a restore that fails half-way is rolled back and says so", () => {
        const { w, dump } = withDump({ fail: "apply" });
        const result = run(RESTORE_SCRIPT, w, { MODE: "apply", DUMP: dump });
        assert.equal(result.status, 5);
        assert.match(result.stderr, /failed and was rolled back, nothing was changed: ERROR: role ghost does not exist/);
        assert.equal(w.state, deployed(NEW, NEW_REFERENCE));
    });

    test("a dump without its .image file, or of another stack, is refused", () => {
        const { w, dump } = withDump();
        fs.rmSync(path.join(w.dir, "prod", dump.replace(/\.dump$/, ".image")));
        const missing = run(RESTORE_SCRIPT, w, { MODE: "apply", DUMP: dump });
        assert.equal(missing.status, 4);
        assert.match(missing.stderr, /or its \.image file is missing: nothing was changed/);
        const other = run(RESTORE_SCRIPT, w, { MODE: "apply", DUMP: dump, STACK: "staging" });
        assert.equal(other.status, 4);
        assert.match(other.stderr, /no dumps of stack staging/);
    });

    test("a restore that leaves no table fails", () => {
        const { w, dump } = withDump({ tables: 0 });
        const result = run(RESTORE_SCRIPT, w, { MODE: "apply", DUMP: dump });
        assert.equal(result.status, 6);
        assert.match(result.stderr, /schema dav has no table/);
    });
});

describe("the listing (list.sh)", () => {
    test("the stack's dumps, newest first by sequence, with their images", () => {
        const w = world();
        const stackDir = path.join(w.dir, "prod");
        earlierDump(stackDir, 9, "29990101T000000Z");
        earlierDump(stackDir, 10, "20260101T000000Z");
        fs.rmSync(path.join(stackDir, "caldav-000009-29990101T000000Z-aaaaaaaaaaaa.image"));
        earlierDump(path.join(w.dir, "staging"), 11, "20260101T000000Z");
        const result = run(LIST_SCRIPT, w);
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout, `caldav-000010-20260101T000000Z-aaaaaaaaaaaa.dump ${OLD} ${OLD_REFERENCE}\n` +
            "caldav-000009-29990101T000000Z-aaaaaaaaaaaa.dump  \n");
    });

    test("no directory yet: no dumps, no error", () => {
        const result = run(LIST_SCRIPT, world());
        assert.deepEqual([result.status, result.stdout], [0, ""]);
    });
});
