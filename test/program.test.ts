import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HEALTH_CHECK, START_COMMAND, unhealthyMessage } from "../components/server";
import { localSource } from "./fixtures";
import { containerEnv, evaluate, evaluateOnce, Evaluation, plainStrings, StackConfig, withConfig } from "./harness";

const ADMIN_PASSWORD = "admin-secret-value";
const ROLE_PASSWORD = "existing-role-secret";
const CONTAINER = "docker:index/container:Container";

function base(): StackConfig {
    return { source: localSource(), network: { create: true }, postgres: { adminHost: "db.internal" } };
}

async function run(overrides: StackConfig = {}, secrets: Record<string, string> = { postgresAdminPassword: ADMIN_PASSWORD }, networks?: Record<string, { subnet: string }>): Promise<Evaluation> {
    const evaluation = await evaluateOnce(withConfig(base(), overrides), secrets, { networks });
    assert.ifError(evaluation.error);
    return evaluation;
}

function env(evaluation: Evaluation): Record<string, string> {
    return containerEnv(evaluation.one(CONTAINER, "caldav"));
}

function keyResources(evaluation: Evaluation): string[] {
    return evaluation.byType("random:index/randomPassword:RandomPassword")
        .map((r) => r.name)
        .filter((name) => name.startsWith("api-keys-"))
        .sort();
}

