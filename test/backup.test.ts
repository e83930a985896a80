// The dump before an image change: what it connects with, when it runs, what the
// server waits for, and what its script does with the files (run here with stand-ins
// for psql and pg_dump).
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { BACKUP_DIR, BackupError, DEPLOYED_MARKER, DUMP_SCRIPT } from "../components/backup";
import { localSource, tempDir } from "./fixtures";
import { containerEnv, evaluateOnce, Evaluation, StackConfig, withConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";
const ADMIN_PASSWORD = "admin-secret-value";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

async function run(overrides: StackConfig = {}, states?: Record<string, Record<string, unknown>>): Promise<Evaluation> {
    // Distinct values for every setting the dump shares with the server, so that a swap shows.
    const config = withConfig({
        source: localSource(),
        postgres: { host: "postgresql", port: 6543, database: "caldav_db", user: "caldav_role", schema: "dav" },
    }, overrides);
    return evaluateOnce(config, { postgresAdminPassword: ADMIN_PASSWORD }, { networks: { messages_internal: { subnet: "172.29.0.0/16" } }, states });
}

const env = containerEnv;

describe("dump before an image change", () => {
    test("connects as the server does, for the image the server is about to run, and the server waits for it", async () => {
        const evaluation = await run();
        assert.ifError(evaluation.error);
        const server = evaluation.one(CONTAINER, "caldav");
        const dump = evaluation.one(CONTAINER, "backup-container");
        const [dumpEnv, serverEnv] = [env(dump), env(server)];
        for (const key of ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"]) {
            assert.equal(dumpEnv[key], serverEnv[key], key);
        }
        assert.deepEqual([dumpEnv.PGDATABASE, dumpEnv.PGUSER, dumpEnv.PGPORT], ["caldav_db", "caldav_role", "6543"]);
        assert.equal(dumpEnv.CALDAV_DB_SCHEMA, "dav");
        assert.equal(dumpEnv.DEPLOYING_IMAGE, server.inputs.image, "keyed on the server's next image");
        assert.ok(server.dependencies.includes(dump.urn), "the server is replaced only after the dump");
        const database = evaluation.one("postgresql:index/database:Database");
        assert.ok(dump.dependencies.includes(database.urn), "the dump runs once the database exists");
        assert.deepEqual([dump.inputs.attach, dump.inputs.mustRun, dump.inputs.restart], [true, false, "no"], "runs once, to its end, during up");
        assert.deepEqual(dump.inputs.networksAdvanced.map((n: { name: string }) => n.name), ["messages_internal"]);
    });

    test("its password is a secret on the wire, and no input of it holds another in plain text", async () => {
        const evaluation = await run();
        const dump = evaluation.one(CONTAINER, "backup-container");
        const password = env(dump).PGPASSWORD;
        const onWire = (dump.wire.envs as unknown[]).filter((entry) => JSON.stringify(entry).includes(password));
        assert.equal(onWire.length, 1);
        assert.ok(SECRET_SIG in (onWire[0] as object), "PGPASSWORD travels as a secret");
        const plain = JSON.stringify((dump.wire.envs as unknown[]).filter((entry) => typeof entry === "string"));
        for (const secret of [password, ADMIN_PASSWORD, ...evaluation.generated]) {
            assert.ok(!plain.includes(secret), "a secret in plain text");
        }
    });

    test("a dump that failed stops the deployment before the server registers, and says how to retry", async () => {
        const evaluation = await run({}, { "backup-container": { exitCode: 3 } });
        assert.ok(evaluation.error instanceof BackupError, String(evaluation.error));
        assert.match(evaluation.error.message, /failed \(exit code 3\), so the CalDAV server was not replaced/);
        assert.match(evaluation.error.message, /docker logs calendars-caldav-test-dump/);
        assert.match(evaluation.error.message, /pulumi up --replace 'urn:pulumi:test::calendars-caldav::calendars:caldav:PreUpgradeDump\$docker:index\/container:Container::backup-container'/);
        assert.deepEqual(evaluation.byType(CONTAINER).map((c) => c.name), ["backup-container"]);
    });

    test("a dump that succeeded lets the server through", async () => {
        const evaluation = await run({}, { "backup-container": { exitCode: 0 } });
        assert.ifError(evaluation.error);
        assert.equal(evaluation.byType(CONTAINER).length, 2);
    });

    test("backup.location: a retained volume of the stack by default, or a host directory bound as it is", async () => {
        const byDefault = (await run()).one(CONTAINER, "backup-container");
        assert.deepEqual(byDefault.inputs.volumes, [{ volumeName: "calendars-caldav-test-backups", containerPath: BACKUP_DIR }]);
        const volume = (await run()).one("docker:index/volume:Volume");
        assert.deepEqual([volume.inputs.name, volume.retainOnDelete], ["calendars-caldav-test-backups", true]);

        const hostPath = await run({ backup: { location: "/srv/caldav-dumps/" } });
        assert.deepEqual(hostPath.one(CONTAINER, "backup-container").inputs.volumes, [{ hostPath: "/srv/caldav-dumps", containerPath: BACKUP_DIR }]);
        assert.equal(hostPath.byType("docker:index/volume:Volume").length, 0);
    });

    test("backup.image runs the dump; backup.keep reaches the script", async () => {
        const evaluation = await run({ backup: { image: "postgres:16.4-bookworm", keep: 3 } });
        const tools = evaluation.one("docker:index/remoteImage:RemoteImage", "backup-tools");
        assert.equal(tools.inputs.name, "postgres:16.4-bookworm");
        assert.equal(tools.inputs.keepLocally, true, "other containers may use it");
        const dump = evaluation.one(CONTAINER, "backup-container");
        assert.ok(dump.dependencies.includes(tools.urn), "the dump container runs the tools image");
        assert.notEqual(dump.inputs.image, evaluation.one(CONTAINER, "caldav").inputs.image);
        assert.equal(env(dump).KEEP, "3");
    });

    test("backup.enabled false: no dump, and the server depends on nothing of it", async () => {
        const evaluation = await run({ backup: { enabled: false } });
        assert.ifError(evaluation.error);
        assert.deepEqual(evaluation.byType(CONTAINER).map((c) => c.name), ["caldav"]);
        assert.equal(evaluation.resources.filter((r) => r.type.startsWith("calendars:caldav:PreUpgradeDump")).length, 0);
    });
});

const NEW = `sha256:${"b".repeat(64)}`;
const NEW_REFERENCE = `calendars-caldav:${"0123456789".repeat(4)}`;

/** Runs DUMP_SCRIPT against `dir` as BACKUP_DIR, with psql answering `tables` and pg_dump writing its arguments. */
function runScript(dir: string, tables: number, options: { dumpFails?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
    const bin = tempDir("dump-bin");
    fs.writeFileSync(path.join(bin, "psql"), `#!/bin/sh\necho ${tables}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, "pg_dump"), options.dumpFails
        ? '#!/bin/sh\nfor a; do case "$a" in --file=*) f=${a#--file=};; esac; done\necho partial > "$f"\nexit 1\n'
        : '#!/bin/sh\nfor a; do case "$a" in --file=*) f=${a#--file=};; esac; done\necho "dump of $PGDATABASE: $*" > "$f"\n', { mode: 0o755 });
    const script = DUMP_SCRIPT.split(BACKUP_DIR).join(dir);
    const result = spawnSync("sh", ["-c", script], {
        encoding: "utf8",
        env: {
            PATH: `${bin}:${process.env.PATH}`,
            PGDATABASE: "caldav_db", CALDAV_DB_SCHEMA: "dav", KEEP: "2", DEPLOYING_IMAGE: NEW, DEPLOYING_REFERENCE: NEW_REFERENCE,
        },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("the dump script", () => {
    // As the previous run recorded it: the image ID, then the reference it was deployed as.
    const OLD = `sha256:${"a".repeat(64)}\nghcr.io/suitenumerique/calendars-caldav:v0.1.0`;

    test("dumps the schema, named by time and the image that used the data, and records the image being deployed", () => {
        const dir = tempDir("backups");
        fs.writeFileSync(path.join(dir, DEPLOYED_MARKER), `${OLD}\n`);
        const result = runScript(dir, 5);
        assert.equal(result.status, 0, result.stderr);
        const dumps = fs.readdirSync(dir).filter((f) => f.endsWith(".dump"));
        assert.equal(dumps.length, 1);
        assert.match(dumps[0], /^caldav-\d{8}T\d{6}Z-aaaaaaaaaaaa\.dump$/);
        assert.match(fs.readFileSync(path.join(dir, dumps[0]), "utf8"), /^dump of caldav_db: --format=custom --schema=dav --file=/);
        assert.equal(fs.readFileSync(path.join(dir, dumps[0].replace(/\.dump$/, ".image")), "utf8"), `${OLD}\n`);
        assert.equal(fs.readFileSync(path.join(dir, DEPLOYED_MARKER), "utf8"), `${NEW}\n${NEW_REFERENCE}\n`);
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes("partial")), []);
    });

    test("an empty schema (first deploy) is not dumped, but the image is recorded", () => {
        const dir = tempDir("backups");
        const result = runScript(dir, 0);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(fs.readdirSync(dir).sort(), [DEPLOYED_MARKER]);
        assert.equal(fs.readFileSync(path.join(dir, DEPLOYED_MARKER), "utf8"), `${NEW}\n${NEW_REFERENCE}\n`);
    });

    test("keeps the newest backup.keep dumps with their image files", () => {
        const dir = tempDir("backups");
        for (const stamp of ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"]) {
            fs.writeFileSync(path.join(dir, `caldav-${stamp}-aaaaaaaaaaaa.dump`), "old");
            fs.writeFileSync(path.join(dir, `caldav-${stamp}-aaaaaaaaaaaa.image`), OLD);
        }
        fs.writeFileSync(path.join(dir, "notes.txt"), "not a dump");
        assert.equal(runScript(dir, 5).status, 0);
        const left = fs.readdirSync(dir).filter((f) => f.startsWith("caldav-")).sort();
        assert.equal(left.length, 4, left.join(" "));
        assert.deepEqual(left.slice(0, 2), ["caldav-20260103T000000Z-aaaaaaaaaaaa.dump", "caldav-20260103T000000Z-aaaaaaaaaaaa.image"]);
        assert.ok(fs.existsSync(path.join(dir, "notes.txt")), "other files are left alone");
    });

    test("an unwritable location fails before anything, naming backup.location, and records nothing", () => {
        const file = path.join(tempDir("backups"), "not-a-directory");
        fs.writeFileSync(file, "");
        const result = runScript(file, 5);
        assert.equal(result.status, 3);
        assert.match(result.stderr, /backup\.location is not a writable directory/);
    });

    test("a failing pg_dump fails the script and leaves no dump and no new record", () => {
        const dir = tempDir("backups");
        fs.writeFileSync(path.join(dir, DEPLOYED_MARKER), `${OLD}\n`);
        const result = runScript(dir, 5, { dumpFails: true });
        assert.notEqual(result.status, 0);
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".dump")), []);
        assert.equal(fs.readFileSync(path.join(dir, DEPLOYED_MARKER), "utf8"), `${OLD}\n`);
    });
});
