// Every config key proven to reach its destination. For each mode that changes where keys
// go (bundled or external PostgreSQL, created or attached network, shared or separate keys,
// build or published image, volume or host-directory dumps, a looked-up PostgreSQL address,
// no dumps), a stack sets every key that mode honours at once, each to a distinct value
// other than its default, and each key is found where it must land. Then each key alone
// is taken away again: its landing check must fail (or the stack be refused, naming the
// key), so that no check passes on a default, and a refactor that drops a setting for its
// default fails here. Every key the program reads (CONFIG_KEYS, which the reference test
// keeps equal to the README's table) must say where it lands.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, mock, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { pgpassLine } from "../components/backup";
import { CONFIG_KEYS } from "../components/config";
import { MESSAGES_WORLD } from "./fakeDocker";
import { localSource, tempDir } from "./fixtures";
import { containerEnv, evaluateOnce, EvaluateOptions, Evaluation, Recorded, SECRET_SIG, StackConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";
const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
const SECRET_KEYS = new Set(["postgresAdminPassword", "postgresPassword"]);

type Mode = "bundled" | "external" | "lookup";
const MODES: Mode[] = ["bundled", "external", "lookup"];

/**
 * A Calendars source of its own: branch `release-keys` (not main) has the server both in
 * src/caldav and in server/dav, and main has moved on since, so that source.repo,
 * source.ref and source.context each change which commit or directory is built.
 */
function sourceRepo(): { url: string; release: string } {
    const dir = tempDir("keys-upstream");
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.org", ...args],
        { cwd: dir, encoding: "utf8" }).trim();
    git("init", "--quiet", "--initial-branch", "main");
    for (const context of ["src/caldav", "server/dav"]) {
        fs.mkdirSync(path.join(dir, context), { recursive: true });
        fs.writeFileSync(path.join(dir, context, "Dockerfile"), `FROM php:8.5-apache-bookworm\nLABEL context=${context}\n`);
    }
    git("add", ".");
    git("commit", "--quiet", "-m", `keys wiring ${path.basename(dir)}`);
    git("branch", "release-keys");
    fs.writeFileSync(path.join(dir, "src/caldav/VERSION"), "later\n");
    git("add", ".");
    git("commit", "--quiet", "-m", "main moves on");
    return { url: `file://${dir}`, release: git("rev-parse", "release-keys") };
}

const REPO = sourceRepo();
const CACHE = tempDir("keys-cache");
/** The address the lookup finds for the lookup mode's postgres.host. */
const LOOKUP_IP = "172.29.0.9";

