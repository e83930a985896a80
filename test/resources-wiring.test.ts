// What the program registers, seen as an operator sees it in `docker ps` / `pulumi
// stack`: the bundled PostgreSQL's wiring, the dump container, the created network,
// generated secrets and component outputs. Distinct values everywhere, so that a
// swap of two settings shows. Complements program.test.ts and backup.test.ts.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BackupError, DUMP_SCRIPT } from "../components/backup";
import { localSource } from "./fixtures";
import { containerEnv, evaluate, evaluateOnce, Evaluation, Recorded, StackConfig, unwrapSecrets, withConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";
const PASSWORD = "random:index/randomPassword:RandomPassword";
const ADMIN_PASSWORD = "admin-secret-value";

/** A self-contained stack, every PostgreSQL setting away from its default. */
function bundled(): StackConfig {
    return {
        source: localSource(),
        network: { create: true },
        postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: 15433, port: 6544, adminUser: "pgadmin", host: "caldav-pg" },
        caldav: { containerName: "dav-eu" },
        backup: { keep: 4 },
    };
}

async function run(config: StackConfig, secrets: Record<string, string> = {}, states?: Record<string, Record<string, unknown>>): Promise<Evaluation> {
    const evaluation = await evaluateOnce(config, secrets, { networks: { messages_internal: { subnet: "172.29.0.0/16" } }, states });
    assert.ifError(evaluation.error);
    return evaluation;
}

const env = containerEnv;

function component(evaluation: Evaluation, type: string): Recorded {
    const matches = evaluation.resources.filter((r) => r.type === type);
    assert.equal(matches.length, 1, type);
    return matches[0];
}

describe("bundled PostgreSQL", () => {
    test("is named after the CalDAV container, keeps its data in a retained volume of the same stem, on a fixed name", async () => {
        const evaluation = await run(bundled());
        const postgres = evaluation.one(CONTAINER, "postgres");
        assert.equal(postgres.inputs.name, "dav-eu-postgres");
        assert.equal(postgres.deleteBeforeReplace, true, "a fixed container name: the old one goes first");
        const volume = evaluation.one("docker:index/volume:Volume", "postgres");
        assert.deepEqual([volume.inputs.name, volume.retainOnDelete], ["dav-eu-pgdata", true]);
        assert.deepEqual(postgres.inputs.volumes.map((v: { volumeName: string }) => v.volumeName), ["dav-eu-pgdata"]);
        assert.equal(evaluation.one("docker:index/remoteImage:RemoteImage", "postgres").inputs.keepLocally, true, "other stacks may run the same image");
        assert.deepEqual(component(evaluation, "calendars:caldav:BundledPostgres").registeredOutputs, { containerName: "dav-eu-postgres" });
    });

    test("listens on postgres.port under postgres.host, publishes postgres.adminPort on loopback, for postgres.adminUser", async () => {
        const evaluation = await run(bundled());
        const postgres = evaluation.one(CONTAINER, "postgres");
        const vars = env(postgres);
        assert.deepEqual([vars.POSTGRES_USER, vars.PGPORT], ["pgadmin", "6544"]);
        assert.deepEqual(postgres.inputs.ports, [{ internal: 6544, external: 15433, ip: "127.0.0.1" }]);
        assert.deepEqual(postgres.inputs.networksAdvanced, [{ name: "messages_internal", aliases: ["caldav-pg"] }]);
        const tests = postgres.inputs.healthcheck.tests as string[];
        assert.deepEqual([tests.length, tests[0]], [2, "CMD-SHELL"], "one shell command line: it chains the marker test and pg_isready with &&");
        const probe = tests.join(" ");
        assert.match(probe, /pg_isready -h 127\.0\.0\.1 -p 6544 -U pgadmin -d postgres/);
        assert.equal(postgres.inputs.wait, true, "up waits for a healthy server");
        assert.ok(postgres.inputs.waitTimeout > 0);

        const server = env(evaluation.one(CONTAINER, "caldav"));
        assert.deepEqual([server.PGHOST, server.PGPORT], ["caldav-pg", "6544"], "the server reaches it by its network name");
        const provider = evaluation.one("pulumi:providers:postgresql").inputs;
        assert.deepEqual([provider.host, provider.port, provider.username, provider.sslmode], ["127.0.0.1", "15433", "pgadmin", "disable"]);
    });

    test("the provider logs in with the very password the server was given, which stays secret", async () => {
        const evaluation = await run(bundled());
        const postgres = evaluation.one(CONTAINER, "postgres");
        assert.equal(env(postgres).POSTGRES_PASSWORD_FILE, postgres.inputs.uploads[0].file, "the image reads the uploaded file");
        const password = postgres.inputs.uploads[0].content;
        assert.ok(password && password === evaluation.generated.find((value) => value.startsWith("postgresadmin")));
        const provider = evaluation.one("pulumi:providers:postgresql");
        assert.equal(provider.inputs.password, password);
        assert.ok(!JSON.stringify(provider.wire).includes(`"password":"${password}"`), "a secret on the wire");
    });
});

