// The rollback command, branch by branch, against a fake Docker host and stack that
// record what the tool does: nothing changes before every check passed, every failure
// leaves the server as it found it (or says exactly where things stand), and success
// is reported only once proven. (The real thing runs in e2e/scenarios/upgrade.test.ts.)
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, test } from "node:test";
import { LIST_SCRIPT, RESTORE_SCRIPT, VERIFY_SCRIPT } from "../components/backup";
import {
    ContainerInfo, Host, ImageConfig, main, Options, parseArgs, parseListing, Redeploy, redeployConfig, rollback,
    RollbackError, StackOps, toolsSetup, USAGE,
} from "../scripts/rollback";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const OLD_ID = `sha256:${"a".repeat(64)}`;
const NEW_ID = `sha256:${"b".repeat(64)}`;
const DUMP = "caldav-000004-20261128T041500Z-aaaaaaaaaaaa.dump";
const BUILT = `calendars-caldav:${COMMIT}`;
const PUBLISHED = "ghcr.io/suitenumerique/calendars-caldav:v0.1.0";
const SERVER = "calendars-caldav-prod";

describe("rollback arguments", () => {
    test("lists without --dump, acts on one dump, asks unless --yes", () => {
        const list = parseArgs(["--stack", "prod"])!;
        assert.deepEqual([list.stack, list.dump, list.yes], ["prod", undefined, false]);
        const act = parseArgs(["--stack", "prod", "--dump", DUMP, "--yes", "--work-dir", "/srv/stacks"])!;
        assert.deepEqual([act.dump, act.yes, act.workDir], [DUMP, true, "/srv/stacks"]);
        assert.equal(parseArgs(["--stack", "prod", "--help"]), undefined);
    });

    test("refuses what it cannot mean, saying what is expected", () => {
        assert.throws(() => parseArgs([]), /--stack <stack> is required/);
        assert.throws(() => parseArgs(["--stack"]), /--stack needs a value/);
        assert.throws(() => parseArgs(["--stack", "--yes"]), /--stack needs a value/);
        assert.throws(() => parseArgs(["--stack", "prod", "--force"]), /unknown argument --force/);
        for (const dump of ["../etc/passwd", "caldav-latest.dump", `${DUMP}; rm -rf /`, "manual.dump",
            "caldav-20261128T041500Z-3f2a1b4c5d6e.dump", "caldav-000004-20261128T041500Z-AAAAAAAAAAAA.dump"]) {
            assert.throws(() => parseArgs(["--stack", "prod", "--dump", dump]), /is not a dump file name/, dump);
        }
    });

    test("the command: --help prints the usage and exits 0; bad arguments print the message and the usage, exit 2, no stack trace", async () => {
        const logged: string[] = [];
        const stderr: string[] = [];
        const io = { log: (line: string) => logged.push(line), error: (text: string) => stderr.push(text), confirm: async () => undefined };
        const never = async (): Promise<StackOps> => assert.fail("no stack is opened");
        assert.equal(await main(["--help"], io, never), 0);
        assert.deepEqual([logged, stderr], [[USAGE], []]);
        for (const [argv, message] of [[[], /--stack <stack> is required/], [["--stack", "prod", "--dump", "x.dump"], /not a dump file name/]] as const) {
            stderr.length = 0;
            assert.equal(await main([...argv], io, never), 2);
            assert.match(stderr.join(""), message);
            assert.match(stderr.join(""), /usage: npm run rollback -- --stack <stack>/);
            assert.doesNotMatch(stderr.join(""), /\n\s+at /, "no stack trace");
        }
    });
});