/** What each mode needs besides the keys under test (networks and containers that exist, inert keys). */
const SETTING: Record<Mode, { background: StackConfig; options: EvaluateOptions }> = {
    bundled: {
        background: {},
        // Attaching instead of creating (network.create taken away) finds the network.
        options: { networks: { caldav_eu_net: { subnet: "10.77.0.0/24" } } },
    },
    external: {
        // Used only when prebuiltImage is taken away: never the network.
        background: { source: { repo: REPO.url, ref: "release-keys", cacheDir: CACHE } },
        options: {
            networks: { dav_shared_net: { subnet: "172.29.0.0/16" }, messages_internal: { subnet: "172.29.0.0/16" } },
            // Without postgres.adminHost, the provider connects where postgres.host points.
            docker: { dav_shared_net: [{ name: "dav-db-1", aliases: ["db-eu"], ip: "172.29.0.8" }] },
        },
    },
    lookup: {
        background: { prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" },
        options: {
            networks: { messages_internal: { subnet: "172.29.0.0/16" } },
            docker: { messages_internal: [...MESSAGES_WORLD.messages_internal, { name: "dav-pg-1", aliases: ["pg-lookup"], ip: LOOKUP_IP }] },
        },
    },
};

/** The values a mode sets, to read another key's value in a check. */
type Values = Record<string, unknown>;

interface Landing {
    /** The key's value in each mode that honours it: never its default. */
    set: Partial<Record<Mode, unknown>>;
    /** Asserts that `value` arrived where it must. */
    lands(evaluation: Evaluation, value: any, mode: Mode, values: Values): void | Promise<void>;
    /** Set instead of taking the key away, where its default would reach outside this machine (GitHub, ~/.cache). */
    instead?: () => unknown;
}

const server = (e: Evaluation) => e.one(CONTAINER, "caldav");
const serverEnv = (e: Evaluation) => containerEnv(server(e));
const postgres = (e: Evaluation) => e.one(CONTAINER, "postgres");
const provider = (e: Evaluation) => e.one("pulumi:providers:postgresql").inputs;
/** The one-shot containers that connect as the server does: the dump and the deployment record. */
const tools = (e: Evaluation) => [e.one(CONTAINER, "backup-container"), e.one(CONTAINER, "backup-record-container")];
const buildContext = (e: Evaluation): string => e.one(REMOTE_IMAGE, "image").inputs.build.context;
const apiKeyResources = (e: Evaluation) => e.byType("random:index/randomPassword:RandomPassword").filter((r) => r.name.startsWith("api-keys-"));

/** What the operator is told when the CalDAV container never turns healthy: its error hook's message. */
async function unhealthyReport(e: Evaluation): Promise<string> {
    const hook = e.errorHooks.get(server(e).errorHooks[0]);
    assert.ok(hook, "the CalDAV container has an error hook");
    const logged = mock.method(pulumi.log, "error", async () => undefined);
    try {
        await hook({ urn: server(e).urn, id: "", name: "caldav", type: CONTAINER, failedOperation: "create", errors: ["unhealthy"] });
        return logged.mock.calls.map((call) => String(call.arguments[0])).join("\n");
    } finally {
        logged.mock.restore();
    }
}

/** The value in the container's environment is carried as a secret, never in plain text. */
function secretInEnv(container: Recorded, name: string): void {
    const entry = (container.wire.envs as unknown[]).find((item) => JSON.stringify(item).includes(`${name}=`));
    assert.equal((entry as Record<string, unknown>)?.[SECRET_SIG] !== undefined, true, `${name} of ${container.name} is a secret`);
}

const LANDINGS: Record<string, Landing> = {
    "source.repo": {
        set: { bundled: REPO.url },
        lands: (e) => assert.equal(e.outputs.sourceCommit.value, REPO.release),
        instead: () => localSource().repo,
    },
    "source.ref": {
        set: { bundled: "release-keys" },
        lands: (e) => {
            assert.equal(e.outputs.sourceCommit.value, REPO.release);
            assert.equal(e.one(REMOTE_IMAGE, "image").inputs.name.split(":").pop(), REPO.release, "the image is tagged by the commit");
        },
    },
    "source.context": {
        set: { bundled: "server/dav" },
        lands: (e, value) => assert.ok(buildContext(e).endsWith(`${path.sep}${value}`), buildContext(e)),
    },
    "source.cacheDir": {
        set: { bundled: CACHE },
        lands: (e, value) => assert.ok(buildContext(e).startsWith(`${value}${path.sep}`), buildContext(e)),
        instead: () => tempDir("keys-other-cache"),
    },
    imageName: {
        set: { bundled: "caldav-eu" },
        lands: (e, value) => {
            assert.equal(e.one(REMOTE_IMAGE, "image").inputs.name, `${value}:${REPO.release}`);
            assert.equal(e.outputs.image.value, `${value}:${REPO.release}`);
        },
    },
    prebuiltImage: {
        set: { external: "registry.example.org/calendars/caldav:v2.3.4" },
        lands: (e, value) => {
            const image = e.one(REMOTE_IMAGE, "image").inputs;
            assert.deepEqual([image.name, image.build], [value, undefined], "pulled, not built");
            assert.deepEqual([e.outputs.image.value, e.outputs.sourceCommit.value], [value, undefined]);
        },
    },
    "network.name": {
        set: { bundled: "caldav_eu_net", external: "dav_shared_net" },
        lands: (e, value, mode) => {
            assert.equal(server(e).inputs.networksAdvanced[0].name, value);
            assert.equal(e.outputs.networkName.value, value);
            for (const container of mode === "lookup" ? [] : tools(e)) {
                assert.equal(container.inputs.networksAdvanced[0].name, value, container.name);
            }
            if (mode === "bundled") {
                assert.equal(e.one("docker:index/network:Network").inputs.name, value);
                assert.equal(postgres(e).inputs.networksAdvanced[0].name, value);
            }
        },
    },
    "network.create": {
        set: { bundled: true },
        lands: (e, _value, _mode, values) => {
            const network = e.one("docker:index/network:Network");
            assert.deepEqual([network.inputs.name, network.deleteBeforeReplace], [values["network.name"], true]);
        },
    },
    "network.subnet": {
        set: { bundled: "10.77.0.0/24" },
        lands: (e, value) => assert.equal(e.one("docker:index/network:Network").inputs.ipamConfigs[0].subnet, value),
    },
    "network.backendIp": {
        set: { bundled: "10.77.0.40", external: "172.29.0.41" },
        lands: (e, value, mode) => {
            assert.equal(e.outputs.backendIp.value, value);
            if (mode === "bundled") {
                assert.equal(new URL(serverEnv(e).CALDAV_CALLBACK_BASE_URL).hostname, value, "the callback's default host");
            }
        },
    },
    "network.caldavIp": {
        set: { bundled: "10.77.0.50", external: "172.29.0.51" },
        lands: (e, value) => assert.equal(server(e).inputs.networksAdvanced[0].ipv4Address, value),
    },
    "network.alias": {
        set: { bundled: "caldav-eu-alias", external: "caldav-shared-alias" },
        lands: (e, value) => {
            assert.deepEqual(server(e).inputs.networksAdvanced[0].aliases, [value]);
            assert.equal(new URL(e.outputs.caldavUrl.value).hostname, value);
            assert.equal(new URL(e.outputs.backendEnv.value.CALDAV_URL).hostname, value);
        },
    },
    backendPort: {
        set: { bundled: 8443 },
        lands: (e, value, _mode, values) => {
            assert.equal(serverEnv(e).CALDAV_CALLBACK_BASE_URL, `http://${values["network.backendIp"]}:${value}`);
            assert.equal(new URL(e.outputs.callbackUrl.value).port, String(value));
        },
    },
    callbackBaseUrl: {
        set: { external: "https://calendars.example.org/backend" },
        lands: (e, value) => {
            assert.equal(serverEnv(e).CALDAV_CALLBACK_BASE_URL, value);
            assert.ok(e.outputs.callbackUrl.value.startsWith(`${value}/api/`), e.outputs.callbackUrl.value);
        },
    },
    "postgres.mode": {
        set: { bundled: "bundled" },
        lands: (e, _value, _mode, values) => {
            assert.equal(e.byType("calendars:caldav:BundledPostgres").length, 1);
            assert.deepEqual(postgres(e).inputs.networksAdvanced[0].aliases, [values["postgres.host"]], "the server's database");
        },
    },
    "postgres.host": {
        set: { bundled: "pg-eu", external: "db-eu", lookup: "pg-lookup" },
        lands: (e, value, mode) => {
            assert.equal(serverEnv(e).PGHOST, value);
            for (const container of mode === "lookup" ? [] : tools(e)) {
                assert.equal(containerEnv(container).PGHOST, value, container.name);
            }
            if (mode === "bundled") {
                assert.deepEqual(postgres(e).inputs.networksAdvanced[0].aliases, [value]);
            }
            if (mode === "lookup") {
                assert.equal(provider(e).host, LOOKUP_IP, "the provider connects where the name points on the network");
            }
        },
    },
    "postgres.port": {
        set: { bundled: 6544, external: 6545, lookup: 6546 },
        lands: (e, value, mode) => {
            assert.equal(serverEnv(e).PGPORT, String(value));
            for (const container of mode === "lookup" ? [] : tools(e)) {
                assert.equal(containerEnv(container).PGPORT, String(value), container.name);
            }
            if (mode === "bundled") {
                assert.equal(containerEnv(postgres(e)).PGPORT, String(value));
                assert.equal(postgres(e).inputs.ports[0].internal, value);
            }
            if (mode === "lookup") {
                assert.equal(provider(e).port, String(value), "a looked-up address is the container's own");
            }
        },
    },
    "postgres.adminHost": {
        set: { bundled: "127.0.0.1", external: "db-admin.example.org" },
        lands: (e, value) => assert.equal(provider(e).host, value),
    },
    "postgres.adminPort": {
        set: { bundled: 15433, external: 15434 },
        lands: (e, value, mode) => {
            assert.equal(provider(e).port, String(value));
            if (mode === "bundled") {
                assert.deepEqual([postgres(e).inputs.ports[0].external, postgres(e).inputs.ports[0].ip], [value, "127.0.0.1"]);
            }
        },
    },
    "postgres.adminUser": {
        set: { bundled: "pgadmin", external: "dav_admin" },
        lands: (e, value, mode) => {
            assert.equal(provider(e).username, value);
            if (mode === "bundled") {
                assert.equal(containerEnv(postgres(e)).POSTGRES_USER, value);
            }
        },
    },
    "postgres.sslmode": {
        set: { external: "verify-full" },
        lands: (e, value) => assert.equal(provider(e).sslmode, value),
    },
    "postgres.database": {
        set: { bundled: "dav_data", external: "dav_shared_data" },
        lands: (e, value) => {
            assert.equal(e.one("postgresql:index/database:Database").inputs.name, value);
            assert.equal(serverEnv(e).PGDATABASE, value);
            assert.equal(e.outputs.databaseName.value, value);
            for (const container of tools(e)) {
                assert.equal(containerEnv(container).PGDATABASE, value, container.name);
            }
        },
    },
    "postgres.schema": {
        set: { bundled: "dav_eu", external: "dav_shared" },
        lands: (e, value) => {
            assert.equal(serverEnv(e).CALDAV_DB_SCHEMA, value);
            for (const container of tools(e)) {
                assert.equal(containerEnv(container).CALDAV_DB_SCHEMA, value, container.name);
            }
        },
    },
    "postgres.user": {
        set: { bundled: "dav_owner", external: "dav_existing" },
        lands: (e, value, mode) => {
            assert.equal(serverEnv(e).PGUSER, value);
            assert.equal(e.outputs.databaseUser.value, value);
            assert.equal(e.one("postgresql:index/database:Database").inputs.owner, value);
            for (const container of tools(e)) {
                assert.equal(containerEnv(container).PGUSER, value, container.name);
            }
            if (mode === "bundled") {
                assert.equal(e.one("postgresql:index/role:Role").inputs.name, value);
            }
        },
    },
    "postgres.createUser": {
        set: { external: false },
        lands: (e, _value, _mode, values) => {
            assert.deepEqual(e.byType("postgresql:index/role:Role"), [], "an existing role, never created");
            assert.equal(serverEnv(e).PGPASSWORD, values.postgresPassword);
        },
    },
    "postgres.bundledImage": {
        set: { bundled: "postgres:16.4-bookworm" },
        lands: (e, value) => {
            assert.equal(e.one(REMOTE_IMAGE, "postgres").inputs.name, value);
            assert.equal(e.one(REMOTE_IMAGE, "backup-tools").inputs.name, value, "backup.image follows it");
        },
    },
    postgresAdminPassword: {
        set: { external: "admin-password-external", lookup: "admin-password-lookup" },
        lands: (e, value) => {
            const wire = e.one("pulumi:providers:postgresql").wire;
            assert.equal(provider(e).password, value);
            assert.equal((wire.password as Record<string, unknown>)[SECRET_SIG] !== undefined, true, "a secret on the wire");
        },
    },
    postgresPassword: {
        set: { external: "existing-role-password" },
        lands: (e, value) => {
            assert.equal(serverEnv(e).PGPASSWORD, value);
            secretInEnv(server(e), "PGPASSWORD");
            for (const container of tools(e)) {
                assert.equal(container.inputs.uploads[0].content, pgpassLine(value), container.name);
            }
        },
    },
    "apiKeys.mode": {
        set: { external: "separate" },
        lands: (e) => {
            const env = serverEnv(e);
            const keys = [env.CALDAV_INBOUND_API_KEY, env.CALDAV_OUTBOUND_API_KEY, env.CALDAV_INTERNAL_API_KEY];
            assert.equal(new Set(keys).size, 3, "three keys");
            assert.equal(apiKeyResources(e).length, 3);
            assert.deepEqual(e.outputs.apiKeys.value, { inbound: keys[0], outbound: keys[1], internal: keys[2] });
        },
    },
    "apiKeys.rotation": {
        set: { bundled: "2026-12", external: "r7" },
        lands: (e, value) => {
            const keys = apiKeyResources(e);
            assert.ok(keys.length > 0);
            for (const key of keys) {
                assert.equal(key.inputs.keepers.rotation, value, key.name);
            }
        },
    },
    "caldav.baseUri": {
        set: { bundled: "/dav/eu/", external: "/dav/" },
        lands: (e, value, mode) => {
            assert.equal(serverEnv(e).CALDAV_BASE_URI, value);
            assert.equal(new URL(e.outputs.caldavUrl.value).pathname, value);
            if (mode === "bundled") {
                assert.equal(new URL(e.outputs.publicUrl.value).pathname, value);
            }
        },
    },
    "caldav.publish": {
        set: { bundled: "127.0.0.1:18080" },
        lands: (e, value) => {
            assert.deepEqual(server(e).inputs.ports, [{ internal: 80, external: 18080, ip: "127.0.0.1" }]);
            assert.equal(new URL(e.outputs.publicUrl.value).host, value);
        },
    },
    "caldav.memoryMb": {
        set: { bundled: 768, external: 1024 },
        lands: (e, value) => assert.deepEqual([server(e).inputs.memory, server(e).inputs.memorySwap], [value, value]),
    },
    "caldav.containerName": {
        set: { bundled: "dav-eu", external: "dav-shared" },
        lands: async (e, value, mode) => {
            assert.equal(server(e).inputs.name, value);
            assert.equal(e.outputs.containerName.value, value);
            assert.match(await unhealthyReport(e), new RegExp(`docker logs ${value}\\b`), "what to look at when it never turns healthy");
            assert.deepEqual(tools(e).map((container) => container.inputs.name), [`${value}-dump`, `${value}-record`]);
            if (mode === "bundled") {
                assert.equal(postgres(e).inputs.name, `${value}-postgres`);
                assert.equal(e.one("docker:index/volume:Volume", "postgres").inputs.name, `${value}-pgdata`);
            }
        },
    },
    "caldav.healthTimeoutSeconds": {
        set: { bundled: 240, external: 600 },
        lands: async (e, value) => {
            assert.equal(server(e).inputs.waitTimeout, value);
            assert.match(await unhealthyReport(e), new RegExp(`within ${value} s \\(caldav\\.healthTimeoutSeconds\\)`));
        },
    },
    "backup.enabled": {
        set: { lookup: false },
        lands: (e) => {
            assert.deepEqual(e.byType("calendars:caldav:PreUpgradeDump"), []);
            assert.deepEqual(e.byType(CONTAINER).map((container) => container.name), ["caldav"], "no dump, no record");
        },
    },
    "backup.location": {
        set: { bundled: "dav-eu-dumps", external: "/srv/caldav-dumps" },
        lands: (e, value, mode) => {
            for (const container of tools(e)) {
                const mount = container.inputs.volumes[0];
                assert.equal(mode === "bundled" ? mount.volumeName : mount.hostPath, value, container.name);
            }
            if (mode === "bundled") {
                assert.equal(e.one("docker:index/volume:Volume", "backup-volume").inputs.name, value);
            }
        },
    },
    "backup.keep": {
        set: { bundled: 3, external: 12 },
        lands: (e, value) => assert.equal(containerEnv(e.one(CONTAINER, "backup-container")).KEEP, String(value)),
    },
    "backup.image": {
        set: { external: "postgres:18.1-bookworm" },
        lands: (e, value) => assert.equal(e.one(REMOTE_IMAGE, "backup-tools").inputs.name, value),
    },
    protect: {
        set: { bundled: false },
        lands: (e, value) => {
            assert.equal(e.one("postgresql:index/database:Database").protect, value);
            assert.equal(e.one("random:index/randomId:RandomId", "destroy-guard").protect, value);
        },
    },
};

/** `{ "a.b": 1 }` as the stack config `{ a: { b: 1 } }`, merged over `base`; secrets apart. */
function stackOf(values: Values, base: StackConfig): { config: StackConfig; secrets: Record<string, string> } {
    const config: StackConfig = structuredClone(base);
    const secrets: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
        if (SECRET_KEYS.has(key)) {
            secrets[key] = value as string;
        } else if (key.includes(".")) {
            const [object, field] = key.split(".");
            config[object] = { ...(config[object] as object), [field]: value };
        } else {
            config[key] = value;
        }
    }
    return { config, secrets };
}

