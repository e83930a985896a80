// Config validation at its edges: what an operator may set, what is refused (naming
// the key), and what each accepted value turns into. Complements config.test.ts.
import * as assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { CaldavConfig, ConfigError, ConfigSource, parseConfig } from "../components/config";

const ADMIN = { postgresAdminPassword: "admin-secret" };
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

/** A ConfigSource over plain values; objects are stored as JSON, as Pulumi does. */
function source(values: Record<string, unknown>, secrets: Record<string, string> = ADMIN, stack = "staging"): ConfigSource {
    const all: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...values, ...secrets })) {
        all[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return {
        stack,
        keys: () => Object.keys(all),
        get: (key) => all[key],
        secret: (key) => (key in secrets ? pulumi.secret(secrets[key]) : undefined),
    };
}

function accepted(values: Record<string, unknown>, secrets?: Record<string, string>): CaldavConfig {
    try {
        return parseConfig(source(values, secrets));
    } catch (error) {
        assert.fail(`expected ${JSON.stringify(values)} to be accepted, got: ${(error as Error).message}`);
    }
}

function thrown(values: Record<string, unknown>, secrets?: Record<string, string>): ConfigError {
    try {
        parseConfig(source(values, secrets));
    } catch (error) {
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
        return error;
    }
    assert.fail(`expected ${JSON.stringify(values)} to be rejected`);
}

function assertRejected(values: Record<string, unknown>, key: string, message: string, secrets?: Record<string, string>): void {
    const problems = thrown(values, secrets).problems;
    assert.ok(
        problems.some((p) => p.startsWith(`calendars-caldav:${key} `) && p.includes(message)),
        `${JSON.stringify(values)}: no problem for ${key} containing ${JSON.stringify(message)} in:\n${problems.join("\n")}`,
    );
}

/** Rejected or accepted, as a table: [what, values, key, message fragment]. */
type Rejection = [string, Record<string, unknown>, string, string];

function rejects(cases: Rejection[]): void {
    for (const [what, values, key, message] of cases) {
        test(`refuses ${what}, naming ${key}`, () => assertRejected(values, key, message));
    }
}

describe("config: source and image", () => {
    rejects([
        ["a ref starting with /", { source: { ref: "/main" } }, "source.ref", "not a valid branch, tag"],
        ["a ref ending with /", { source: { ref: "release/" } }, "source.ref", "not a valid branch, tag"],
        ["a ref ending with .", { source: { ref: "v1." } }, "source.ref", "not a valid branch, tag"],
        ["a ref ending with .lock", { source: { ref: "main.lock" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with ..", { source: { ref: "v1..v2" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with @{", { source: { ref: "main@{1}" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with a space inside", { source: { ref: "my branch" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with ~", { source: { ref: "main~1" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with ^", { source: { ref: "main^" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with :", { source: { ref: "a:b" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with a glob", { source: { ref: "v*" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with [", { source: { ref: "v[1]" } }, "source.ref", "not a valid branch, tag"],
        ["a ref with a backslash", { source: { ref: "a\\b" } }, "source.ref", "not a valid branch, tag"],
        ["an absolute context", { source: { context: "/src/caldav" } }, "source.context", "inside the repository"],
        ["a context that is ..", { source: { context: ".." } }, "source.context", "inside the repository"],
        ["a context that climbs out after a step in", { source: { context: "src/../../etc" } }, "source.context", "inside the repository"],
        ["a relative cache directory", { source: { cacheDir: "cache/sources" } }, "source.cacheDir", "must be an absolute path"],
        ["an image name with capitals", { imageName: "Calendars-CalDAV" }, "imageName", "is not a Docker repository name"],
        ["an image name with a tag", { imageName: "calendars-caldav:v1" }, "imageName", "is not a Docker repository name"],
        ["a prebuilt image with a space", { prebuiltImage: "ghcr.io/x/caldav:v1 extra" }, "prebuiltImage", "must name a tag or a digest"],
        ["a prebuilt image whose only colon is the registry port", { prebuiltImage: "registry.local:5000/caldav" }, "prebuiltImage", "must name a tag or a digest"],
        ["a prebuilt image with a short digest", { prebuiltImage: "ghcr.io/x/caldav@sha256:0123abc" }, "prebuiltImage", "must name a tag or a digest"],
        ["a prebuilt image with a 65-digit digest", { prebuiltImage: `ghcr.io/x/caldav@${DIGEST}0` }, "prebuiltImage", "must name a tag or a digest"],
        ["a backup image with a digest that is not sha256", { backup: { image: "postgres@md5:0123abc" } }, "backup.image", "must name a tag or a digest"],
    ]);

    test("accepts refs git accepts: nested branches, dotted tags, full SHAs", () => {
        for (const ref of ["release/2026.11", "v0.1.0", "feature_x-y", "refs/heads/main", "0123456789abcdef0123456789abcdef01234567"]) {
            const image = accepted({ source: { ref } }).image;
            assert.ok(image.kind === "build" && image.ref === ref, ref);
        }
    });

    test("a context may walk inside the repository, and a name that only starts with dots is not ..", () => {
        for (const context of ["docker/sabredav", "src/../docker/sabredav", "..caldav"]) {
            const image = accepted({ source: { context } }).image;
            assert.ok(image.kind === "build" && image.context === context, context);
        }
    });

    test("image names: separators may repeat inside any path component, never end or start one", () => {
        for (const imageName of ["calendars--caldav", "team/cal__dav-server", "registry.example.org/suite/cal.dav_x--y", "a/b/c"]) {
            const image = accepted({ imageName }).image;
            assert.ok(image.kind === "build" && image.imageName === imageName, imageName);
        }
        for (const imageName of ["team/caldav-", "team/-caldav", "caldav_", "team//caldav", "team/cal dav"]) {
            assertRejected({ imageName }, "imageName", "is not a Docker repository name");
        }
    });

    test("source settings are passed on as set, and the image name may carry a registry path", () => {
        const image = accepted({
            source: { repo: "https://git.example.org/calendars.git", ref: "v2.0.0", context: "docker/sabredav", cacheDir: "/var/cache/caldav" },
            imageName: "registry.example.org/team/caldav",
        }).image;
        assert.deepEqual(image, {
            kind: "build", repo: "https://git.example.org/calendars.git", ref: "v2.0.0", context: "docker/sabredav",
            imageName: "registry.example.org/team/caldav", cacheDir: "/var/cache/caldav",
        });
    });

    test("the default cache directory follows XDG_CACHE_HOME, else ~/.cache", () => {
        const saved = process.env.XDG_CACHE_HOME;
        try {
            process.env.XDG_CACHE_HOME = "/xdg-cache";
            const image = accepted({}).image;
            assert.ok(image.kind === "build");
            assert.equal(image.cacheDir, "/xdg-cache/calendars-caldav/sources");
            delete process.env.XDG_CACHE_HOME;
            const fallback = accepted({}).image;
            assert.ok(fallback.kind === "build");
            assert.equal(fallback.cacheDir, path.join(os.homedir(), ".cache", "calendars-caldav", "sources"));
        } finally {
            if (saved === undefined) {
                delete process.env.XDG_CACHE_HOME;
            } else {
                process.env.XDG_CACHE_HOME = saved;
            }
        }
    });

    test("a prebuilt image may be pinned by digest alone, by a registry with a port, or by latest plus a digest", () => {
        for (const reference of [
            `ghcr.io/suitenumerique/calendars-caldav@${DIGEST}`,
            "registry.local:5000/caldav:v1.2",
            `ghcr.io/suitenumerique/calendars-caldav:latest@${DIGEST}`,
        ]) {
            assert.deepEqual(accepted({ prebuiltImage: reference }).image, { kind: "prebuilt", reference }, reference);
        }
    });
});

describe("config: network", () => {
    rejects([
        ["a network name starting with -", { network: { name: "-net" } }, "network.name", "is not a Docker network name"],
        ["a network name with a space", { network: { name: "my net" } }, "network.name", "is not a Docker network name"],
        ["a subnet wider than /8", { network: { subnet: "10.0.0.0/7", backendIp: "10.0.0.30" } }, "network.subnet", "from /8 to /28"],
        ["a subnet narrower than /28", { network: { subnet: "10.0.0.0/29", backendIp: "10.0.0.3" } }, "network.subnet", "from /8 to /28"],
        ["the subnet's network address as the backend IP", { network: { backendIp: "172.29.0.0" } }, "network.backendIp", "is the network or broadcast address of 172.29.0.0/16; network.backendIp needs"],
        ["the subnet's broadcast address as the backend IP", { network: { backendIp: "172.29.255.255" } }, "network.backendIp", "is the network or broadcast address"],
        ["the gateway of a created network as the caldav IP", { network: { create: true, caldavIp: "172.29.0.1" } }, "network.caldavIp", "pick another address for network.caldavIp"],
        ["a caldav IP that is no IPv4 address", { network: { caldavIp: "calendars" } }, "network.caldavIp", "is not an IPv4 address"],
        ["the broadcast address as the caldav IP", { network: { caldavIp: "172.29.255.255" } }, "network.caldavIp", "needs a host address"],
        ["an alias with capitals", { network: { alias: "CalDAV" } }, "network.alias", "is not a DNS name"],
        ["an alias with an underscore", { network: { alias: "cal_dav" } }, "network.alias", "is not a DNS name"],
    ]);

    test("a subnet that is no CIDR is reported with the other network keys, which are still checked", () => {
        const problems = thrown({ network: { subnet: "bogus", backendIp: "172.29.0.0", alias: "Bad_Alias" } }).problems;
        assert.ok(problems.some((p) => p.startsWith("calendars-caldav:network.subnet \"bogus\" is not an IPv4 CIDR")), problems.join("\n"));
        assert.ok(problems.some((p) => p.startsWith("calendars-caldav:network.backendIp ") && p.includes("network or broadcast address")), problems.join("\n"));
        assert.ok(problems.some((p) => p.startsWith("calendars-caldav:network.alias ")), problems.join("\n"));
    });

    test("the gateway is refused only on a network this stack creates", () => {
        assert.equal(accepted({ network: { backendIp: "172.29.0.1" } }).network.backendIp, "172.29.0.1");
        assert.equal(accepted({ network: { caldavIp: "172.29.0.1" } }).network.caldavIp, "172.29.0.1");
    });

    test("subnets from /8 to /28 are accepted, with their gateway", () => {
        const wide = accepted({ network: { subnet: "10.0.0.0/8", backendIp: "10.0.0.30" } }).network;
        assert.deepEqual([wide.subnet, wide.gateway], ["10.0.0.0/8", "10.0.0.1"]);
        const narrow = accepted({ network: { subnet: "10.0.0.16/28", backendIp: "10.0.0.20" } }).network;
        assert.deepEqual([narrow.subnet, narrow.gateway], ["10.0.0.16/28", "10.0.0.17"]);
    });

    test("the allocation range leaves the CalDAV server's fixed IP out too", () => {
        const base = { name: "caldav_net", subnet: "10.20.0.0/24", backendIp: "10.20.0.200" };
        assert.equal(accepted({ network: base }).network.allocationRange, "10.20.0.64/26");
        const withCaldav = accepted({ network: { ...base, caldavIp: "10.20.0.100" } }).network;
        assert.equal(withCaldav.allocationRange, "10.20.0.128/26");
        assert.deepEqual([withCaldav.name, withCaldav.caldavIp, withCaldav.backendIp], ["caldav_net", "10.20.0.100", "10.20.0.200"]);
    });

    test("a custom alias and a subnet that is not the default are used as set", () => {
        const network = accepted({ network: { alias: "dav.internal", subnet: "192.168.64.0/20", backendIp: "192.168.64.30" } }).network;
        assert.deepEqual([network.alias, network.subnet, network.backendIp], ["dav.internal", "192.168.64.0/20", "192.168.64.30"]);
    });
});

describe("config: postgres", () => {
    rejects([
        ["a host name with an underscore", { postgres: { host: "pg_main" } }, "postgres.host", "is not a host name or IPv4 address"],
        ["an admin host starting with -", { postgres: { adminHost: "-db" } }, "postgres.adminHost", "is not a host name or IPv4 address"],
        ["a user that is not an identifier", { postgres: { user: "cal-dav" } }, "postgres.user", "plain SQL identifier"],
        ["an admin user that is not an identifier", { postgres: { adminUser: "admin user" } }, "postgres.adminUser", "plain SQL identifier"],
        ["an identifier over 63 characters", { postgres: { database: "d".repeat(64) } }, "postgres.database", "at most 63 characters"],
        // Every step must name the same schema: PostgreSQL folds unquoted names, keeps quoted ones.
        ["a schema in upper case", { postgres: { schema: "Sabre" } }, "postgres.schema", "must be a lower-case SQL identifier"],
        ["a schema over 63 characters", { postgres: { schema: "s".repeat(64) } }, "postgres.schema", "at most 63 characters"],
        ["the public schema", { postgres: { schema: "public" } }, "postgres.schema", "not public or pg_*: dumps and restores replace the whole schema"],
        ["a system schema", { postgres: { schema: "pg_catalog" } }, "postgres.schema", "not public or pg_*"],
        ["port 0", { postgres: { port: 0 } }, "postgres.port", "from 1 to 65535"],
        ["an admin port over 65535", { postgres: { adminPort: 65536 } }, "postgres.adminPort", "from 1 to 65535"],
        ["a fractional port", { postgres: { port: 5432.5 } }, "postgres.port", "from 1 to 65535"],
        ["a negative port as text", { postgres: { port: "-5432" } }, "postgres.port", "\"-5432\" must be a whole number from 1 to 65535"],
        ["a bundled image on latest", { postgres: { bundledImage: "postgres:latest" } }, "postgres.bundledImage", "not latest"],
        ["bundled PostgreSQL behind localhost's name on another host", { postgres: { mode: "bundled", adminHost: "127.0.0.2" }, network: { create: true } }, "postgres.adminHost", "\"127.0.0.2\" cannot reach the bundled PostgreSQL"],
    ]);

    test("host names may be upper case, IPv4 addresses and the longest SQL identifiers are accepted", () => {
        const postgres = accepted({ postgres: { host: "PG.Internal", adminHost: "10.1.2.3", database: "d".repeat(63), user: "_caldav1", schema: "_sabre_2" } }).postgres;
        assert.deepEqual([postgres.host, postgres.admin.host, postgres.database, postgres.user, postgres.schema],
            ["PG.Internal", "10.1.2.3", "d".repeat(63), "_caldav1", "_sabre_2"]);
    });

    test("a port set as text must be plain digits: no sign, fraction, exponent or hex", () => {
        for (const port of ["+5432", "5432.0", "5e3", "0x1538", "", "5432 5433"]) {
            assertRejected({ postgres: { port } }, "postgres.port", "must be a whole number from 1 to 65535");
        }
        assertRejected({ postgres: { port: true } }, "postgres.port", "true must be a whole number from 1 to 65535");
    });

    test("single-character DNS labels are host names", () => {
        const postgres = accepted({ postgres: { host: "q", adminHost: "a.b.c" } }).postgres;
        assert.deepEqual([postgres.host, postgres.admin.host], ["q", "a.b.c"]);
        assert.equal(accepted({ network: { alias: "d.x" } }).network.alias, "d.x");
    });

    test("ports at both ends of the range, and ports set as text with spaces", () => {
        assert.equal(accepted({ postgres: { port: 1 } }).postgres.port, 1);
        assert.equal(accepted({ postgres: { port: 65535 } }).postgres.port, 65535);
        assert.equal(accepted({ postgres: { port: " 6432 " } }).postgres.port, 6432);
    });

    test("every sslmode the provider knows is accepted", () => {
        for (const sslmode of ["disable", "require", "verify-ca", "verify-full"]) {
            assert.equal(accepted({ postgres: { sslmode, adminHost: "db.internal" } }).postgres.admin.sslmode, sslmode);
        }
    });

    test("an existing role: no generated password, postgresPassword is the one", async () => {
        const postgres = accepted({ postgres: { createUser: false, user: "messages" } }, { ...ADMIN, postgresPassword: "role-secret" }).postgres;
        assert.equal(postgres.createUser, false);
        assert.ok(postgres.password, "the role's password is kept");
        assert.equal(await new Promise((resolve) => postgres.password!.apply(resolve)), "role-secret");
        assert.equal(await pulumi.isSecret(postgres.password!), true);
    });

    test("a created role ignores postgresPassword", () => {
        const postgres = accepted({}, { ...ADMIN, postgresPassword: "role-secret" }).postgres;
        assert.equal(postgres.createUser, true);
        assert.equal(postgres.password, undefined);
    });

    test("the external admin password comes from postgresAdminPassword, as a secret", async () => {
        const postgres = accepted({ postgres: { adminHost: "db.internal", adminUser: "root_admin" } }, { postgresAdminPassword: "the-admin-secret" }).postgres;
        assert.ok(postgres.mode === "external");
        assert.equal(postgres.admin.user, "root_admin");
        assert.equal(await new Promise((resolve) => postgres.admin.password.apply(resolve)), "the-admin-secret");
        assert.equal(await pulumi.isSecret(postgres.admin.password), true);
    });

    test("bundled mode needs no admin password, takes 127.0.0.1, and any name on a network of its own", () => {
        const postgres = accepted({ postgres: { mode: "bundled", adminHost: "127.0.0.1", host: "postgresql", bundledImage: "postgres:16.4-bookworm" }, network: { create: true } }, {}).postgres;
        assert.deepEqual([postgres.mode, postgres.admin.host, postgres.host, postgres.bundledImage], ["bundled", "127.0.0.1", "postgresql", "postgres:16.4-bookworm"]);
        const attached = accepted({ postgres: { mode: "bundled", host: "caldav-db" } }, {}).postgres;
        assert.deepEqual([attached.mode, attached.host, attached.admin.host], ["bundled", "caldav-db", "localhost"]);
    });

    test("bundled mode refuses every Messages service name on an existing network, not only postgresql, saying what to do", () => {
        assertRejected({ postgres: { mode: "bundled", host: "redis" } }, "postgres.host", "\"redis\" would name the bundled PostgreSQL on the existing network messages_internal", {});
        assertRejected({ postgres: { mode: "bundled", host: "redis" } }, "postgres.host", "use postgres.mode external there, or another postgres.host", {});
    });

    test("a created network with an external PostgreSQL says where adminHost must point", () => {
        assertRejected({ network: { create: true } }, "postgres.adminHost", "set it to where this machine reaches PostgreSQL");
    });

    test("an external PostgreSQL on an existing network needs no admin host", () => {
        assert.equal(accepted({}).postgres.admin.host, undefined);
    });
});

describe("config: caldav server and backups", () => {
    rejects([
        ["a publish address that is no IPv4", { caldav: { publish: "localhost:8080" } }, "caldav.publish", "must be <IPv4>:<port>"],
        ["publishing on port 0", { caldav: { publish: "127.0.0.1:0" } }, "caldav.publish", "must be <IPv4>:<port>"],
        ["a base URI with a space", { caldav: { baseUri: "/cal dav/" } }, "caldav.baseUri", "must start and end with /"],
        ["a memory limit over 64 GiB", { caldav: { memoryMb: 65537 } }, "caldav.memoryMb", "from 128 to 65536"],
        ["a health timeout under 10 s", { caldav: { healthTimeoutSeconds: 9 } }, "caldav.healthTimeoutSeconds", "from 10 to 3600"],
        ["a health timeout over an hour", { caldav: { healthTimeoutSeconds: 3601 } }, "caldav.healthTimeoutSeconds", "from 10 to 3600"],
        ["a container name with a slash", { caldav: { containerName: "caldav/server" } }, "caldav.containerName", "is not a Docker container name"],
        ["a container name Messages uses", { caldav: { containerName: "backend" } }, "caldav.containerName", "Messages already uses"],
        ["the root directory as backup location", { backup: { location: "/" } }, "backup.location", "must be a directory below /"],
        ["a backup directory that normalises to /", { backup: { location: "/srv/.." } }, "backup.location", "must be a directory below /"],
        ["a backup directory with a colon", { backup: { location: "/srv/a:b" } }, "backup.location", "without : or ,"],
        ["a backup directory with a comma", { backup: { location: "/srv/a,b" } }, "backup.location", "without : or ,"],
        ["a backup volume name with a space", { backup: { location: "my backups" } }, "backup.location", "is neither an absolute host path nor a Docker volume name"],
        ["keeping no dump", { backup: { keep: 0 } }, "backup.keep", "from 1 to 1000"],
        ["keeping over 1000 dumps", { backup: { keep: 1001 } }, "backup.keep", "from 1 to 1000"],
        ["a backup image without a tag", { backup: { image: "postgres" } }, "backup.image", "must name a tag or a digest"],
        ["backups switched on with a word", { backup: { enabled: "yes" } }, "backup.enabled", "must be true or false"],
    ]);

    test("a published port is digits to the end, from 1", () => {
        assertRejected({ caldav: { publish: "127.0.0.1:8080x" } }, "caldav.publish", "must be <IPv4>:<port>");
        assert.deepEqual(accepted({ caldav: { publish: "127.0.0.1:1" } }).caldav.publish, { ip: "127.0.0.1", port: 1 });
    });

    test("base URIs of several segments, one character or more each, are accepted", () => {
        for (const baseUri of ["/dav/", "/d/", "/calendars/dav.v2/"]) {
            assert.equal(accepted({ caldav: { baseUri } }).caldav.baseUri, baseUri);
        }
    });

    test("a host directory without a trailing / is a host directory, not a volume", () => {
        assert.deepEqual(accepted({ backup: { location: "/srv/caldav-dumps" } }).backup.location, { kind: "hostPath", path: "/srv/caldav-dumps" });
    });

    test("limits at both ends of their ranges are accepted", () => {
        const low = accepted({ caldav: { memoryMb: 128, healthTimeoutSeconds: 10 }, backup: { keep: 1 } });
        assert.deepEqual([low.caldav.memoryMb, low.caldav.healthTimeoutSeconds, low.backup.keep], [128, 10, 1]);
        const high = accepted({ caldav: { memoryMb: 65536, healthTimeoutSeconds: 3600 }, backup: { keep: 1000 } });
        assert.deepEqual([high.caldav.memoryMb, high.caldav.healthTimeoutSeconds, high.backup.keep], [65536, 3600, 1000]);
    });

    test("caldav settings are passed on as set", () => {
        const caldav = accepted({ caldav: { baseUri: "/", publish: "10.0.0.5:65535", containerName: "caldav.prod_1", memoryMb: 768, healthTimeoutSeconds: 240 } }).caldav;
        assert.deepEqual(caldav, { baseUri: "/", publish: { ip: "10.0.0.5", port: 65535 }, memoryMb: 768, containerName: "caldav.prod_1", healthTimeoutSeconds: 240 });
    });

    test("backups: on by default, in a volume named after the container, keeping 7, with the bundled server's image", () => {
        const backup = accepted({ caldav: { containerName: "caldav-eu" }, postgres: { bundledImage: "postgres:16.4-bookworm" } }).backup;
        assert.deepEqual(backup, { enabled: true, location: { kind: "volume", name: "caldav-eu-backups" }, keep: 7, image: "postgres:16.4-bookworm" });
    });

    test("backup settings are passed on as set; a host directory is normalised without its trailing /", () => {
        const backup = accepted({ backup: { enabled: "false", location: "/srv//caldav/./dumps/", keep: 30, image: `postgres@${DIGEST}` } }).backup;
        assert.deepEqual(backup, { enabled: false, location: { kind: "hostPath", path: "/srv/caldav/dumps" }, keep: 30, image: `postgres@${DIGEST}` });
        assert.deepEqual(accepted({ backup: { location: "caldav_dumps.v2" } }).backup.location, { kind: "volume", name: "caldav_dumps.v2" });
    });
});

describe("config: callback URL, api keys, protect", () => {
    rejects([
        ["a callback URL over ftp", { callbackBaseUrl: "ftp://172.29.0.30/" }, "callbackBaseUrl", "must be a plain http(s) URL"],
        ["a callback URL with a fragment", { callbackBaseUrl: "http://172.29.0.30:8000/#x" }, "callbackBaseUrl", "must be a plain http(s) URL"],
        ["a callback URL with credentials", { callbackBaseUrl: "http://user@172.29.0.30:8000" }, "callbackBaseUrl", "must be a plain http(s) URL"],
        ["a callback URL on the backend host name, suggesting the fixed IP", { callbackBaseUrl: "https://backend" }, "callbackBaseUrl", "use http://172.29.0.30:8000"],
        ["protect set to a word", { protect: "always" }, "protect", "\"always\" must be true or false"],
    ]);

    test("an https callback URL is kept, without trailing slashes", () => {
        assert.equal(accepted({ callbackBaseUrl: "https://calendars.example.org/backend//" }).callbackBaseUrl, "https://calendars.example.org/backend");
    });

    test("the default callback URL follows the backend IP and port", () => {
        assert.equal(accepted({ network: { backendIp: "172.29.3.4" }, backendPort: 9000 }).callbackBaseUrl, "http://172.29.3.4:9000");
    });

    test("api keys: separate mode and a rotation, set as a number, are kept", () => {
        assert.deepEqual(accepted({ apiKeys: { mode: "separate", rotation: 2 } }).apiKeys, { mode: "separate", rotation: "2" });
    });

    test("protect takes true and false, as booleans or text", () => {
        assert.equal(accepted({ protect: false }).protect, false);
        assert.equal(accepted({ protect: "false" }).protect, false);
        assert.equal(accepted({ protect: "true" }).protect, true);
        assert.equal(accepted({ network: { create: true }, postgres: { adminHost: "db.internal" } }).network.create, true);
    });
});

describe("config: reading the raw values", () => {
    test("a field set to null takes its default", () => {
        const config = accepted({ postgres: { port: null, database: null }, caldav: { memoryMb: null } });
        assert.deepEqual([config.postgres.port, config.postgres.database, config.caldav.memoryMb], [5432, "caldav", 512]);
    });

    test("values are trimmed", () => {
        assert.equal(accepted({ postgres: { database: "  calendars  " } }).postgres.database, "calendars");
    });

    test("a field holding an object or a list is refused, showing what it got", () => {
        assertRejected({ postgres: { database: { name: "caldav" } } }, "postgres.database", "must be a string, got {\"name\":\"caldav\"}");
        assertRejected({ postgres: { schema: ["sabre"] } }, "postgres.schema", "must be a string, got [\"sabre\"]");
    });

    test("an empty value says to unset it", () => {
        assertRejected({ postgres: { user: "  " } }, "postgres.user", "\"\" must not be empty; unset it to use the default");
    });

    test("an object key that is not JSON, or a list, is refused with the way to set its fields", () => {
        assertRejected({ caldav: "{not json" }, "caldav", "must be an object; set its fields with: pulumi config set --path 'caldav.<field>' <value>");
        assertRejected({ backup: ["enabled"] }, "backup", "must be an object");
        assertRejected({ apiKeys: "null" }, "apiKeys", "must be an object");
    });

    test("an unknown field lists the fields its object accepts", () => {
        assertRejected({ apiKeys: { roation: "2" } }, "apiKeys.roation", "is not a known key; apiKeys accepts: mode, rotation");
    });

    test("a dotted top-level key is not a field of an object", () => {
        assertRejected({ "postgres.host": "db" }, "postgres.host", "is not a known key; see the config table in README.md");
    });

    test("the secrets, every scalar and every object are known keys", () => {
        accepted({
            imageName: "caldav", backendPort: 8000, callbackBaseUrl: "http://172.29.0.30:8000", protect: true,
            source: {}, network: {}, postgres: { createUser: false }, apiKeys: {}, caldav: {}, backup: {},
        }, { postgresAdminPassword: "a", postgresPassword: "b" });
        accepted({ prebuiltImage: "ghcr.io/suitenumerique/calendars-caldav:v0.1.0" });
    });

    test("the error counts its problems, one per line", () => {
        const one = thrown({ postgres: { port: 0 } });
        assert.equal(one.message, "invalid configuration (1 problem):\n  - calendars-caldav:postgres.port 0 must be a whole number from 1 to 65535");
        const two = thrown({ postgres: { port: 0, adminPort: 0 } });
        assert.match(two.message, /^invalid configuration \(2 problems\):\n {2}- calendars-caldav:postgres\.port .*\n {2}- calendars-caldav:postgres\.adminPort /);
    });

    test("the container name defaults to the project and stack", () => {
        assert.equal(parseConfig(source({}, ADMIN, "eu-west")).caldav.containerName, "calendars-caldav-eu-west");
    });
});
