import * as assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, ConfigSource, parseConfig } from "../components/config";
import { evaluate } from "./harness";

const ADMIN = { postgresAdminPassword: "admin-secret" };

/** A ConfigSource over plain values; objects are stored as JSON, as Pulumi does. */
function source(values: Record<string, unknown>, secrets: Record<string, string> = ADMIN): ConfigSource {
    const all: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...values, ...secrets })) {
        all[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return {
        stack: "staging",
        keys: () => Object.keys(all),
        get: (key) => all[key],
        secret: (key) => (key in secrets ? pulumi.secret(secrets[key]) : undefined),
    };
}

function problemsOf(values: Record<string, unknown>, secrets?: Record<string, string>): string[] {
    try {
        parseConfig(source(values, secrets));
    } catch (error) {
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
        return error.problems;
    }
    assert.fail("expected the config to be rejected");
}

describe("config", () => {
    test("applies the contract's defaults in code", () => {
        const config = parseConfig(source({}));
        assert.deepEqual(config.image, {
            kind: "build",
            repo: "https://github.com/suitenumerique/calendars.git",
            ref: "main",
            context: "src/caldav",
            imageName: "calendars-caldav",
            cacheDir: path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "calendars-caldav", "sources"),
        });
        assert.deepEqual(config.network, {
            name: "messages_internal",
            create: false,
            subnet: "172.29.0.0/16",
            gateway: "172.29.0.1",
            allocationRange: "172.29.128.0/17",
            backendIp: "172.29.0.30",
            caldavIp: undefined,
            alias: "calendars-caldav",
        });
        assert.equal(config.callbackBaseUrl, "http://172.29.0.30:8000");
        assert.equal(config.postgres.mode, "external");
        assert.deepEqual(
            [config.postgres.host, config.postgres.port, config.postgres.database, config.postgres.schema, config.postgres.user],
            ["postgresql", 5432, "caldav", "sabre", "caldav"],
        );
        assert.deepEqual(
            { ...config.postgres.admin, password: undefined },
            // No admin host: looked up on the network, where PostgreSQL listens on postgres.port.
            { host: undefined, port: 5432, user: "messages", sslmode: "disable", password: undefined },
        );
        assert.deepEqual(config.apiKeys, { mode: "shared", rotation: "1" });
        assert.deepEqual(config.caldav, {
            baseUri: "/caldav/",
            publish: undefined,
            memoryMb: 512,
            containerName: "calendars-caldav-staging",
            healthTimeoutSeconds: 180,
        });
        assert.equal(config.protect, true);
    });

    test("the admin port follows postgres.port for a looked-up address, and nothing else", () => {
        const admin = (values: Record<string, unknown>) => parseConfig(source(values)).postgres.admin;
        assert.deepEqual([admin({ postgres: { port: 6543 } }).host, admin({ postgres: { port: 6543 } }).port], [undefined, 6543]);
        assert.equal(admin({ postgres: { port: 6543, adminPort: 15432 } }).port, 15432);
        assert.deepEqual([admin({ postgres: { port: 6543, adminHost: "db.internal" } }).host, admin({ postgres: { port: 6543, adminHost: "db.internal" } }).port],
            ["db.internal", 5432], "an explicit admin host is not the container: its port is its own");
        const bundled = admin({ postgres: { mode: "bundled", port: 6543 }, network: { create: true } });
        assert.deepEqual([bundled.host, bundled.port], ["localhost", 5432]);
    });

    test("reads values set with --path as strings (numbers, booleans) and derives the callback URL", () => {
        const config = parseConfig(source({
            network: { create: "true", subnet: "10.20.0.0/24", backendIp: "10.20.0.200", caldavIp: "10.20.0.10" },
            backendPort: "8080",
            postgres: { port: "6432", adminHost: "db.internal", adminPort: "6433" },
        }));
        assert.equal(config.network.create, true);
        assert.equal(config.postgres.port, 6432);
        assert.equal(config.postgres.admin.port, 6433);
        assert.equal(config.callbackBaseUrl, "http://10.20.0.200:8080");
        // The allocation range holds neither fixed IP nor the gateway.
        assert.equal(config.network.allocationRange, "10.20.0.64/26");
    });

    test("prebuiltImage replaces the source build", () => {
        const config = parseConfig(source({ prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" }));
        assert.deepEqual(config.image, { kind: "prebuilt", reference: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" });
    });

    const badInputs: Array<[string, Record<string, unknown>, string, string, Record<string, string>?]> = [
        ["IP that is not IPv4", { network: { backendIp: "172.29.0.300" } }, "network.backendIp", "is not an IPv4 address"],
        ["backend IP outside the subnet", { network: { backendIp: "172.30.0.30" } }, "network.backendIp", "is outside network.subnet 172.29.0.0/16"],
        ["caldav IP outside the subnet", { network: { caldavIp: "10.0.0.5" } }, "network.caldavIp", "is outside network.subnet"],
        ["caldav IP equal to the backend IP", { network: { caldavIp: "172.29.0.30" } }, "network.caldavIp", "is network.backendIp"],
        ["backend IP on the gateway of a created network", { network: { create: true, backendIp: "172.29.0.1" } }, "network.backendIp", "is the gateway"],
        ["CIDR with host bits", { network: { subnet: "172.29.0.1/16" } }, "network.subnet", "is not an IPv4 CIDR"],
        ["CIDR that is not one", { network: { subnet: "172.29.0.0" } }, "network.subnet", "is not an IPv4 CIDR"],
        ["alias clashing with Messages' backend", { network: { alias: "backend" } }, "network.alias", "Messages already uses"],
        ["alias clashing with Messages' postgresql", { network: { alias: "postgresql" } }, "network.alias", "Messages already uses"],
        ["base URI without a leading /", { caldav: { baseUri: "caldav/" } }, "caldav.baseUri", "must start and end with /"],
        ["base URI without a trailing /", { caldav: { baseUri: "/caldav" } }, "caldav.baseUri", "must start and end with /"],
        ["schema that is not an identifier", { postgres: { schema: "sabre; drop" } }, "postgres.schema", "lower-case SQL identifier"],
        ["database that is not an identifier", { postgres: { database: "1caldav" } }, "postgres.database", "plain SQL identifier"],
        ["port out of range", { postgres: { port: 70000 } }, "postgres.port", "from 1 to 65535"],
        ["backend port not a number", { backendPort: "http" }, "backendPort", "from 1 to 65535"],
        ["unknown postgres mode", { postgres: { mode: "managed" } }, "postgres.mode", "is not one of: external, bundled"],
        ["unknown api key mode", { apiKeys: { mode: "triple" } }, "apiKeys.mode", "is not one of: shared, separate"],
        ["unknown sslmode", { postgres: { sslmode: "maybe" } }, "postgres.sslmode", "is not one of"],
        ["empty ref", { source: { ref: "" } }, "source.ref", "must not be empty"],
        ["ref that git would read as an option", { source: { ref: "--upload-pack=x" } }, "source.ref", "not a valid branch, tag"],
        ["repo that git would read as an option", { source: { repo: "--upload-pack=x" } }, "source.repo", "must not start with '-'"],
        ["context escaping the repository", { source: { context: "../etc" } }, "source.context", "inside the repository"],
        ["malformed caldav.publish", { caldav: { publish: "8080" } }, "caldav.publish", "must be <IPv4>:<port>"],
        ["caldav.publish with a bad port", { caldav: { publish: "127.0.0.1:99999" } }, "caldav.publish", "must be <IPv4>:<port>"],
        ["non-numeric memory limit", { caldav: { memoryMb: "512m" } }, "caldav.memoryMb", "whole number from 128"],
        ["memory limit too small", { caldav: { memoryMb: 64 } }, "caldav.memoryMb", "whole number from 128"],
        ["non-boolean flag", { network: { create: "yes" } }, "network.create", "must be true or false"],
        ["callback URL on the backend host name", { callbackBaseUrl: "http://backend:8000" }, "callbackBaseUrl", "must not use the host name backend"],
        ["callback URL that is not a URL", { callbackBaseUrl: "172.29.0.30:8000" }, "callbackBaseUrl", "is not a URL"],
        ["callback URL with a query", { callbackBaseUrl: "http://172.29.0.30:8000/?x=1" }, "callbackBaseUrl", "plain http(s) URL"],
        ["prebuilt image without a tag", { prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav" }, "prebuiltImage", "must name a tag or a digest"],
        ["prebuilt image on latest", { prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:latest" }, "prebuiltImage", "not latest"],
        ["unknown key inside an object (typo)", { postgres: { hots: "db" } }, "postgres.hots", "is not a known key"],
        ["unknown top-level key", { imagename: "x" }, "imagename", "is not a known key"],
        ["object key set as a scalar", { network: "messages_internal" }, "network", "must be an object"],
        ["bundled PostgreSQL joining Messages' network as postgresql", { postgres: { mode: "bundled" } }, "postgres.host", "Messages already runs one", {}],
        ["bundled PostgreSQL behind a remote admin host", { postgres: { mode: "bundled", adminHost: "db.internal" }, network: { create: true } }, "postgres.adminHost", "127.0.0.1 only", {}],
        ["missing admin password (external mode)", {}, "postgresAdminPassword", "is required when postgres.mode is external", {}],
        ["an external PostgreSQL to look up on a network this stack creates", { network: { create: true } }, "postgres.adminHost", "is required when postgres.mode is external and network.create is true"],
        ["missing role password (existing role)", { postgres: { createUser: false } }, "postgresPassword", "is required when postgres.createUser is false"],
    ];
    for (const [what, values, key, message, secrets] of badInputs) {
        test(`rejects ${what}, naming ${key}`, () => {
            const problems = problemsOf(values, secrets);
            assert.ok(
                problems.some((p) => p.startsWith(`calendars-caldav:${key} `) && p.includes(message)),
                `no problem for ${key} containing ${JSON.stringify(message)} in:\n${problems.join("\n")}`,
            );
        });
    }

    test("reports every problem in one error", () => {
        const problems = problemsOf({ network: { backendIp: "x" }, caldav: { baseUri: "x", memoryMb: "x" } }, {});
        assert.equal(problems.length, 4, problems.join("\n"));
    });

    test("the program fails on bad input before registering any resource", async () => {
        const evaluation = await evaluate({ network: { alias: "backend" } }, ADMIN);
        assert.ok(evaluation.error instanceof ConfigError);
        assert.match(evaluation.error.message, /calendars-caldav:network\.alias "backend" is a service name Messages already uses/);
        assert.equal(evaluation.resources.length, 0);
    });
});