function valuesOf(mode: Mode): Values {
    return Object.fromEntries(Object.entries(LANDINGS).flatMap(([key, landing]) => mode in landing.set ? [[key, landing.set[mode]]] : []));
}

/** The mode's stack with `values`; the full stack (every key set) is evaluated once. */
function stack(mode: Mode, values: Values = valuesOf(mode)): Promise<Evaluation> {
    const { config, secrets } = stackOf(values, SETTING[mode].background);
    return evaluateOnce(config, secrets, SETTING[mode].options);
}

describe("every config key reaches its destination", () => {
    test("every key the program reads says where it lands, in at least one mode", () => {
        assert.deepEqual(Object.keys(LANDINGS).sort(), [...CONFIG_KEYS].sort());
        const unset = Object.entries(LANDINGS).filter(([, landing]) => Object.keys(landing.set).length === 0).map(([key]) => key);
        assert.deepEqual(unset, []);
    });

    for (const mode of MODES) {
        test(`${mode}: no two keys share a value, so that a swap of two settings shows`, () => {
            const seen = new Map<string, string>();
            for (const [key, value] of Object.entries(valuesOf(mode))) {
                if (typeof value === "boolean") {
                    continue;
                }
                const text = String(value);
                assert.equal(seen.get(text), undefined, `${key} and ${seen.get(text)} are both ${text}`);
                seen.set(text, key);
            }
        });

        test(`${mode}: the stack with every key set deploys`, async () => {
            const evaluation = await stack(mode);
            assert.ifError(evaluation.error);
            assert.ok(evaluation.resources.length > 0);
        });

        for (const [key, landing] of Object.entries(LANDINGS)) {
            if (!(mode in landing.set)) {
                continue;
            }
            const value = landing.set[mode];
            test(`${mode}: ${key} = ${JSON.stringify(SECRET_KEYS.has(key) ? "<secret>" : value)} lands, and its default does not`, async () => {
                const values = valuesOf(mode);
                await landing.lands(await stack(mode), value, mode, values);

                const without: Values = { ...values };
                if (landing.instead) {
                    without[key] = landing.instead();
                } else {
                    delete without[key];
                }
                const other = await stack(mode, without);
                if (other.error) {
                    assert.deepEqual(other.resources, [], "refused before anything registers");
                    assert.ok(other.error.message.includes(key), `refused naming ${key}: ${other.error.message}`);
                } else {
                    await assert.rejects(async () => landing.lands(other, value, mode, without),
                        `without ${key}, its value is still found: the check passes on a default`);
                }
            });
        }
    }
});