describe("which config brings the dump's image back, without changing how the stack gets its image", () => {
    const names = { tags: [] as string[], digests: [] as string[] };

    test("a stack that builds gets the commit the image was built from", () => {
        assert.deepEqual(redeployConfig({ sourceRef: "main" }, { id: OLD_ID, reference: BUILT }, names), { key: "source.ref", value: COMMIT });
        assert.deepEqual(redeployConfig({}, { id: OLD_ID }, { tags: ["my-caldav:v1", `my-caldav:${COMMIT}`], digests: [] }),
            { key: "source.ref", value: COMMIT }, "dumps without a reference: the image's own tags");
    });

    test("a stack that runs a published image stays on published images, even when the tag is a commit", () => {
        const shaTagged = `ghcr.io/suitenumerique/calendars-caldav:${COMMIT}`;
        assert.deepEqual(redeployConfig({ prebuiltImage: PUBLISHED }, { id: OLD_ID, reference: shaTagged }, names),
            { key: "prebuiltImage", value: shaTagged });
        const digest = `ghcr.io/suitenumerique/calendars-caldav@sha256:${"c".repeat(64)}`;
        assert.deepEqual(redeployConfig({ prebuiltImage: PUBLISHED }, { id: OLD_ID }, { tags: [PUBLISHED], digests: [digest] }),
            { key: "prebuiltImage", value: digest }, "the digest pins exactly that image");
        assert.deepEqual(redeployConfig({ prebuiltImage: PUBLISHED }, { id: OLD_ID }, { tags: ["x/caldav:latest", "x/caldav:v2"], digests: [] }),
            { key: "prebuiltImage", value: "x/caldav:v2" }, "latest is no pin");
    });

    test("refuses when the dump's image cannot come back the way the stack gets its images", () => {
        assert.throws(() => redeployConfig({ sourceRef: "main" }, { id: OLD_ID, reference: PUBLISHED }, names),
            (e: Error) => e instanceof RollbackError && /was not built from a commit, and this stack builds from source/.test(e.message));
        assert.throws(() => redeployConfig({ prebuiltImage: PUBLISHED }, { id: OLD_ID }, { tags: ["x/caldav:latest"], digests: [] }),
            /has no pinned name on this host/);
    });

    test("the listing: unknown images and missing references are told apart", () => {
        const listing = parseListing(`${DUMP} ${OLD_ID} ${BUILT}\ncaldav-000003-20261128T041500Z-unknown.dump unknown unknown\ncaldav-000002-20261128T041500Z-unknown.dump  \n`);
        assert.deepEqual([...listing.entries()], [
            [DUMP, { id: OLD_ID, reference: BUILT }],
            ["caldav-000003-20261128T041500Z-unknown.dump", { id: "unknown", reference: undefined }],
            ["caldav-000002-20261128T041500Z-unknown.dump", { id: "unknown", reference: undefined }],
        ]);
    });
});

/** A Docker host and a stack that record what the tool does to them. */
class World {
    steps: string[] = [];
    logged: string[] = [];
    /** The server container, as `docker inspect` would show it. */
    server = { running: true, image: NEW_ID, healthy: true };
    /** The image `up` makes the server run (the dump's, once the config asks for it). */
    upRuns: string | undefined = OLD_ID;
    config: ImageConfig = { sourceRef: "main" };
    images: Record<string, { tags: string[]; digests: string[] }> = { [OLD_ID]: { tags: [BUILT], digests: [] } };
    listing = `${DUMP} ${OLD_ID} ${BUILT}\n`;
    fail: { list?: boolean; check?: boolean; preview?: boolean; apply?: boolean; up?: boolean; tables?: boolean; verify?: boolean; health?: boolean } = {};
    /** The image IDs the tool looked up on the host. */
    looked: string[] = [];
    /** The time each health wait was given, in seconds. */
    waits: number[] = [];
    /** What the preview would delete. */
    deletes = 0;
    configFile = "as committed";

    container(name: string): ContainerInfo | undefined {
        if (name === `${SERVER}-dump`) {
            return {
                Image: "sha256:tools", Config: { Env: ["PGHOST=postgresql", "PGDATABASE=caldav", "CALDAV_DB_SCHEMA=sabre", "STACK=prod", "PGPASSWORD=x"] },
                Mounts: [{ Type: "volume", Name: `${SERVER}-backups`, Source: "/var/lib/docker/volumes/x", Destination: "/backups" }],
                NetworkSettings: { Networks: { messages_internal: {} } }, State: { Running: false },
            };
        }
        if (name === SERVER) {
            return {
                Image: this.server.image, Config: { Env: [] }, Mounts: [], NetworkSettings: { Networks: {} },
                State: { Running: this.server.running, Health: { Status: this.server.healthy ? "healthy" : "unhealthy" } },
            };
        }
        return undefined;
    }