describe("generated secrets", () => {
    test("every generated password and key is alphanumeric (safe in env files, headers and psql variables)", async () => {
        for (const config of [bundled(), withConfig(bundled(), { apiKeys: { mode: "separate" } })]) {
            const generated = (await run(config)).byType(PASSWORD);
            assert.ok(["database-password", "postgres-admin"].every((name) => generated.some((r) => r.name === name)));
            assert.ok(generated.some((r) => r.name.startsWith("api-keys-")));
            for (const resource of generated) {
                assert.equal(resource.inputs.special, false, resource.name);
                assert.ok(resource.inputs.length >= 32, `${resource.name} is long enough not to be guessed`);
            }
        }
    });
});

describe("the dump container", () => {
    test("runs the dump script in a shell, under a fixed name of its own, told which image is being deployed", async () => {
        const evaluation = await run(bundled());
        const dump = evaluation.one(CONTAINER, "backup-container");
        assert.equal(dump.inputs.name, "dav-eu-dump");
        assert.deepEqual(dump.inputs.command, ["sh", "-c", DUMP_SCRIPT]);
        const vars = env(dump);
        assert.equal(vars.DEPLOYING_REFERENCE, evaluation.outputs.image.value, "what a rollback redeploys");
        assert.equal(vars.KEEP, "4");
        assert.deepEqual([vars.PGHOST, vars.PGPORT], ["caldav-pg", "6544"]);
        assert.deepEqual(component(evaluation, "calendars:caldav:PreUpgradeDump").registeredOutputs, { containerName: "dav-eu-dump" });
    });

    test("the tools image follows postgres.bundledImage unless backup.image is set", async () => {
        const evaluation = await run(withConfig(bundled(), { postgres: { bundledImage: "postgres:16.4-bookworm" } }));
        assert.equal(evaluation.one("docker:index/remoteImage:RemoteImage", "backup-tools").inputs.name, "postgres:16.4-bookworm");
        assert.equal(evaluation.one("docker:index/remoteImage:RemoteImage", "postgres").inputs.name, "postgres:16.4-bookworm");
    });

    test("a failed dump is a BackupError that says how to go on without a dump, and why it may have failed", async () => {
        const evaluation = await evaluate(bundled(), {}, { states: { "backup-container": { exitCode: 2 } } });
        assert.ok(evaluation.error instanceof BackupError, String(evaluation.error));
        assert.match(evaluation.error.message, /docker logs dav-eu-dump/);
        assert.match(evaluation.error.message, /PostgreSQL unreachable, pg_dump of backup\.image older than the server/);
        assert.match(evaluation.error.message, /To deploy without a dump, set backup\.enabled false\.$/);
    });
});

