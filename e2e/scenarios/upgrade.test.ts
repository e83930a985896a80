// An upgrade rehearsed for real: data written through DAV, a new commit whose migration
// alters the schema, the dump taken before the new image starts, the data after the
// upgrade, a rollback to the dump and the old image; and a dump that cannot be written.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dav, freePort, invitation } from "../harness/dav";
import { docker, inspect, psql, removeAll } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const MIGRATION = "src/caldav/sql/migrations/0001_e2e_note.sql";

describe("upgrade with a dump first, then a rollback", { skip: e2eEnvironment().fixtures !== "standin" && "needs the stand-in's migrations" }, () => {
    let source: CalendarsSource;
    let stack: TestStack;
    let cacheDir: string;
    let caldavPort: number;
    let scratch: string;
    const name = "calendars-caldav-upgrade";
    const backups = `${name}-backups`;
    const postgres = `${name}-postgres`;
    const user = "alice@example.org";

    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const url = (suffix: string) => `http://127.0.0.1:${caldavPort}/caldav/${suffix}`;
    const auth = async () => ({ key: ((await outputs()).apiKeys as { outbound: string }).outbound, user });
    /** Files in the backups volume, sorted. */
    const backupFiles = () => docker("run", "--rm", "--volume", `${backups}:/b`, "--entrypoint", "ls", e2eEnvironment().postgresImage, "-A", "/b")
        .split("\n").filter(Boolean).sort();
    const readBackup = (file: string) => docker("run", "--rm", "--volume", `${backups}:/b`, "--entrypoint", "cat", e2eEnvironment().postgresImage, `/b/${file}`);
    // The bundled server's admin role is postgres.adminUser (messages).
    const sql = (query: string) => psql(postgres, "messages", "caldav", query);
    const hasNoteColumn = () => sql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sabre' AND table_name = 'calendarobjects' AND column_name = 'e2e_note'");

    before(async () => {
        source = CalendarsSource.create();
        cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-sources-"));
        scratch = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-upgrade-"));
        caldavPort = await freePort();
        const image = e2eEnvironment().postgresImage;
        stack = await TestStack.create("upgrade", {
            source: { repo: source.url, cacheDir },
            network: { create: true, subnet: "172.29.0.0/16" },
            postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: await freePort(), bundledImage: image },
            caldav: { publish: `127.0.0.1:${caldavPort}` },
            backup: { enabled: true, image, keep: 3 },
            protect: false,
        });
    });

    after(async () => {
        await stack?.dispose();
        removeAll({ volumes: [`${name}-pgdata`, backups] });
        source?.remove();
        fs.rmSync(cacheDir, { recursive: true, force: true });
        fs.rmSync(scratch, { recursive: true, force: true });
    });

    test("the first up records the image; an empty schema is not dumped", async () => {
        await stack.up();
        assert.deepEqual(backupFiles(), [".deployed-image"]);
        const { image } = await outputs();
        assert.equal(readBackup(".deployed-image"), `${inspect("image", image as string).Id}\n${image}`, "its ID, then its reference");
    });

    test("an upgrade whose migration alters the schema is dumped first, and the data survives it", async () => {
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/`), "MKCALENDAR", creds)).status, 201);
        assert.equal((await dav(url(`calendars/${user}/work/before.ics`), "PUT", { ...creds, body: invitation("before") })).status, 201);
        const old = await outputs();
        const oldImageId = inspect("image", old.image as string).Id;

        source.commit("add a column", { [MIGRATION]: "ALTER TABLE calendarobjects ADD COLUMN IF NOT EXISTS e2e_note text;\n" });
        const result = await stack.up();
        const changed = [...result.changes.keys()].map((urn) => urn.split("::").pop());
        assert.ok(changed.includes("backup-container") && changed.includes("caldav"), changed.join(" "));

        const dumps = backupFiles().filter((f) => f.endsWith(".dump"));
        assert.equal(dumps.length, 1, backupFiles().join(" "));
        assert.match(dumps[0], new RegExp(`^caldav-\\d{8}T\\d{6}Z-${oldImageId.slice(7, 19)}\\.dump$`), "named after the image that used the data");
        assert.equal(readBackup(dumps[0].replace(/\.dump$/, ".image")), `${oldImageId}\n${old.image}`, "what a rollback redeploys");

        const now = await outputs();
        assert.notEqual(now.sourceCommit, old.sourceCommit);
        assert.equal(hasNoteColumn(), "1", "the new image migrated the schema");
        assert.equal((await dav(url(`calendars/${user}/work/before.ics`), "GET", creds)).status, 200, "the event written before the upgrade");
    });

    test("rollback restores the dump and the image it was taken from", async () => {
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/after.ics`), "PUT", { ...creds, body: invitation("after") })).status, 201);
        const [dump] = backupFiles().filter((f) => f.endsWith(".dump"));
        const [oldImageId, oldReference] = readBackup(dump.replace(/\.dump$/, ".image")).split("\n");

        const listing = stack.rollback([]);
        assert.equal(listing.status, 0, listing.stderr);
        assert.match(listing.stdout, new RegExp(`${dump}\\s+${oldImageId}\\s+${oldReference}`));
        const refused = stack.rollback(["--dump", dump]);
        assert.equal(refused.status, 1, "no confirmation, no terminal: refused");
        assert.match(refused.stdout, /DROP schema sabre of database caldav/);
        assert.match(refused.stderr, /refusing without confirmation/);
        assert.equal(hasNoteColumn(), "1", "nothing changed on refusal");

        const done = stack.rollback(["--dump", dump, "--yes"]);
        assert.equal(done.status, 0, done.stderr);
        const out = await outputs();
        assert.equal(inspect("container", out.containerName as string).Image, oldImageId, "the old image runs again");
        assert.equal(out.image, oldReference);
        assert.equal(inspect("container", out.containerName as string).State.Health.Status, "healthy");
        assert.equal(hasNoteColumn(), "0", "the schema is the dump's");
        assert.equal((await dav(url(`calendars/${user}/work/before.ics`), "GET", creds)).status, 200);
        assert.equal((await dav(url(`calendars/${user}/work/after.ics`), "GET", creds)).status, 404, "written after the dump: gone");
        assert.equal(backupFiles().filter((f) => f.endsWith(".dump")).length, 2, "the rollback's up dumped the restored data too");
    });

    test("a dump that cannot be written stops the upgrade and leaves the server running the old image", async () => {
        const before = await outputs();
        const container = inspect("container", before.containerName as string);
        const notADirectory = path.join(scratch, "not-a-directory");
        fs.writeFileSync(notADirectory, "");
        stack.configure({ backup: { location: notADirectory } });
        source.commit("another release", { "src/caldav/RELEASE": "3\n" });
        // The program fails (the dump's result), so it runs in a process of its own.
        assert.match(stack.upInOwnProcess() ?? "up succeeded", /the dump before the image change failed \(exit code 3\), so the CalDAV server was not replaced/);
        const after = inspect("container", before.containerName as string);
        assert.equal(after.Id, container.Id, "the same container");
        assert.equal(after.State.Health.Status, "healthy");
        assert.equal(after.Image, container.Image);
        assert.equal(inspect("container", `${name}-dump`).State.ExitCode, 3, "the script's own refusal (see its log)");
        stack.configure({ backup: { location: backups } });
    });
});