    host(): Host {
        return {
            container: (name) => this.container(name),
            image: (id) => {
                this.looked.push(id);
                return this.images[id];
            },
            stop: (name) => {
                this.steps.push(`stop ${name}`);
                this.server.running = false;
            },
            start: (name) => {
                this.steps.push(`start ${name}`);
                this.server.running = true;
            },
            tools: (setup, script, env = {}) => {
                assert.equal(setup.mount, `${SERVER}-backups:/backups`);
                assert.equal(setup.network, "messages_internal");
                // The tools image of the dump container, and that container (its password file is copied from it).
                assert.equal(setup.image, "sha256:tools");
                assert.equal(setup.container, `${SERVER}-dump`);
                if (script === LIST_SCRIPT) {
                    return this.fail.list
                        ? { status: 2, stdout: "", stderr: "sh: cannot open /backups/prod: Permission denied\n" }
                        : { status: 0, stdout: this.listing, stderr: "" };
                }
                if (script === VERIFY_SCRIPT) {
                    this.steps.push("verify");
                    if (this.fail.verify) {
                        // The table count printed, then the state query failed.
                        return { status: 1, stdout: "12\n", stderr: "psql: error: connection to server was lost\n" };
                    }
                    return { status: 0, stdout: this.fail.tables ? "0\n" : "12\nstate\n", stderr: "" };
                }
                assert.equal(script, RESTORE_SCRIPT);
                this.steps.push(`${env.MODE} ${env.DUMP}`);
                if (env.MODE === "check" && this.fail.check) {
                    return { status: 4, stdout: "", stderr: `${env.DUMP} cannot be read by the tools image: end of file. Nothing was changed.\n` };
                }
                if (env.MODE === "apply" && this.fail.apply) {
                    return { status: 5, stdout: "", stderr: `restoring ${env.DUMP} failed and was rolled back, nothing was changed: ERROR\n` };
                }
                return { status: 0, stdout: `${env.MODE} ok\n`, stderr: "" };
            },
            healthy: async (name, timeoutSeconds) => {
                this.steps.push(`wait ${name}`);
                this.waits.push(timeoutSeconds);
                return this.server.running && this.server.healthy && !this.fail.health;
            },
        };
    }

    stack(): StackOps {
        return {
            outputs: async () => ({ containerName: SERVER }),
            imageConfig: async () => ({ ...this.config }),
            setConfig: async (change: Redeploy) => {
                this.steps.push(`set ${change.key} ${change.value}`);
                this.configFile = `${change.key}=${change.value}`;
            },
            restoreConfig: () => {
                if (this.configFile !== "as committed") {
                    this.steps.push("restore config");
                    this.configFile = "as committed";
                }
            },
            preview: async () => {
                this.steps.push("preview");
                if (this.fail.preview) {
                    throw new Error("source.ref 0123 was not found\n");
                }
                return this.deletes;
            },
            up: async () => {
                this.steps.push("up");
                if (this.fail.up) {
                    throw new Error("image build failed\n");
                }
                if (this.upRuns !== this.server.image) {
                    // A new container, running.
                    this.server = { running: true, image: this.upRuns ?? this.server.image, healthy: true };
                }
            },
        };
    }

    async run(options: Partial<Options> = {}, confirm: () => Promise<void> = async () => undefined): Promise<void> {
        await rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/srv", ...options }, this.stack(), this.host(),
            { log: (line) => this.logged.push(line), error: () => assert.fail("rollback() throws, main() prints"), confirm });
    }
}

