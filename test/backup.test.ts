// The dump before an image change and the record after it: what they connect with,
// when they run, what the server waits for (their scripts: backup-scripts.test.ts).
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BACKUP_DIR, BackupError, PGPASS_FILE, pgpassLine } from "../components/backup";
import { localSource } from "./fixtures";
import { containerEnv, evaluate, evaluateOnce, Evaluation, plainStrings, StackConfig, withConfig } from "./harness";

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
        for (const key of ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER"]) {
            assert.equal(dumpEnv[key], serverEnv[key], key);
        }
        assert.deepEqual(dump.inputs.uploads, [{ file: PGPASS_FILE, content: `*:*:*:*:${serverEnv.PGPASSWORD}\n`, permissions: "0600" }],
            "the server's password, in a file for libpq");
        assert.equal(dumpEnv.PGPASSFILE, PGPASS_FILE);
        assert.deepEqual([dumpEnv.PGDATABASE, dumpEnv.PGUSER, dumpEnv.PGPORT], ["caldav_db", "caldav_role", "6543"]);
        assert.equal(dumpEnv.CALDAV_DB_SCHEMA, "dav");
        assert.equal(dumpEnv.DEPLOYING_IMAGE, server.inputs.image, "keyed on the server's next image");
        assert.ok(server.dependencies.includes(dump.urn), "the server is replaced only after the dump");
        const database = evaluation.one("postgresql:index/database:Database");
        assert.ok(dump.dependencies.includes(database.urn), "the dump runs once the database exists");
        assert.deepEqual([dump.inputs.attach, dump.inputs.mustRun, dump.inputs.restart], [true, false, "no"], "runs once, to its end, during up");
        assert.deepEqual(dump.inputs.networksAdvanced.map((n: { name: string }) => n.name), ["messages_internal"]);
    });

    test("its password is a secret on the wire, in no environment variable (docker inspect shows them), and no input holds another in plain text", async () => {
        const evaluation = await run();
        for (const name of ["backup-container", "backup-record-container"]) {
            const container = evaluation.one(CONTAINER, name);
            const password = env(evaluation.one(CONTAINER, "caldav")).PGPASSWORD;
            assert.ok(!Object.keys(env(container)).includes("PGPASSWORD"), name);
            assert.ok(!JSON.stringify(container.inputs.envs).includes(password), `${name}: the password in its environment`);
            const upload = (container.wire.uploads as Record<string, unknown>[])[0];
            assert.ok(SECRET_SIG in (upload.content as object), `${name}: the password file travels as a secret`);
            const plain = JSON.stringify(plainStrings(container.wire));
            for (const secret of [password, ADMIN_PASSWORD, ...evaluation.generated]) {
                assert.ok(!plain.includes(secret), `${name}: a secret in plain text`);
            }
        }
    });

    test("the password file is where libpq is told to look, an absolute path outside backup.location (not beside the dumps)", async () => {
        const dump = (await run()).one(CONTAINER, "backup-container");
        const file = dump.inputs.uploads[0].file as string;
        assert.equal(env(dump).PGPASSFILE, file);
        assert.ok(file.startsWith("/") && file !== BACKUP_DIR && !file.startsWith(`${BACKUP_DIR}/`), file);
    });

    test("the password file escapes what .pgpass gives a meaning to", () => {
        assert.equal(pgpassLine("plain"), "*:*:*:*:plain\n");
        assert.equal(pgpassLine("a:b\\c*d"), "*:*:*:*:a\\:b\\\\c*d\n");
    });

    test("a dump that failed stops the deployment before the server registers, and says how to retry", async () => {
        const evaluation = await run({}, { "backup-container": { exitCode: 3 } });
        assert.ok(evaluation.error instanceof BackupError, String(evaluation.error));
        assert.match(evaluation.error.message, /failed \(exit code 3\), so the CalDAV server was not replaced/);
        assert.match(evaluation.error.message, /docker logs calendars-caldav-test-dump/);
        assert.match(evaluation.error.message, /pulumi up --replace 'urn:pulumi:test::calendars-caldav::calendars:caldav:PreUpgradeDump\$docker:index\/container:Container::backup-container'/);
        assert.deepEqual(evaluation.byType(CONTAINER).map((c) => c.name), ["backup-container"], "no server, no record");
    });

    test("a failed dump ends the program: nothing waits for the server or the record", { timeout: 30_000 }, async () => {
        const dumpFailed = await evaluate(withConfig({ source: localSource() }, {}), { postgresAdminPassword: ADMIN_PASSWORD },
            { networks: { messages_internal: { subnet: "172.29.0.0/16" } }, states: { "backup-container": { exitCode: 3 } }, drain: true });
        assert.ok(dumpFailed.error instanceof BackupError, String(dumpFailed.error));
    });

    test("a dump that succeeded lets the server through", async () => {
        const evaluation = await run({}, { "backup-container": { exitCode: 0 } });
        assert.ifError(evaluation.error);
        assert.deepEqual(evaluation.byType(CONTAINER).map((c) => c.name).sort(), ["backup-container", "backup-record-container", "caldav"]);
    });

    test("backup.location: a retained volume of the stack by default, or a host directory bound as it is", async () => {
        const byDefault = (await run()).one(CONTAINER, "backup-container");
        assert.deepEqual(byDefault.inputs.volumes, [{ volumeName: "calendars-caldav-test-backups", containerPath: BACKUP_DIR }]);
        const volume = (await run()).one("docker:index/volume:Volume");
        assert.deepEqual([volume.inputs.name, volume.retainOnDelete], ["calendars-caldav-test-backups", true]);
        assert.deepEqual(volume.ignoreChanges, ["name"], "a renamed caldav.containerName keeps the dumps' volume");

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

    test("the stack's own directory: STACK reaches the dump and the record", async () => {
        const evaluation = await evaluateOnce(withConfig({ source: localSource() }, {}), { postgresAdminPassword: ADMIN_PASSWORD },
            { networks: { messages_internal: { subnet: "172.29.0.0/16" } }, stack: "staging-eu" });
        assert.ifError(evaluation.error);
        assert.equal(env(evaluation.one(CONTAINER, "backup-container")).STACK, "staging-eu");
        assert.equal(env(evaluation.one(CONTAINER, "backup-record-container")).STACK, "staging-eu");
    });

    test("the record runs once the server is healthy, for the image it runs, again for every new server container", async () => {
        const evaluation = await run();
        assert.ifError(evaluation.error);
        const server = evaluation.one(CONTAINER, "caldav");
        const record = evaluation.one(CONTAINER, "backup-record-container");
        const dump = evaluation.one(CONTAINER, "backup-container");
        assert.equal(record.inputs.name, "calendars-caldav-test-record");
        assert.ok(record.dependencies.includes(server.urn), "after the server (created only once healthy)");
        assert.equal(env(record).SERVER_CONTAINER, "caldav-id", "the server container's ID (the mock's): a new server container runs it again");
        assert.equal(env(record).DEPLOYING_IMAGE, server.inputs.image);
        assert.equal(record.inputs.image, dump.inputs.image, "the tools image");
        assert.deepEqual(record.inputs.volumes, dump.inputs.volumes);
        for (const key of ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "CALDAV_DB_SCHEMA"]) {
            assert.equal(env(record)[key], env(server)[key], key);
        }
        assert.deepEqual(record.inputs.uploads, dump.inputs.uploads);
        assert.deepEqual([record.inputs.attach, record.inputs.mustRun, record.inputs.restart, record.deleteBeforeReplace], [true, false, "no", true]);
        assert.match(record.inputs.command[2], /COMMENT ON SCHEMA/);
        assert.match(dump.inputs.command[2], /pg_dump --format=custom/);
    });

    test("a record that failed fails the up, saying what the next dump would get wrong", async () => {
        const evaluation = await run({}, { "backup-record-container": { exitCode: 2 } });
        assert.ok(evaluation.error instanceof BackupError, String(evaluation.error));
        assert.match(evaluation.error.message, /recording its image in the schema failed \(exit code 2\)/);
        assert.match(evaluation.error.message, /docker logs calendars-caldav-test-record/);
        assert.match(evaluation.error.message, /the next dump would be labelled with the previous image\. Fix the cause and run pulumi up again\.$/);
    });

    test("caldav.containerName, network.name and a backup.location volume reach the dump and the record; the record reports its container", async () => {
        const evaluation = await evaluateOnce(withConfig({ source: localSource() }, {
            caldav: { containerName: "dav-eu" },
            network: { create: true, name: "caldav_net" },
            postgres: { adminHost: "db.internal" },
            backup: { location: "caldav-dumps" },
        }), { postgresAdminPassword: ADMIN_PASSWORD });
        assert.ifError(evaluation.error);
        const dump = evaluation.one(CONTAINER, "backup-container");
        const record = evaluation.one(CONTAINER, "backup-record-container");
        assert.deepEqual([dump.inputs.name, record.inputs.name], ["dav-eu-dump", "dav-eu-record"]);
        assert.equal(evaluation.one("docker:index/volume:Volume").inputs.name, "caldav-dumps");
        for (const container of [dump, record]) {
            assert.deepEqual(container.inputs.volumes, [{ volumeName: "caldav-dumps", containerPath: BACKUP_DIR }], container.name);
            assert.deepEqual(container.inputs.networksAdvanced, [{ name: "caldav_net" }], container.name);
            assert.equal(env(container).DEPLOYING_REFERENCE, evaluation.outputs.image.value, `${container.name}: the reference a rollback redeploys`);
        }
        const component = evaluation.resources.filter((r) => r.type === "calendars:caldav:DeploymentRecord");
        assert.deepEqual(component.map((r) => r.registeredOutputs), [{ containerName: "dav-eu-record" }]);
    });

    test("backup.enabled false: no dump, and the server depends on nothing of it", async () => {
        const evaluation = await run({ backup: { enabled: false } });
        assert.ifError(evaluation.error);
        assert.deepEqual(evaluation.byType(CONTAINER).map((c) => c.name), ["caldav"]);
        assert.equal(evaluation.resources.filter((r) => r.type.startsWith("calendars:caldav:PreUpgradeDump")).length, 0);
    });
});
