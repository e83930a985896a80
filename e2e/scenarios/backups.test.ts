// Backups as a platform team runs them, for real: two stacks sharing one host directory
// (one builds from source, one runs published images), a rollback of the published one,
// a dump taken after the clock ran ahead, a new backup.location, and a renamed
// caldav.containerName. Each check is made from outside: files, the tool's listing, DAV.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Backups, hostDirectory } from "../harness/backups";
import { Calendar } from "../harness/calendar";
import { freePort } from "../harness/dav";
import { docker, exists, inspect, removeAll } from "../harness/docker";
import { e2eEnvironment } from "../harness/environment";
import { CalendarsSource } from "../harness/fixtures";
import { TestStack } from "../harness/stack";

const MIGRATION = "src/caldav/sql/migrations/0002_e2e_backups.sql";
// A local name, as an operator pins a release: the provider uses it without pulling.
const PUBLISHED = "calendars-e2e/published-caldav";

describe("backups of two stacks in one host directory, a published-image rollback, the clock, a move and a rename", { skip: e2eEnvironment().fixtures !== "standin" && "needs the stand-in's migrations" }, () => {
    let source: CalendarsSource;
    let cacheDir: string;
    let shared: string;
    let a: TestStack;
    let b: TestStack;
    let calendarA: Calendar;
    let calendarB: Calendar;
    const backupsA = () => new Backups({ dir: shared }, "backups-a");
    const backupsB = () => new Backups({ dir: shared }, "backups-b");
    const moved = "calendars-e2e-backups-moved";
    const outputs = async (stack: TestStack) => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const imageId = (reference: string) => inspect("image", reference).Id as string;
    /** A new version of the server for stack A: a new migration (the image copies them) is a new image. */
    const upgradeA = async (tag: string) => {
        source.commit(`upgrade A to ${tag}`, { [`src/caldav/sql/migrations/0100_e2e_${tag}.sql`]: "SELECT 1;\n" });
        await a.up();
    };
    /** A new commit of the Calendars source, built and tagged as a release would be published. */
    const release = (tag: string, files?: Record<string, string>) => {
        if (files) {
            source.commit(`release ${tag}`, files);
        }
        docker("build", "--quiet", "--tag", `${PUBLISHED}:${tag}`, `${source.dir}/src/caldav`);
        return `${PUBLISHED}:${tag}`;
    };

    before(async () => {
        source = CalendarsSource.create();
        cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-sources-"));
        shared = hostDirectory(fs.mkdtempSync(path.join(os.tmpdir(), "calendars-e2e-shared-")), "backups");
        const postgresImage = e2eEnvironment().postgresImage;
        const [portA, portB] = [await freePort(), await freePort()];
        a = await TestStack.create("backups-a", {
            source: { repo: source.url, cacheDir },
            network: { create: true, name: "calendars_e2e_a", subnet: "172.29.0.0/16" },
            postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: await freePort(), bundledImage: postgresImage },
            caldav: { publish: `127.0.0.1:${portA}` },
            backup: { enabled: true, image: postgresImage, keep: 2, location: shared },
            protect: false,
        });
        b = await TestStack.create("backups-b", {
            prebuiltImage: release("r1"),
            network: { create: true, name: "calendars_e2e_b", subnet: "172.30.0.0/16", backendIp: "172.30.0.30" },
            postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: await freePort(), bundledImage: postgresImage },
            caldav: { publish: `127.0.0.1:${portB}` },
            backup: { enabled: true, image: postgresImage, keep: 2, location: shared },
            protect: false,
        });
        calendarA = new Calendar(a, portA);
        calendarB = new Calendar(b, portB);
    });

    after(async () => {
        await a?.dispose();
        await b?.dispose();
        removeAll({ volumes: ["calendars-caldav-backups-a-pgdata", "calendars-caldav-backups-b-pgdata", moved] });
        for (const tag of ["r1", "r2"]) {
            if (exists("image", `${PUBLISHED}:${tag}`)) {
                docker("image", "rm", `${PUBLISHED}:${tag}`);
            }
        }
        source?.remove();
        for (const dir of [cacheDir, shared && path.dirname(shared)]) {
            if (dir) {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }
    });

    test("two stacks deploy with a directory each in the shared host directory, readable by root only", async () => {
        await a.up();
        await b.up();
        assert.deepEqual(fs.readdirSync(shared).sort(), ["backups-a", "backups-b"]);
        for (const dir of ["backups-a", "backups-b"]) {
            assert.equal(fs.statSync(path.join(shared, dir)).mode & 0o777, 0o700, dir);
        }
        for (const calendar of [calendarA, calendarB]) {
            assert.equal(await calendar.create(), 201);
            assert.equal(await calendar.put("before"), 201);
        }
    });

    test("a published-image stack: the upgrade dumps, the rollback goes back through prebuiltImage", async () => {
        const r1 = (await outputs(b)).image as string;
        const r2 = release("r2", { [MIGRATION]: "ALTER TABLE calendarobjects ADD COLUMN IF NOT EXISTS e2e_backups text;\n" });
        b.configure({ prebuiltImage: r2 });
        await b.up();
        const [dump] = backupsB().dumps();
        assert.match(dump, new RegExp(`^caldav-000001-\\d{8}T\\d{6}Z-${imageId(r1).slice(7, 19)}\\.dump$`));
        assert.equal(backupsB().read(dump.replace(/\.dump$/, ".image")), `${imageId(r1)}\n${r1}`);
        assert.deepEqual(backupsA().dumps(), [], "nothing in the other stack's directory");
        assert.equal(await calendarB.put("after"), 201);

        const done = b.rollback(["--dump", dump, "--yes"]);
        assert.equal(done.status, 0, done.stderr);
        assert.equal(b.config().prebuiltImage, r1, "still a published image");
        assert.equal((b.config().source as { ref?: string } | undefined)?.ref, undefined, "never switched to building from source");
        assert.equal(inspect("container", (await outputs(b)).containerName as string).Image, imageId(r1));
        assert.equal(await calendarB.get("before"), 200);
        assert.equal(await calendarB.get("after"), 404);
    });

    test("stacks sharing a directory neither prune, list nor label each other's dumps", async () => {
        const bDumps = backupsB().fingerprints();
        const oldA = (await outputs(a)).image as string;
        await upgradeA("a1");
        const [dump] = backupsA().dumps();
        assert.match(dump, new RegExp(`^caldav-000001-\\d{8}T\\d{6}Z-${imageId(oldA).slice(7, 19)}\\.dump$`), "a sequence of its own");
        assert.deepEqual(backupsB().fingerprints(), bDumps, "B's dumps untouched by A's dump and pruning");
        const listA = a.rollback([]);
        const listB = b.rollback([]);
        assert.equal(listA.status, 0, listA.stderr);
        assert.match(listA.stdout, new RegExp(dump));
        for (const file of Object.keys(bDumps)) {
            assert.doesNotMatch(listA.stdout, new RegExp(file));
            assert.match(listB.stdout, new RegExp(file));
        }
        assert.doesNotMatch(listB.stdout, new RegExp(dump));
    });

    test("a dump taken after the clock ran ahead does not make the next one sort oldest: the new dump is kept", async () => {
        const [first] = backupsA().dumps();
        // Taken while the host clock was far ahead (NTP step, restored snapshot): its time sorts after any taken now.
        const ahead = first.replace(/^caldav-000001-\d{8}T\d{6}Z-/, "caldav-000002-29991231T235959Z-");
        backupsA().spoiled(first, ahead, 'cp "$1" "$2"');
        await upgradeA("a2");
        const dumps = backupsA().dumps();
        assert.equal(dumps.length, 2, `backup.keep 2: ${dumps.join(" ")}`);
        assert.ok(!dumps.includes(first), "the oldest by sequence was removed");
        assert.ok(dumps.includes(ahead));
        const taken = dumps.find((file) => file.startsWith("caldav-000003-"));
        assert.ok(taken && !taken.includes("-2999"), `the dump just taken is kept: ${dumps.join(" ")}`);
        assert.match(a.rollback([]).stdout, new RegExp(`newest first[^\\n]*\\n\\s+${taken}`), "and listed first");
    });

    test("a new backup.location takes no dump until the image changes, then a labelled, usable one", async () => {
        const before = await outputs(a);
        a.configure({ backup: { location: moved } });
        await a.up();
        const target = new Backups({ volume: moved }, "backups-a");
        assert.deepEqual(target.dumps(), [], "no image change: nothing to dump");
        await upgradeA("a3");
        const [dump] = target.dumps();
        const id = imageId(before.image as string);
        assert.match(dump, new RegExp(`^caldav-000001-\\d{8}T\\d{6}Z-${id.slice(7, 19)}\\.dump$`), "labelled with the image, not unknown");
        assert.equal(target.read(dump.replace(/\.dump$/, ".image")), `${id}\n${before.image}`);
        assert.match(a.rollback([]).stdout, new RegExp(`${dump}\\s+${id}\\s+${before.image}`));
        assert.equal(await calendarA.get("before"), 200);
    });

    test("renaming caldav.containerName keeps the data and the dumps", async () => {
        const renamed = "calendars-e2e-renamed";
        const dumps = new Backups({ volume: moved }, "backups-a").fingerprints();
        a.configure({ caldav: { containerName: renamed } });
        await a.up();
        assert.equal(inspect("container", renamed).State.Health.Status, "healthy");
        assert.ok(!exists("container", "calendars-caldav-backups-a"), "the old server is gone");
        assert.ok(exists("container", `${renamed}-postgres`));
        const data = inspect("container", `${renamed}-postgres`).Mounts.map((m: { Name?: string }) => m.Name);
        assert.deepEqual(data, ["calendars-caldav-backups-a-pgdata"], "the same data volume, not a new empty one");
        assert.ok(!exists("volume", `${renamed}-pgdata`));
        assert.equal(await calendarA.get("before"), 200, "the calendar written at the start");
        assert.deepEqual(new Backups({ volume: moved }, "backups-a").fingerprints(), dumps);
        const listing = a.rollback([]);
        assert.equal(listing.status, 0, listing.stderr);
        for (const file of Object.keys(dumps)) {
            assert.match(listing.stdout, new RegExp(file), "the tool still finds the dumps");
        }
    });
});