describe("rollback to a dump", () => {
    test("proves the dump and the config first, then stops, restores, redeploys, and reports only what it verified", async () => {
        const world = new World();
        await world.run();
        assert.deepEqual(world.steps, [
            `check ${DUMP}`, `set source.ref ${COMMIT}`, "preview", `stop ${SERVER}`, `apply ${DUMP}`, "up", `wait ${SERVER}`, "verify",
        ]);
        assert.deepEqual(world.server, { running: true, image: OLD_ID, healthy: true });
        assert.equal(world.configFile, `source.ref=${COMMIT}`, "kept: the operator commits it");
        assert.match(world.logged.at(-1)!, new RegExp(`stack prod runs ${OLD_ID} again, healthy, with the data of ${DUMP} \\(12 tables in schema sabre\\)`));
    });

    test("without --dump it lists and changes nothing", async () => {
        const world = new World();
        await world.run({ dump: undefined });
        assert.deepEqual(world.steps, []);
        assert.deepEqual(world.logged, ["dumps of stack prod, newest first (file, image its data was used by):", `  ${DUMP}  ${OLD_ID}  ${BUILT}`]);
        world.listing = "";
        world.logged = [];
        await world.run({ dump: undefined });
        assert.deepEqual(world.logged, ["no dumps of stack prod yet"]);
    });

    test("the plan names what is overwritten, and a refusal changes nothing", async () => {
        const world = new World();
        await assert.rejects(world.run({ yes: false }, async () => {
            throw new RollbackError("not confirmed; nothing was changed");
        }), /not confirmed/);
        assert.deepEqual(world.steps, []);
        assert.match(world.logged.join("\n"), /DROP schema sabre of database caldav on postgresql with everything in it/);
        assert.match(world.logged.join("\n"), new RegExp(`set source.ref to ${COMMIT} in Pulumi.prod.yaml`));
    });

    test("a dump that does not read back whole: nothing changes, the server is not stopped", async () => {
        const world = new World();
        world.fail.check = true;
        await assert.rejects(world.run(), (e: Error) => e instanceof RollbackError &&
            /cannot be read by the tools image: end of file\. Nothing was changed\. The server was not stopped\./.test(e.message));
        assert.deepEqual(world.steps, [`check ${DUMP}`]);
        assert.deepEqual(world.server, { running: true, image: NEW_ID, healthy: true });
        assert.equal(world.configFile, "as committed");
    });

    test("a config that does not preview: the config file is put back, the server is not stopped", async () => {
        const world = new World();
        world.fail.preview = true;
        await assert.rejects(world.run(), /does not preview with source\.ref 0123456789abcdef0123456789abcdef01234567: source\.ref 0123 was not found\nNothing was changed/);
        assert.deepEqual(world.steps, [`check ${DUMP}`, `set source.ref ${COMMIT}`, "preview", "restore config"]);
        assert.equal(world.configFile, "as committed");
        assert.equal(world.server.running, true);
    });

    test("a preview that would delete resources: refused before anything changes", async () => {
        const world = new World();
        world.deletes = 25;
        await assert.rejects(world.run(), /the stack's preview would delete 25 resource\(s\): run pulumi preview --diff to see why\. Nothing was changed \(Pulumi\.prod\.yaml is as it was\)\./);
        assert.deepEqual(world.steps, [`check ${DUMP}`, `set source.ref ${COMMIT}`, "preview", "restore config"]);
        assert.equal(world.server.running, true);
        const same = new World();
        same.config = { sourceRef: COMMIT };
        same.deletes = 1;
        await assert.rejects(same.run(), /would delete 1 resource\(s\).* Nothing was changed\.$/);
        assert.deepEqual(same.steps, [`check ${DUMP}`, "preview"]);
    });

    test("no server container after the up: said, not started", async () => {
        const world = new World();
        const host = world.host();
        let upDone = false;
        const stack = { ...world.stack(), up: async () => { upDone = true; } };
        await assert.rejects(rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/" }, stack,
            { ...host, container: (name) => (upDone && name === SERVER ? undefined : world.container(name)) },
            { log: () => undefined, error: () => undefined, confirm: async () => undefined }),
        new RegExp(`is restored, but: there is no container ${SERVER}`));
        assert.ok(!world.steps.includes(`start ${SERVER}`));
    });

    test("a restore that fails: rolled back, the config put back, the server started again", async () => {
        const world = new World();
        world.fail.apply = true;
        await assert.rejects(world.run(), new RegExp(`failed and was rolled back, nothing was changed: ERROR ${SERVER} was started again\\.`));
        assert.deepEqual(world.steps.slice(-3), [`apply ${DUMP}`, "restore config", `start ${SERVER}`]);
        assert.deepEqual(world.server, { running: true, image: NEW_ID, healthy: true });
        assert.equal(world.configFile, "as committed");
    });

    test("a restore that fails while the server was already stopped leaves it stopped", async () => {
        const world = new World();
        world.server.running = false;
        world.fail.apply = true;
        await assert.rejects(world.run(), (e: Error) => !/started again/.test(e.message));
        assert.ok(!world.steps.some((step) => step.startsWith("st")), world.steps.join(", "));
    });

    test("an up that fails after the restore says where things stand and what to do, and starts nothing", async () => {
        const world = new World();
        world.fail.up = true;
        await assert.rejects(world.run(), (e: Error) => /the data of .* is restored, but pulumi up failed: image build failed/.test(e.message) &&
            new RegExp(`config asks for source.ref ${COMMIT}; ${SERVER} is not running the dump's image\\. Fix the cause and run pulumi up`).test(e.message));
        assert.equal(world.steps.at(-1), "up");
        assert.equal(world.server.running, false);
    });

    test("the image already configured: no config change, and the server the tool stopped is started again", async () => {
        const world = new World();
        world.config = { sourceRef: COMMIT };
        // The server runs the dump's image already: up changes nothing.
        world.server.image = OLD_ID;
        await world.run();
        assert.deepEqual(world.steps, [`check ${DUMP}`, "preview", `stop ${SERVER}`, `apply ${DUMP}`, "up", `start ${SERVER}`, `wait ${SERVER}`, "verify"]);
        assert.equal(world.server.running, true);
        assert.match(world.logged.join("\n"), new RegExp(`run pulumi up \\(source.ref is already ${COMMIT}\\) and start ${SERVER}`));
    });

    test("a published-image stack is rolled back through prebuiltImage", async () => {
        const world = new World();
        world.config = { prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:v0.2.0" };
        world.listing = `${DUMP} ${OLD_ID} ${PUBLISHED}\n`;
        await world.run();
        assert.ok(world.steps.includes(`set prebuiltImage ${PUBLISHED}`), world.steps.join(", "));
    });

    for (const [what, spoil, message] of [
        ["not healthy", (w: World) => { w.fail.health = true; }, new RegExp(`${SERVER} is not healthy after 180 s`)],
        ["another image", (w: World) => { w.upRuns = `sha256:${"c".repeat(64)}`; }, new RegExp(`runs sha256:c+, not the dump's image ${OLD_ID}`)],
        ["no table", (w: World) => { w.fail.tables = true; }, /schema sabre has no table/],
    ] as const) {
        test(`success is not reported when the server ends up ${what}`, async () => {
            const world = new World();
            spoil(world);
            await assert.rejects(world.run(), (e: Error) => /is restored, but: /.test(e.message) && message.test(e.message));
        });
    }

    test("refuses before anything when the dump is unknown, its image is gone, or the stack has no dump container", async () => {
        const unknown = new World();
        await assert.rejects(unknown.run({ dump: "caldav-000009-20261128T041500Z-aaaaaaaaaaaa.dump" }), /is not among the dumps of stack prod/);
        const gone = new World();
        gone.images = {};
        await assert.rejects(gone.run(), /is not on this host .* Nothing was changed\./);
        const legacy = new World();
        legacy.listing = `caldav-000001-20261128T041500Z-unknown.dump unknown unknown\n`;
        await assert.rejects(legacy.run({ dump: "caldav-000001-20261128T041500Z-unknown.dump" }), /\(unknown\) is not on this host/);
        for (const world of [unknown, gone, legacy]) {
            assert.deepEqual(world.steps, []);
        }
        const noDumps = new World();
        const host = noDumps.host();
        await assert.rejects(rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/" }, noDumps.stack(), { ...host, container: () => undefined },
            { log: () => undefined, error: () => undefined, confirm: async () => undefined }), /no dump container calendars-caldav-prod-dump on this Docker host/);
    });
});