describe("program", () => {
    test("wires the seed's environment from the database, keys and network", async () => {
        const evaluation = await run();
        const key = evaluation.outputs.apiKeys.value.outbound;
        const password = evaluation.generated.find((value) => value.startsWith("databasepassword"));
        assert.deepEqual(Object.keys(env(evaluation)), [
            "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "CALDAV_DB_SCHEMA", "CALDAV_BASE_URI",
            "CALDAV_INBOUND_API_KEY", "CALDAV_OUTBOUND_API_KEY", "CALDAV_INTERNAL_API_KEY", "CALDAV_CALLBACK_BASE_URL",
        ]);
        assert.deepEqual(env(evaluation), {
            PGHOST: "postgresql",
            PGPORT: "5432",
            PGDATABASE: "caldav",
            PGUSER: "caldav",
            PGPASSWORD: password,
            CALDAV_DB_SCHEMA: "sabre",
            CALDAV_BASE_URI: "/caldav/",
            CALDAV_INBOUND_API_KEY: key,
            CALDAV_OUTBOUND_API_KEY: key,
            CALDAV_INTERNAL_API_KEY: key,
            // The backend's fixed IP, never the `backend` host name.
            CALDAV_CALLBACK_BASE_URL: "http://172.29.0.30:8000",
        });
        const role = evaluation.one("postgresql:index/role:Role").inputs;
        assert.equal(role.password, password, "the container logs in with the role's own password");
    });

    test("runs schema init without swallowing failures, and waits for /caldav/healthz", async () => {
        const container = (await run({ caldav: { healthTimeoutSeconds: 300, memoryMb: 768 } })).one(CONTAINER, "caldav");
        assert.deepEqual(container.inputs.command, START_COMMAND);
        assert.doesNotMatch(container.inputs.command.join(" "), /\|\|/);
        assert.match(container.inputs.command.join(" "), /init-database\.sh && exec apache2-foreground/);
        assert.deepEqual(container.inputs.healthcheck.tests, HEALTH_CHECK);
        assert.equal(HEALTH_CHECK[1], "php", "php is sure to be in php:*-apache images; curl is not");
        assert.match(HEALTH_CHECK[3], /http:\/\/127\.0\.0\.1:80\/caldav\/healthz/);
        assert.equal(container.inputs.wait, true);
        assert.equal(container.inputs.waitTimeout, 300);
        assert.equal(container.inputs.restart, "unless-stopped");
        assert.equal(container.inputs.memory, 768);
        assert.deepEqual(container.inputs.ports, [], "no host port unless caldav.publish is set");
        assert.deepEqual(container.errorHooks, ["caldav-unhealthy"], "a failed create says what to look at");
        const message = unhealthyMessage("calendars-caldav-test", 300);
        assert.match(message, /within 300 s \(caldav\.healthTimeoutSeconds\)/);
        assert.match(message, /`docker logs calendars-caldav-test`: init-database\.sh prints first/);
    });

    test("attaches to the network with the alias, the optional fixed IP and the published port", async () => {
        const evaluation = await run({ network: { caldavIp: "172.29.0.31" }, caldav: { publish: "127.0.0.1:8443", baseUri: "/dav/" } });
        const container = evaluation.one(CONTAINER, "caldav").inputs;
        assert.deepEqual(container.networksAdvanced, [{ name: "messages_internal", aliases: ["calendars-caldav"], ipv4Address: "172.29.0.31" }]);
        assert.deepEqual(container.ports, [{ internal: 80, external: 8443, ip: "127.0.0.1" }]);
        assert.equal(evaluation.outputs.publicUrl.value, "http://127.0.0.1:8443/dav/");
        assert.equal(evaluation.outputs.caldavUrl.value, "http://calendars-caldav:80/dav/");
    });

    test("every secret stays a Pulumi secret in every resource input, registered output and stack output", async () => {
        for (const overrides of [{}, { apiKeys: { mode: "separate" } }, { postgres: { createUser: false } }, { postgres: { mode: "bundled", adminHost: "127.0.0.1" } }]) {
            const secrets = { postgresAdminPassword: ADMIN_PASSWORD, postgresPassword: ROLE_PASSWORD };
            const evaluation = await run(overrides, secrets);
            const secretValues = [ADMIN_PASSWORD, ROLE_PASSWORD, ...evaluation.generated];
            for (const resource of evaluation.resources) {
                const exposed = plainStrings([resource.wire, resource.registeredOutputs ?? {}])
                    .filter((text) => secretValues.some((secret) => text.includes(secret)));
                assert.deepEqual(exposed, [], `${resource.type} ${resource.name} exposes a secret (${JSON.stringify(overrides)})`);
            }
            for (const [name, output] of Object.entries(evaluation.outputs)) {
                const holdsSecret = JSON.stringify(output.value ?? "").match(new RegExp(secretValues.join("|")));
                assert.equal(output.secret, ["apiKeys", "backendEnv"].includes(name), `stack output ${name}`);
                assert.ok(output.secret || !holdsSecret, `stack output ${name} holds a secret in plain text`);
            }
        }
    });

    test("one shared key by default; three separate keys on request", async () => {
        const shared = await run();
        assert.deepEqual(keyResources(shared), ["api-keys-shared"]);
        const keys = shared.outputs.apiKeys.value;
        assert.equal(new Set([keys.inbound, keys.outbound, keys.internal]).size, 1);

        const separate = await run({ apiKeys: { mode: "separate" } });
        assert.deepEqual(keyResources(separate), ["api-keys-inbound", "api-keys-internal", "api-keys-outbound"]);
        const three = separate.outputs.apiKeys.value;
        assert.equal(new Set([three.inbound, three.outbound, three.internal]).size, 3);
        const wired = env(separate);
        assert.equal(wired.CALDAV_INBOUND_API_KEY, three.inbound);
        assert.equal(wired.CALDAV_OUTBOUND_API_KEY, three.outbound);
        assert.equal(wired.CALDAV_INTERNAL_API_KEY, three.internal);
        for (const name of keyResources(separate)) {
            const key = separate.one("random:index/randomPassword:RandomPassword", name).inputs;
            assert.ok(key.length >= 48 && key.special === false, "header-safe: alphanumeric, 48+ characters");
            assert.deepEqual(key.keepers, { rotation: "1" });
        }
    });

    test("the database has its own provider (superuser false), a retained owner role, and survives destroy", async () => {
        const evaluation = await run({ postgres: { adminHost: "db.internal", adminPort: 6432, adminUser: "admin", sslmode: "require" } });
        const provider = evaluation.one("pulumi:providers:postgresql");
        const { host, port, username, password, sslmode, superuser } = provider.inputs;
        assert.deepEqual(
            { host, port, username, password, sslmode, superuser },
            // Provider config travels as strings.
            { host: "db.internal", port: "6432", username: "admin", password: ADMIN_PASSWORD, sslmode: "require", superuser: "false" },
        );
        const providerRef = `${provider.urn}::${provider.name}-id`;
        const role = evaluation.one("postgresql:index/role:Role");
        const database = evaluation.one("postgresql:index/database:Database");
        assert.equal(role.provider, providerRef);
        assert.equal(database.provider, providerRef);
        assert.deepEqual(role.inputs.login, true);
        assert.equal(database.inputs.owner, "caldav");
        assert.equal(database.inputs.name, "caldav");
        assert.equal(database.retainOnDelete, true);
        assert.equal(database.protect, true);
        assert.equal(role.retainOnDelete, true, "the role owns the calendar tables");
        for (const r of evaluation.resources.filter((r) => r.type.startsWith("postgresql:"))) {
            assert.equal(r.provider, providerRef, `${r.type} must use the explicit provider`);
        }
    });

    test("protect=false lifts protection but the database is still retained on delete", async () => {
        const database = (await run({ protect: false })).one("postgresql:index/database:Database");
        assert.equal(database.protect, false);
        assert.equal(database.retainOnDelete, true);
    });

    test("an existing role (createUser=false) owns the database and logs in with postgresPassword", async () => {
        const evaluation = await run(
            { postgres: { createUser: false, user: "messages" } },
            { postgresAdminPassword: ADMIN_PASSWORD, postgresPassword: ROLE_PASSWORD },
        );
        assert.equal(evaluation.byType("postgresql:index/role:Role").length, 0);
        assert.equal(evaluation.one("postgresql:index/database:Database").inputs.owner, "messages");
        assert.equal(env(evaluation).PGPASSWORD, ROLE_PASSWORD);
        assert.equal(evaluation.outputs.databaseUser.value, "messages");
    });

    test("network.create=true owns a network whose allocation range leaves the fixed IPs out", async () => {
        const evaluation = await run({ network: { subnet: "10.30.0.0/16", backendIp: "10.30.200.1" } });
        const network = evaluation.one("docker:index/network:Network");
        assert.equal(network.inputs.name, "messages_internal");
        assert.deepEqual(network.inputs.ipamConfigs, [{ subnet: "10.30.0.0/16", gateway: "10.30.0.1", ipRange: "10.30.64.0/18" }]);
        assert.equal(network.deleteBeforeReplace, true);
        assert.equal(evaluation.outputs.networkName.value, "messages_internal");
    });

    test("network.create=false attaches to the existing network, checked, and owns nothing", async () => {
        const evaluation = await run({ network: { create: false } }, undefined, { messages_internal: { subnet: "172.29.0.0/16" } });
        assert.equal(evaluation.byType("docker:index/network:Network").length, 0);
        assert.equal(evaluation.one(CONTAINER, "caldav").inputs.networksAdvanced[0].name, "messages_internal");
        assert.equal(evaluation.outputs.networkName.value, "messages_internal");
    });

    test("attaching fails clearly when the network is missing or its subnet differs", async () => {
        const missing = await evaluate(withConfig(base(), { network: { create: false } }), { postgresAdminPassword: ADMIN_PASSWORD }, { networks: {} });
        assert.match(missing.error?.message ?? "", /network\.name messages_internal is not a network on this Docker host.*network\.create true/s);
        const other = await evaluate(withConfig(base(), { network: { create: false } }), { postgresAdminPassword: ADMIN_PASSWORD }, {
            networks: { messages_internal: { subnet: "172.30.0.0/16" } },
        });
        assert.match(other.error?.message ?? "", /network\.subnet is 172\.29\.0\.0\/16, but network messages_internal has 172\.30\.0\.0\/16/);
        assert.equal(other.byType(CONTAINER).length, 0, "no container on a network that failed its check");
    });

    test("exports every output of the contract, with what the Calendars backend needs", async () => {
        const outputs = (await run({ caldav: { publish: "127.0.0.1:8080" } })).outputs;
        const commit = outputs.sourceCommit.value;
        assert.deepEqual(Object.keys(outputs).sort(), [
            "apiKeys", "backendEnv", "backendIp", "caldavUrl", "callbackUrl", "containerName", "databaseName",
            "databaseUser", "image", "networkName", "publicUrl", "sourceCommit",
        ]);
        assert.equal(outputs.callbackUrl.value, "http://172.29.0.30:8000/api/v1.0/caldav-scheduling-callback/");
        assert.equal(outputs.caldavUrl.value, "http://calendars-caldav:80/caldav/");
        assert.equal(outputs.publicUrl.value, "http://127.0.0.1:8080/caldav/");
        assert.equal(outputs.backendIp.value, "172.29.0.30");
        assert.equal(outputs.containerName.value, "calendars-caldav-test");
        assert.equal(outputs.image.value, `calendars-caldav:${commit}`);
        const keys = outputs.apiKeys.value;
        assert.deepEqual(outputs.backendEnv.value, {
            CALDAV_URL: "http://calendars-caldav:80",
            CALDAV_OUTBOUND_API_KEY: keys.outbound,
            CALDAV_INBOUND_API_KEY: keys.inbound,
            CALDAV_INTERNAL_API_KEY: keys.internal,
        });
    });

    test("prebuiltImage pulls the pinned image instead of fetching and building", async () => {
        const reference = "ghcr.io/suitenumerique/calendars-caldav:v0.1.0";
        const evaluation = await run({ prebuiltImage: reference, source: { repo: "file:///nonexistent/never-fetched" } });
        const pulled = evaluation.one("docker:index/remoteImage:RemoteImage", "image");
        assert.equal(pulled.inputs.build, undefined, "nothing is built");
        assert.equal(pulled.inputs.name, reference);
        assert.equal(pulled.inputs.keepLocally, true);
        assert.match(evaluation.one(CONTAINER, "caldav").inputs.image, /^sha256:/, "runs the pulled image's ID");
        assert.equal(evaluation.outputs.image.value, reference);
        assert.equal(evaluation.outputs.sourceCommit.value, undefined);
    });
});