describe("the created network and the components' outputs", () => {
    test("a created network is a bridge, and the network component reports its name", async () => {
        const evaluation = await run(withConfig(bundled(), { network: { name: "caldav_net" } }));
        assert.equal(evaluation.one("docker:index/network:Network").inputs.driver, "bridge");
        assert.deepEqual(unwrapSecrets(component(evaluation, "calendars:caldav:Network").registeredOutputs), { name: "caldav_net" });
        assert.equal(evaluation.outputs.networkName.value, "caldav_net");
    });

    test("the server and image components report what they run and where", async () => {
        const evaluation = await run(withConfig(bundled(), { caldav: { baseUri: "/dav/" } }));
        assert.deepEqual(component(evaluation, "calendars:caldav:Server").registeredOutputs, {
            containerName: "dav-eu",
            containerId: "caldav-id",
            caldavUrl: evaluation.outputs.caldavUrl.value,
            callbackUrl: evaluation.outputs.callbackUrl.value,
        });
        const image = component(evaluation, "calendars:caldav:Image").registeredOutputs!;
        assert.deepEqual([image.reference, image.sourceCommit], [evaluation.outputs.image.value, evaluation.outputs.sourceCommit.value]);
        assert.equal(image.imageId, evaluation.one(CONTAINER, "caldav").inputs.image);
    });

    test("caldav.baseUri and callbackBaseUrl reach the server's environment as they were set", async () => {
        const evaluation = await run(withConfig(bundled(), { caldav: { baseUri: "/dav/eu/" }, callbackBaseUrl: "https://calendars.example.org/api-root/" }));
        const server = env(evaluation.one(CONTAINER, "caldav"));
        assert.equal(server.CALDAV_BASE_URI, "/dav/eu/");
        assert.equal(server.CALDAV_CALLBACK_BASE_URL, "https://calendars.example.org/api-root");
        assert.equal(evaluation.outputs.callbackUrl.value, "https://calendars.example.org/api-root/api/v1.0/caldav-scheduling-callback/");
    });

    test("no publicUrl unless caldav.publish is set", async () => {
        assert.equal((await run(bundled())).outputs.publicUrl.value, undefined);
    });

    test("the database component reports its name and owner, and the password only as a secret", async () => {
        const evaluation = await run(withConfig(bundled(), { postgres: { database: "dav_data", user: "dav_owner" } }));
        const outputs = component(evaluation, "calendars:caldav:Database").registeredOutputs!;
        assert.deepEqual(unwrapSecrets(outputs), {
            databaseName: "dav_data",
            user: "dav_owner",
            password: evaluation.generated.find((value) => value.startsWith("databasepassword")),
        });
        assert.deepEqual([evaluation.outputs.databaseName.value, evaluation.outputs.databaseUser.value], ["dav_data", "dav_owner"], "the stack outputs");
    });

    test("the keys component reports the three keys", async () => {
        const evaluation = await run(withConfig(bundled(), { apiKeys: { mode: "separate" } }), {});
        const outputs = unwrapSecrets(component(evaluation, "calendars:caldav:ApiKeys").registeredOutputs);
        assert.deepEqual(outputs, evaluation.outputs.apiKeys.value);
    });
});