describe("rollback arguments and the command, further", () => {
    test("-h is --help, and the stacks' files are looked for in this repository unless --work-dir says otherwise", () => {
        assert.equal(parseArgs(["--stack", "prod", "-h"]), undefined);
        assert.equal(parseArgs(["--stack", "prod"])!.workDir, path.join(__dirname, ".."));
        assert.equal(parseArgs(["--stack", "prod", "--work-dir", "stacks/../deploy"])!.workDir, path.resolve("deploy"));
    });

    test("a dump file name with anything before or after it is refused (it is a path inside the tools container)", () => {
        for (const dump of [`../${DUMP}`, `x${DUMP}`, `/backups/prod/${DUMP}`, `${DUMP}.partial`]) {
            assert.throws(() => parseArgs(["--stack", "prod", "--dump", dump]), /is not a dump file name/, dump);
        }
    });

    test("with a dump and --yes, the command rolls back without asking and exits 0", async () => {
        const world = new World();
        const errors: string[] = [];
        const io = { log: (line: string) => world.logged.push(line), error: (text: string) => errors.push(text), confirm: async () => assert.fail("--yes: not asked") };
        assert.equal(await main(["--stack", "prod", "--dump", DUMP, "--yes"], io, async () => world.stack(), world.host()), 0);
        assert.deepEqual(errors, []);
        assert.ok(world.steps.includes("up"), world.steps.join(", "));
    });

    test("without --yes the operator is asked for the stack's name; a refusal exits 1 with the tool's message, no stack trace", async () => {
        const world = new World();
        const asked: string[] = [];
        const errors: string[] = [];
        const io = {
            log: (line: string) => world.logged.push(line),
            error: (text: string) => errors.push(text),
            confirm: async (stack: string) => {
                asked.push(stack);
                throw new RollbackError("not confirmed; nothing was changed");
            },
        };
        assert.equal(await main(["--stack", "prod", "--dump", DUMP], io, async () => world.stack(), world.host()), 1);
        assert.deepEqual([asked, errors], [["prod"], ["rollback: not confirmed; nothing was changed"]]);
        assert.deepEqual(world.steps, []);
    });

    test("an unexpected failure exits 1 and shows where it came from", async () => {
        const errors: string[] = [];
        const io = { log: () => undefined, error: (text: string) => errors.push(text), confirm: async () => undefined };
        const broken = async (): Promise<StackOps> => {
            throw new TypeError("cannot read the backend");
        };
        assert.equal(await main(["--stack", "prod"], io, broken, new World().host()), 1);
        assert.equal(errors.length, 1);
        assert.match(errors[0], /^rollback: TypeError: cannot read the backend\n\s+at /);
    });
});

