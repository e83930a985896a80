// An upgrade rehearsed for real: data written through DAV, a new commit whose migration
// alters the schema, the dump taken before the new image starts, the data after the
// upgrade; then every way a rollback can fail (a truncated dump, a dump the tools image
// cannot read, a restore that fails half-way), each leaving the data and the running
// server as they were; a rollback to the dump and the old image, and one to the image
// already configured; and a dump that cannot be written.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Backups, deployedState, schemaState } from "../harness/backups";
import { dav, freePort, invitation } from "../harness/dav";
import { docker, inspect, psql, removeAll, waitHealthy } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";
import { likeDumpContainer } from "../harness/tools";

const MIGRATION = "src/caldav/sql/migrations/0001_e2e_note.sql";

describe("upgrade with a dump first, then rollbacks that fail safely and one that works", { skip: e2eEnvironment().fixtures !== "standin" && "needs the stand-in's migrations" }, () => {
    let source: CalendarsSource;
    let stack: TestStack;
    let cacheDir: string;
    let caldavPort: number;
    let scratch: string;
    const name = "calendars-caldav-upgrade";
    const volume = `${name}-backups`;
    const backups = new Backups({ volume }, "upgrade");
    const postgres = `${name}-postgres`;
    const user = "alice@example.org";
    /** The dump the upgrade took, and the image its data was used by. */
    let good: string;
    let oldImage: { id: string; reference: string };

    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const url = (suffix: string) => `http://127.0.0.1:${caldavPort}/caldav/${suffix}`;
    const auth = async () => ({ key: ((await outputs()).apiKeys as { outbound: string }).outbound, user });
    const event = async (uid: string) => (await dav(url(`calendars/${user}/work/${uid}.ics`), "GET", await auth())).status;
    // The bundled server's admin role is postgres.adminUser (messages), a superuser.
    const sql = (query: string) => psql(postgres, "messages", "caldav", query);
    const state = () => schemaState(postgres, "messages", "caldav");
    const hasNoteColumn = () => sql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sabre' AND table_name = 'calendarobjects' AND column_name = 'e2e_note'");
    const server = () => inspect("container", name);

    /** The server, the data and the dumps exactly as they were: what every refused or failed rollback must leave. */
    async function assertUntouched(before: { id: string; startedAt?: string; state: string; dumps: Record<string, string> }): Promise<void> {
        const now = server();
        assert.equal(now.Id, before.id, "the same container");
        if (before.startedAt) {
            assert.equal(now.State.StartedAt, before.startedAt, "never stopped");
        }
        assert.equal(now.State.Running, true);
        assert.equal(now.State.Health.Status, "healthy");
        assert.equal(await event("before"), 200, "the event written before the dump");
        assert.equal(await event("after"), 200, "the event written after the dump");
        assert.equal(hasNoteColumn(), "1", "the schema of the running image");
        assert.equal(state(), before.state);
        const dumps = backups.fingerprints();
        for (const [file, sha] of Object.entries(before.dumps)) {
            assert.equal(dumps[file], sha, `${file} is still there, unchanged`);
        }
        assert.equal((stack.config().source as { ref?: string }).ref, undefined, "the stack's config is as it was");
    }
    const snapshot = () => ({ id: server().Id, startedAt: server().State.StartedAt as string, state: state(), dumps: backups.fingerprints() });

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
            caldav: { publish: `127.0.0.1:${caldavPort}`, containerName: name },
            backup: { enabled: true, image, keep: 3 },
            protect: false,
        });
    });

    after(async () => {
        await stack?.dispose();
        removeAll({ volumes: [`${name}-pgdata`, volume] });
        source?.remove();
        fs.rmSync(cacheDir, { recursive: true, force: true });
        fs.rmSync(scratch, { recursive: true, force: true });
    });

    test("the first up dumps nothing (empty schema) and records the image in the schema once it runs", async () => {
        await stack.up();
        assert.deepEqual(backups.files(), []);
        const { image } = await outputs();
        assert.equal(state(), deployedState(inspect("image", image as string).Id, image as string));
    });

    test("an upgrade whose migration alters the schema is dumped first, and the data survives it", async () => {
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/`), "MKCALENDAR", creds)).status, 201);
        assert.equal((await dav(url(`calendars/${user}/work/before.ics`), "PUT", { ...creds, body: invitation("before") })).status, 201);
        const old = await outputs();
        oldImage = { id: inspect("image", old.image as string).Id, reference: old.image as string };

        source.commit("add a column", { [MIGRATION]: "ALTER TABLE calendarobjects ADD COLUMN IF NOT EXISTS e2e_note text;\n" });
        const result = await stack.up();
        const changed = [...result.changes.keys()].map((urn) => urn.split("::").pop());
        assert.ok(changed.includes("backup-container") && changed.includes("caldav") && changed.includes("backup-record-container"), changed.join(" "));

        const dumps = backups.dumps();
        assert.equal(dumps.length, 1, backups.files().join(" "));
        good = dumps[0];
        assert.match(good, new RegExp(`^caldav-000001-\\d{8}T\\d{6}Z-${oldImage.id.slice(7, 19)}\\.dump$`), "numbered, named after the image that used the data");
        assert.equal(backups.read(good.replace(/\.dump$/, ".image")), `${oldImage.id}\n${oldImage.reference}`, "what a rollback redeploys");
        assert.deepEqual(backups.modes().map((line) => line.split(" ")[0]), ["700", "600", "600"], backups.modes().join(", "));
        for (const container of [`${name}-dump`, `${name}-record`]) {
            const env = inspect("container", container).Config.Env as string[];
            assert.ok(!env.some((entry) => entry.startsWith("PGPASSWORD=")), `docker inspect ${container} shows no password`);
        }

        const now = await outputs();
        assert.notEqual(now.sourceCommit, old.sourceCommit);
        assert.equal(state(), deployedState(inspect("image", now.image as string).Id, now.image as string), "recorded once the new image ran");
        assert.equal(hasNoteColumn(), "1", "the new image migrated the schema");
        assert.equal(await event("before"), 200, "the event written before the upgrade");
    });

    test("a config change that replaces the dump container takes no dump and removes none", async () => {
        const dumps = backups.fingerprints();
        stack.configure({ backup: { keep: 1 } });
        const result = await stack.up();
        assert.ok([...result.changes.keys()].some((urn) => urn.endsWith("::backup-container")), "the dump container ran again");
        assert.deepEqual(backups.fingerprints(), dumps);
        stack.configure({ backup: { keep: 3 } });
        await stack.up();
        assert.deepEqual(backups.fingerprints(), dumps);
    });

    test("rollback: --help and bad arguments get the usage, not a stack trace", () => {
        const help = stack.rollback(["--help"]);
        assert.equal(help.status, 0);
        assert.match(help.stdout, /^usage: npm run rollback -- --stack <stack>/);
        const bad = stack.rollback(["--dump", "caldav-latest.dump"]);
        assert.equal(bad.status, 2);
        assert.match(bad.stderr, /--dump caldav-latest\.dump is not a dump file name[\s\S]*usage: npm run rollback/);
        assert.doesNotMatch(bad.stderr, /\n\s+at /);
    });

    test("rollback lists the dumps, and without confirmation changes nothing", async () => {
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/after.ics`), "PUT", { ...creds, body: invitation("after") })).status, 201);
        const before = snapshot();
        const listing = stack.rollback([]);
        assert.equal(listing.status, 0, listing.stderr);
        assert.match(listing.stdout, new RegExp(`${good}\\s+${oldImage.id}\\s+${oldImage.reference}`));
        const refused = stack.rollback(["--dump", good]);
        assert.equal(refused.status, 1, "no confirmation, no terminal: refused");
        assert.match(refused.stdout, /DROP schema sabre of database caldav/);
        assert.match(refused.stderr, /refusing without confirmation/);
        await assertUntouched(before);
    });

    for (const [what, file, spoil, message] of [
        ["a truncated dump (a copy cut short)", "caldav-000002-20261206T000000Z",
            String.raw`head -c "$(($(wc -c < "$1") / 2))" "$1" > "$2"`,
            /could not read from input file: end of file\. Nothing was changed\. The server was not stopped\./],
        ["a dump from a newer pg_dump than the tools image's", "caldav-000003-20261206T000000Z",
            // The archive's minor format version (byte 6) one past what this pg_restore reads.
            String.raw`cp "$1" "$2"; v=$(od -An -tu1 -j6 -N1 "$2" | tr -d " "); printf "%b" "\0$(printf %o $((v + 1)))" | dd of="$2" bs=1 seek=6 conv=notrunc 2>/dev/null`,
            /unsupported version \(1\.\d+\) in file header\. Nothing was changed\. The server was not stopped\./],
    ] as const) {
        test(`rollback to ${what} fails before it stops anything, and the data is still served`, async () => {
            const spoiled = `${file}-${oldImage.id.slice(7, 19)}.dump`;
            backups.spoiled(good, spoiled, spoil);
            const before = snapshot();
            const result = stack.rollback(["--dump", spoiled, "--yes"]);
            assert.equal(result.status, 1, result.stdout);
            assert.match(result.stderr, message);
            await assertUntouched(before);
        });
    }

    test("a restore that fails half-way is rolled back whole, and the server the tool stopped runs again", async () => {
        // A dump whose restore fails after the DROP, inside the transaction: a table owned
        // by a role that no longer exists when it is restored.
        sql("CREATE ROLE ghost; CREATE TABLE sabre.zz_ghost (id integer); ALTER TABLE sabre.zz_ghost OWNER TO ghost; GRANT SELECT ON sabre.zz_ghost TO caldav");
        const failing = `caldav-000004-20261206T000000Z-${oldImage.id.slice(7, 19)}.dump`;
        likeDumpContainer(`${name}-dump`, `cd /backups/upgrade && pg_dump --format=custom --schema=sabre --file=${failing} && cp ${good.replace(/\.dump$/, ".image")} ${failing.replace(/\.dump$/, ".image")}`);
        sql("DROP TABLE sabre.zz_ghost; DROP ROLE ghost");
        const before = { ...snapshot(), startedAt: undefined };
        const result = stack.rollback(["--dump", failing, "--yes"]);
        assert.equal(result.status, 1, result.stdout);
        assert.match(result.stderr, /failed and was rolled back, nothing was changed: .*role "ghost" does not exist/);
        assert.match(result.stderr, new RegExp(`${name} was started again\\.`));
        assert.match(result.stdout, new RegExp(`stopped ${name}`), "it did get that far");
        await waitHealthy(name);
        await assertUntouched(before);
    });

    test("rollback restores the dump and the image it was taken from, and proves it", async () => {
        const dumps = backups.fingerprints();
        const done = stack.rollback(["--dump", good, "--yes"]);
        assert.equal(done.status, 0, done.stderr);
        assert.match(done.stdout, new RegExp(`runs ${oldImage.id} again, healthy, with the data of ${good}`));
        const out = await outputs();
        assert.equal(server().Image, oldImage.id, "the old image runs again");
        assert.equal(out.image, oldImage.reference);
        assert.equal((stack.config().source as { ref: string }).ref, oldImage.reference.split(":")[1], "still built from source, at the old commit");
        assert.equal(server().State.Health.Status, "healthy");
        assert.equal(hasNoteColumn(), "0", "the schema is the dump's");
        assert.equal(await event("before"), 200);
        assert.equal(await event("after"), 404, "written after the dump: gone");
        assert.equal(state(), deployedState(oldImage.id, oldImage.reference));
        assert.deepEqual(backups.fingerprints(), dumps, "the data is already the old image's: no dump taken, none removed");
    });

    test("rollback to the image already configured restores the data and starts the server it stopped", async () => {
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/later.ics`), "PUT", { ...creds, body: invitation("later") })).status, 201);
        const done = stack.rollback(["--dump", good, "--yes"]);
        assert.equal(done.status, 0, done.stderr);
        assert.match(done.stdout, /source\.ref is already [0-9a-f]{40}/);
        assert.match(done.stdout, new RegExp(`started ${name}`));
        assert.equal(server().State.Running, true);
        assert.equal(server().Image, oldImage.id);
        assert.equal(await event("later"), 404);
        assert.equal(await event("before"), 200);
    });

    test("the README's take-and-restore by hand works, and stops before the server when the dump is bad", async () => {
        // The code block as an operator copies it, with this stack's names.
        const readme = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
        const block = /\*\*Take or restore a dump by hand\*\*[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
        assert.ok(block, "the README has the block");
        const script = block.replace(/^ {2}/gm, "")
            .replaceAll("calendars-caldav-prod-backups", volume)
            .replaceAll("calendars-caldav-prod", name)
            .replaceAll("postgres:17.6-bookworm", e2eEnvironment().postgresImage);
        const bash = (text: string) => spawnSync("bash", ["-euo", "pipefail", "-c", text], {
            encoding: "utf8", env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost },
        });
        const creds = await auth();
        assert.equal((await dav(url(`calendars/${user}/work/manual.ics`), "PUT", { ...creds, body: invitation("manual") })).status, 201);
        const all = bash(script);
        assert.equal(all.status, 0, all.stderr);
        await waitHealthy(name);
        assert.equal(await event("manual"), 200, "taken and restored: the same data");
        assert.ok(backups.files().includes("manual.dump"));
        assert.ok(backups.modes().some((line) => line === "600 manual.dump"), backups.modes().join(", "));

        // A dump cut short: the restore part stops at its first step, before `docker stop`.
        backups.sh("head -c 2000 manual.dump > cut && mv cut manual.dump");
        const before = server().State.StartedAt;
        const restore = script.slice(script.indexOf("# restore"));
        const failed = bash(`${script.slice(0, script.indexOf("tools 'pg_dump"))}\n${restore}`);
        assert.notEqual(failed.status, 0);
        assert.match(failed.stderr, /pg_restore: error: could not read from input file/);
        assert.equal(server().State.StartedAt, before, "never stopped");
        assert.equal(await event("manual"), 200);
        backups.sh("rm manual.dump");
    });

    test("a stopped server, refreshed as the drift check does, is replaced by the next up, on the same data", async () => {
        docker("stop", name);
        stack.cli(["refresh", "--yes", "--skip-preview"]);
        const planned = await stack.preview();
        const planFor = [...planned.changes.entries()].find(([urn]) => urn.endsWith("::caldav"));
        assert.match(planFor?.[1] ?? "no change", /replace/, `the preview plans to replace the server: ${[...planned.changes.entries()].join(" ")}`);
        await stack.up();
        assert.equal(server().State.Running, true);
        await waitHealthy(name);
        assert.equal(await event("before"), 200, "the same data");
        await stack.preview({ expectNoChanges: true });
    });

    test("a new postgres.database is refused, naming the name to set back, and nothing is renamed or restarted", async () => {
        const before = server();
        stack.configure({ postgres: { database: "calendars" } });
        assert.match((await stack.upInOwnProcess()) ?? "up succeeded",
            /postgres\.database is calendars, but this stack's database is caldav: renaming it in place is not supported\. Set postgres\.database back to caldav/);
        assert.equal(sql("SELECT count(*) FROM pg_database WHERE datname = 'caldav'"), "1", "still named caldav");
        assert.equal(server().Id, before.Id);
        assert.equal(server().State.StartedAt, before.State.StartedAt);
        assert.equal(await event("before"), 200);
        stack.configure({ postgres: { database: "caldav" } });
    });

    test("a dump that cannot be written stops the upgrade and leaves the server running the old image", async () => {
        const before = server();
        const notADirectory = path.join(scratch, "not-a-directory");
        fs.writeFileSync(notADirectory, "");
        stack.configure({ source: { ref: "main" }, backup: { location: notADirectory } });
        // The program fails (the dump's result), so it runs in a process of its own.
        assert.match((await stack.upInOwnProcess()) ?? "up succeeded", /the dump before the image change failed \(exit code 3\), so the CalDAV server was not replaced/);
        const now = server();
        assert.equal(now.Id, before.Id, "the same container");
        assert.equal(now.State.Health.Status, "healthy");
        assert.equal(now.Image, before.Image);
        assert.equal(inspect("container", `${name}-dump`).State.ExitCode, 3, "the script's own refusal (see its log)");
        stack.configure({ backup: { location: volume } });
    });
});