describe("the build context", () => {
    test("a context directory without a Dockerfile fails before anything registers, saying where the server lives", async () => {
        const evaluation = await evaluate(withConfig(bundled(), { source: { context: "src" } }), {});
        assert.match(evaluation.error?.message ?? "", /source\.context src has no Dockerfile at commit [0-9a-f]{40}/);
        assert.match(evaluation.error?.message ?? "", /set source\.context to the CalDAV server's directory/);
        assert.ok(evaluation.error?.message.includes(`of source.repo ${localSource().repo};`), "names the repository it looked in");
        assert.deepEqual(evaluation.resources, []);
    });
});

describe("the stack's config", () => {
    test("a key of the project the program does not read fails the run, naming it; other namespaces are left alone", async () => {
        const evaluation = await evaluate(withConfig(bundled(), { imagename: "caldav", "docker:sshOpts": "[]" }), {});
        assert.match(evaluation.error?.message ?? "", /^invalid configuration \(1 problem\):\n {2}- calendars-caldav:imagename is not a known key/);
        assert.deepEqual(evaluation.resources, []);
    });
});

describe("attaching to an existing network", () => {
    const attach = (network: StackConfig, existing: Record<string, { subnet: string }>) =>
        evaluate({ source: localSource(), network, postgres: { adminHost: "db.internal" } }, { postgresAdminPassword: ADMIN_PASSWORD }, { networks: existing });

    test("a network.name that names no network is refused, naming it", async () => {
        const evaluation = await attach({ name: "dav_shared_net" }, { messages_internal: { subnet: "172.29.0.0/16" } });
        assert.match(evaluation.error?.message ?? "", /^network\.name dav_shared_net is not a network on this Docker host/);
        assert.deepEqual(evaluation.resources, []);
    });

    test("a network.subnet other than the network's is refused, naming both", async () => {
        const evaluation = await attach({ name: "dav_shared_net", subnet: "10.77.0.0/24", backendIp: "10.77.0.30" }, { dav_shared_net: { subnet: "172.29.0.0/16" } });
        assert.match(evaluation.error?.message ?? "", /^network\.subnet is 10\.77\.0\.0\/24, but network dav_shared_net has 172\.29\.0\.0\/16;/);
        assert.deepEqual(evaluation.resources, []);
    });

    test("a network without an IPv4 subnet is refused, saying so", async () => {
        const evaluation = await evaluate({ source: localSource(), postgres: { adminHost: "db.internal" } }, { postgresAdminPassword: ADMIN_PASSWORD },
            { networks: { messages_internal: { subnet: "fd00:ca1d::/64" } } });
        assert.match(evaluation.error?.message ?? "", /network\.subnet is 172\.29\.0\.0\/16, but network messages_internal has no IPv4 subnet; set network\.subnet/);
    });
});

describe("an external PostgreSQL", () => {
    test("an existing role's password reaches both the server and the dump", async () => {
        const evaluation = await run(
            { source: localSource(), network: { create: true }, postgres: { adminHost: "db.internal", createUser: false, user: "messages" } },
            { postgresAdminPassword: ADMIN_PASSWORD, postgresPassword: "role-secret" },
        );
        assert.equal(env(evaluation.one(CONTAINER, "caldav")).PGPASSWORD, "role-secret");
        assert.equal(evaluation.one(CONTAINER, "backup-container").inputs.uploads[0].content, "*:*:*:*:role-secret\n");
    });
});

describe("resource identity", () => {
    test("every resource sits under its component, so that its URN (and state) survives a refactoring of the program", async () => {
        const evaluation = await run(withConfig(bundled(), { apiKeys: { mode: "separate" } }));
        const byUrn = new Map(evaluation.resources.map((r) => [r.urn, r]));
        const expected: Record<string, string> = {
            "api-keys-inbound": "calendars:caldav:ApiKeys",
            "api-keys-outbound": "calendars:caldav:ApiKeys",
            "api-keys-internal": "calendars:caldav:ApiKeys",
            "backup-tools": "calendars:caldav:PreUpgradeDump",
            "backup-volume": "calendars:caldav:PreUpgradeDump",
            "backup-container": "calendars:caldav:PreUpgradeDump",
            "backup-record-container": "calendars:caldav:DeploymentRecord",
            "database-password": "calendars:caldav:Database",
            "postgres-admin": "calendars:caldav:BundledPostgres",
            image: "calendars:caldav:Image",
            caldav: "calendars:caldav:Server",
            network: "calendars:caldav:Network",
        };
        const custom = evaluation.resources.filter((r) => r.custom);
        for (const [name, component] of Object.entries(expected)) {
            const matches = custom.filter((r) => r.name === name);
            assert.equal(matches.length, 1, name);
            assert.equal(byUrn.get(matches[0].parent)?.type, component, name);
        }
        for (const type of ["pulumi:providers:postgresql", "postgresql:index/role:Role", "postgresql:index/database:Database"]) {
            assert.equal(byUrn.get(evaluation.one(type).parent)?.type, "calendars:caldav:Database", type);
        }
        const prebuilt = await run(withConfig(bundled(), { prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" }));
        const pulled = prebuilt.one("docker:index/remoteImage:RemoteImage", "image");
        assert.equal(prebuilt.resources.find((r) => r.urn === pulled.parent)?.type, "calendars:caldav:Image", "a pulled image too");
        for (const type of ["docker:index/container:Container", "docker:index/volume:Volume", "docker:index/remoteImage:RemoteImage"]) {
            assert.equal(byUrn.get(evaluation.one(type, "postgres").parent)?.type, "calendars:caldav:BundledPostgres", type);
        }
    });
});