describe("which config brings the dump's image back, further", () => {
    const names = { tags: [] as string[], digests: [] as string[] };

    test("a tag is a commit only when it is a full commit SHA and nothing else", () => {
        for (const reference of [`calendars-caldav:build-${COMMIT}`, `calendars-caldav:${COMMIT}-dirty`, `calendars-caldav:${COMMIT}0`]) {
            assert.throws(() => redeployConfig({ sourceRef: "main" }, { id: OLD_ID, reference }, names), /was not built from a commit/, reference);
        }
    });

    test("the refusals name the image and say what to set", () => {
        assert.throws(() => redeployConfig({ sourceRef: "main" }, { id: OLD_ID, reference: PUBLISHED }, names), (e: Error) => {
            assert.equal(e.message, `the dump was taken from ${PUBLISHED}, which was not built from a commit, and this stack builds from source: ` +
                "set source.ref to the commit of that release (or prebuiltImage, to run a published image) yourself, then run the rollback again. Nothing was changed.");
            return true;
        });
        assert.throws(() => redeployConfig({ sourceRef: "main" }, { id: OLD_ID }, { tags: ["x/caldav:v2"], digests: [] }),
            new RegExp(`: the dump was taken from ${OLD_ID}, which was not built from a commit`), "no reference: the image ID");
        assert.throws(() => redeployConfig({ prebuiltImage: PUBLISHED }, { id: OLD_ID }, { tags: ["x/caldav:latest"], digests: [] }), (e: Error) => {
            assert.equal(e.message, `the image of this dump (${OLD_ID}) has no pinned name on this host, and the stack runs prebuiltImage: ` +
                "set prebuiltImage to that release yourself, then run the rollback again");
            return true;
        });
    });
});

describe("the dump container's settings, as the tools container reuses them", () => {
    const info = (mounts: ContainerInfo["Mounts"], env = ["STACK=prod", "PGHOST=postgresql", "PGPASSFILE=/run/secrets/caldav.pgpass", "X=a=b"]): ContainerInfo => ({
        Image: "sha256:tools", Config: { Env: env }, Mounts: mounts, NetworkSettings: { Networks: { messages_internal: {} } }, State: { Running: false },
    });
    // The tools image (postgres) declares a VOLUME: Docker gives the container an anonymous volume there too.
    const anonymous = { Type: "volume", Name: "0f3c9a", Source: "/var/lib/docker/volumes/0f3c9a/_data", Destination: "/var/lib/postgresql/data" };

    test("backup.location a volume: the volume by name; a host directory: that directory; whatever else is mounted", () => {
        const volume = { Type: "volume", Name: `${SERVER}-backups`, Source: "/var/lib/docker/volumes/x/_data", Destination: "/backups" };
        const bind = { Type: "bind", Source: "/srv/caldav-dumps", Destination: "/backups" };
        assert.equal(toolsSetup(`${SERVER}-dump`, info([anonymous, volume])).mount, `${SERVER}-backups:/backups`);
        assert.equal(toolsSetup(`${SERVER}-dump`, info([anonymous, bind])).mount, "/srv/caldav-dumps:/backups");
        const setup = toolsSetup(`${SERVER}-dump`, info([bind]));
        assert.deepEqual([setup.container, setup.image, setup.network], [`${SERVER}-dump`, "sha256:tools", "messages_internal"]);
        assert.deepEqual(setup.env, { STACK: "prod", PGHOST: "postgresql", PGPASSFILE: "/run/secrets/caldav.pgpass", X: "a=b" });
    });

    test("a dump container without the backups, or from before per-stack directories, is refused saying why", () => {
        assert.throws(() => toolsSetup(`${SERVER}-dump`, info([anonymous])), (e: Error) => e instanceof RollbackError &&
            e.message === `${SERVER}-dump has no /backups mount`);
        assert.throws(() => toolsSetup(`${SERVER}-dump`, info([anonymous, { ...anonymous, Destination: "/backups" }], ["PGHOST=postgresql"])),
            (e: Error) => e instanceof RollbackError &&
                e.message === `${SERVER}-dump predates per-stack dump directories: run pulumi up once (it changes no image) and try again`);
    });
});

describe("rollback to a dump, further", () => {
    const PLAN_STEPS_2_3 = [
        `  2. stop the CalDAV container ${SERVER} (the service is down until step 4 ends);`,
        `  3. in one transaction, DROP schema sabre of database caldav on postgresql with everything in it ` +
            `(every calendar, event and share written since the dump) and restore ${DUMP};`,
    ];

    test("what the operator reads: the plan before the question, then each step as it is done, and what to commit", async () => {
        const world = new World();
        await world.run({}, async () => {
            world.logged.push("(confirmed)");
        });
        assert.deepEqual(world.logged, [
            "This will, for stack prod:",
            `  1. check that ${DUMP} reads back whole and that the stack previews with source.ref ${COMMIT}, deleting nothing;`,
            ...PLAN_STEPS_2_3,
            `  4. set source.ref to ${COMMIT} in Pulumi.prod.yaml and run pulumi up, which runs image ${OLD_ID} again.`,
            "(confirmed)",
            "check ok",
            `stopped ${SERVER}`,
            "apply ok",
            `set source.ref ${COMMIT}: commit Pulumi.prod.yaml`,
            `stack prod runs ${OLD_ID} again, healthy, with the data of ${DUMP} (12 tables in schema sabre)`,
        ]);
        assert.deepEqual(world.waits, [180], "the server is given 180 s to become healthy");
    });

    test("the image already configured: the plan says so, nothing to commit, and the server it stopped is started again", async () => {
        const world = new World();
        world.config = { sourceRef: COMMIT };
        world.server.image = OLD_ID;
        await world.run();
        assert.deepEqual(world.logged, [
            "This will, for stack prod:",
            `  1. check that ${DUMP} reads back whole and that the stack previews, deleting nothing;`,
            ...PLAN_STEPS_2_3,
            `  4. run pulumi up (source.ref is already ${COMMIT}) and start ${SERVER} on image ${OLD_ID}.`,
            "check ok",
            `stopped ${SERVER}`,
            "apply ok",
            `started ${SERVER}`,
            `stack prod runs ${OLD_ID} again, healthy, with the data of ${DUMP} (12 tables in schema sabre)`,
        ]);
    });

    test("a published-image stack already on the dump's image: prebuiltImage is left as it is", async () => {
        const world = new World();
        world.config = { prebuiltImage: PUBLISHED };
        world.listing = `${DUMP} ${OLD_ID} ${PUBLISHED}\n`;
        await world.run();
        assert.deepEqual(world.steps, [`check ${DUMP}`, "preview", `stop ${SERVER}`, `apply ${DUMP}`, "up", `wait ${SERVER}`, "verify"]);
        assert.ok(world.logged.includes(`  4. run pulumi up (prebuiltImage is already ${PUBLISHED}) and start ${SERVER} on image ${OLD_ID}.`), world.logged.join("\n"));
    });

    test("a listing names dumps whose image is unknown as such", async () => {
        const world = new World();
        world.listing = `${DUMP} ${OLD_ID} ${BUILT}\ncaldav-000003-20261128T041500Z-unknown.dump unknown unknown\n`;
        await world.run({ dump: undefined });
        assert.deepEqual(world.logged.slice(1), [`  ${DUMP}  ${OLD_ID}  ${BUILT}`, "  caldav-000003-20261128T041500Z-unknown.dump  unknown  "]);
    });

    test("a dump whose image is unknown is not looked up on the host, even where an image is named unknown", async () => {
        const world = new World();
        world.listing = "caldav-000001-20261128T041500Z-unknown.dump unknown unknown\n";
        world.images.unknown = { tags: [`calendars-caldav:${COMMIT}`], digests: [] };
        await assert.rejects(world.run({ dump: "caldav-000001-20261128T041500Z-unknown.dump" }), /\(unknown\) is not on this host/);
        assert.deepEqual([world.looked, world.steps], [[], []]);
    });

    test("a stack that was never deployed, or whose dumps cannot be listed, is refused before anything", async () => {
        const undeployed = new World();
        await assert.rejects(rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/" }, { ...undeployed.stack(), outputs: async () => ({}) },
            undeployed.host(), { log: () => undefined, error: () => undefined, confirm: async () => undefined }),
        (e: Error) => e instanceof RollbackError && e.message === "stack prod has no containerName output: deploy it first");
        const unlisted = new World();
        unlisted.fail.list = true;
        await assert.rejects(unlisted.run(), (e: Error) => e instanceof RollbackError &&
            e.message === "listing the dumps failed: sh: cannot open /backups/prod: Permission denied");
        for (const world of [undeployed, unlisted]) {
            assert.deepEqual([world.steps, world.logged], [[], []]);
        }
    });

    test("the messages of a failed check, preview, restore or up quote the tool's words without their line ends", async () => {
        const check = new World();
        check.fail.check = true;
        await assert.rejects(check.run(), (e: Error) => e.message ===
            `${DUMP} cannot be read by the tools image: end of file. Nothing was changed. The server was not stopped.`);

        const preview = new World();
        preview.config = { sourceRef: COMMIT };
        preview.fail.preview = true;
        await assert.rejects(preview.run(), (e: Error) => e.message === "the stack does not preview: source.ref 0123 was not found\nNothing was changed.");

        const running = new World();
        running.fail.apply = true;
        await assert.rejects(running.run(), (e: Error) => e.message ===
            `restoring ${DUMP} failed and was rolled back, nothing was changed: ERROR ${SERVER} was started again.`);
        const stopped = new World();
        stopped.server.running = false;
        stopped.fail.apply = true;
        await assert.rejects(stopped.run(), (e: Error) => e.message === `restoring ${DUMP} failed and was rolled back, nothing was changed: ERROR`);

        const up = new World();
        up.fail.up = true;
        await assert.rejects(up.run(), (e: Error) => e.message ===
            `the data of ${DUMP} is restored, but pulumi up failed: image build failed\n` +
            `State: schema sabre holds the data of ${DUMP}; the stack's config asks for source.ref ${COMMIT}; ` +
            `${SERVER} is not running the dump's image. Fix the cause and run pulumi up for stack prod; ` +
            "do not start the old container, whose newer image would migrate the restored data again.");
    });

    test("no server container before the rollback (removed by hand): nothing to stop, the up creates it", async () => {
        const world = new World();
        const host = world.host();
        let upDone = false;
        const stack = { ...world.stack(), up: async () => {
            upDone = true;
            world.server = { running: true, image: OLD_ID, healthy: true };
        } };
        await rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/" }, stack,
            { ...host, container: (name) => (name === SERVER && !upDone ? undefined : world.container(name)) },
            { log: (line) => world.logged.push(line), error: () => undefined, confirm: async () => undefined });
        assert.deepEqual(world.steps, [`check ${DUMP}`, `set source.ref ${COMMIT}`, "preview", `apply ${DUMP}`, `wait ${SERVER}`, "verify"]);
    });

    test("every problem after the up is named, one after the other, with what to do", async () => {
        const world = new World();
        const host = world.host();
        let upDone = false;
        const stack = { ...world.stack(), up: async () => { upDone = true; } };
        world.fail.tables = true;
        await assert.rejects(rollback({ stack: "prod", dump: DUMP, yes: true, workDir: "/" }, stack,
            { ...host, container: (name) => (upDone && name === SERVER ? undefined : world.container(name)) },
            { log: () => undefined, error: () => undefined, confirm: async () => undefined }),
        (e: Error) => e.message === `the data of ${DUMP} is restored, but: there is no container ${SERVER}; ` +
            `${SERVER} runs nothing, not the dump's image ${OLD_ID}; schema sabre has no table (0 tables). ` +
            `Look at docker logs ${SERVER}, fix the cause and run pulumi up for stack prod.`);
    });

    test("a schema that cannot be checked is not reported as rolled back, and the message quotes why", async () => {
        const world = new World();
        world.fail.verify = true;
        await assert.rejects(world.run(), (e: Error) =>
            e.message.includes("schema sabre has no table (psql: error: connection to server was lost). Look at docker logs"));
    });
});
