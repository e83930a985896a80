import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
    broadcastAddress,
    cidrContains,
    defaultGateway,
    formatCidr,
    formatIpv4,
    largestFreeBlock,
    parseCidr,
    parseIpv4,
} from "./ipv4";
import { FULL_SHA } from "./source";

export const PROJECT = "calendars-caldav";

/** Service names a La Suite Messages installation already uses on its network (DNS clashes). */
export const MESSAGES_SERVICE_NAMES = [
    "app", "backend", "celery", "frontend", "keycloak", "mailcatcher", "minio", "mpa", "mta-in",
    "mta-out", "nginx", "objectstorage", "opensearch", "postgresql", "redis", "socks-proxy", "worker",
];

export type ImageConfig =
    | { kind: "build"; repo: string; ref: string; context: string; imageName: string; cacheDir: string }
    | { kind: "prebuilt"; reference: string };

export interface NetworkConfig {
    name: string;
    /** true: this stack creates and owns the network; false: attach to an existing one. */
    create: boolean;
    subnet: string;
    gateway: string;
    /** Docker's dynamic allocation range: the subnet minus the fixed addresses. */
    allocationRange: string;
    backendIp: string;
    caldavIp?: string;
    alias: string;
}

export interface PostgresAdminConfig {
    /**
     * Where the machine running `pulumi` connects. Unset (external mode only):
     * the address, on network.name, of the container postgres.host names.
     */
    host?: string;
    port: number;
    user: string;
    sslmode: string;
}

interface PostgresCommonConfig {
    host: string;
    port: number;
    database: string;
    schema: string;
    user: string;
    createUser: boolean;
    /** Password of an existing role; set only when createUser is false. */
    password?: pulumi.Output<string>;
    bundledImage: string;
}

/** external: the Messages server, reached with postgresAdminPassword; bundled: a server of this stack's own. */
export type PostgresConfig = PostgresCommonConfig & (
    | { mode: "external"; admin: PostgresAdminConfig & { password: pulumi.Output<string> } }
    | { mode: "bundled"; admin: PostgresAdminConfig & { host: string } }
);

export interface CaldavServerConfig {
    baseUri: string;
    publish?: { ip: string; port: number };
    memoryMb: number;
    containerName: string;
    healthTimeoutSeconds: number;
}

/** Dumps of the CalDAV schema taken before each image change. */
export interface BackupConfig {
    enabled: boolean;
    /** Where dumps go: a Docker volume of this stack, or an existing directory of the Docker host. */
    location: { kind: "volume"; name: string } | { kind: "hostPath"; path: string };
    /** How many dumps to keep (the oldest beyond are removed). */
    keep: number;
    /** Image with pg_dump/pg_restore at least as new as the server. */
    image: string;
}

export interface CaldavConfig {
    image: ImageConfig;
    network: NetworkConfig;
    backendPort: number;
    callbackBaseUrl: string;
    postgres: PostgresConfig;
    apiKeys: { mode: "shared" | "separate"; rotation: string };
    caldav: CaldavServerConfig;
    backup: BackupConfig;
    protect: boolean;
}

/** Where raw values come from: the stack's config, or a fake in unit tests. */
export interface ConfigSource {
    stack: string;
    /** Every key set in the project namespace, without the `calendars-caldav:` prefix. */
    keys(): string[];
    get(key: string): string | undefined;
    secret(key: string): pulumi.Output<string> | undefined;
}

/** Thrown with every problem at once; RunError prints the message without a stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(public readonly problems: string[]) {
        super(
            `invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

const OBJECT_KEYS: Record<string, string[]> = {
    source: ["repo", "ref", "context", "cacheDir"],
    network: ["name", "create", "subnet", "backendIp", "caldavIp", "alias"],
    postgres: [
        "mode", "host", "port", "adminHost", "adminPort", "adminUser", "sslmode", "database", "schema",
        "user", "createUser", "bundledImage",
    ],
    apiKeys: ["mode", "rotation"],
    caldav: ["baseUri", "publish", "memoryMb", "containerName", "healthTimeoutSeconds"],
    backup: ["enabled", "location", "keep", "image"],
};
const SECRET_KEYS = ["postgresAdminPassword", "postgresPassword"];
const SCALAR_KEYS = ["imageName", "prebuiltImage", "backendPort", "callbackBaseUrl", "protect"];

/** Every key this program reads, dotted (`postgres.host`): what the README's reference must list. */
export const CONFIG_KEYS: readonly string[] = [
    ...Object.entries(OBJECT_KEYS).flatMap(([name, fields]) => fields.map((field) => `${name}.${field}`)),
    ...SCALAR_KEYS,
    ...SECRET_KEYS,
];

const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const IMAGE_REPOSITORY = /^[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/;
const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"];

/**
 * Reads typed values out of the raw config and records, rather than throws,
 * each problem, so that one run reports every bad key.
 */
class Reader {
    readonly problems: string[] = [];
    private readonly objects = new Map<string, Record<string, unknown>>();

    constructor(readonly source: ConfigSource) {
        for (const key of source.keys()) {
            const [top, ...rest] = key.split(".");
            if (rest.length > 0 || !(top in OBJECT_KEYS || SCALAR_KEYS.includes(top) || SECRET_KEYS.includes(top))) {
                this.fail(key, `is not a known key; see the config table in README.md`);
            }
        }
        for (const [name, fields] of Object.entries(OBJECT_KEYS)) {
            this.objects.set(name, this.readObject(name, fields));
        }
    }

    fail(key: string, message: string): void {
        this.problems.push(`${PROJECT}:${key} ${message}`);
    }

    private readObject(name: string, fields: string[]): Record<string, unknown> {
        const text = this.source.get(name);
        if (text === undefined) {
            return {};
        }
        let value: unknown;
        try {
            value = JSON.parse(text);
        } catch {
            value = undefined;
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
            this.fail(name, `must be an object; set its fields with: pulumi config set --path '${name}.<field>' <value>`);
            return {};
        }
        const record = value as Record<string, unknown>;
        for (const field of Object.keys(record)) {
            if (!fields.includes(field)) {
                this.fail(`${name}.${field}`, `is not a known key; ${name} accepts: ${fields.join(", ")}`);
            }
        }
        return record;
    }

    /** Raw value of `key` (`a.b` reads field b of object a), undefined when unset. */
    raw(key: string): unknown {
        const [top, field] = key.split(".");
        if (field === undefined) {
            return this.source.get(top);
        }
        const value = this.objects.get(top)?.[field];
        return value === null ? undefined : value;
    }

    string(key: string, fallback: string, check?: (value: string) => string | undefined): string {
        const value = this.raw(key);
        if (value === undefined) {
            return fallback;
        }
        if (typeof value !== "string" && typeof value !== "number") {
            this.fail(key, `must be a string, got ${JSON.stringify(value)}`);
            return fallback;
        }
        const text = String(value).trim();
        const problem = text === "" ? "must not be empty; unset it to use the default" : check?.(text);
        if (problem !== undefined) {
            this.fail(key, `${JSON.stringify(text)} ${problem}`);
            return fallback;
        }
        return text;
    }

    optionalString(key: string, check: (value: string) => string | undefined): string | undefined {
        return this.raw(key) === undefined ? undefined : this.string(key, "", check) || undefined;
    }

    integer(key: string, fallback: number, min: number, max: number): number {
        const value = this.raw(key);
        if (value === undefined) {
            return fallback;
        }
        const number = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
        if (typeof number !== "number" || !Number.isInteger(number) || number < min || number > max) {
            this.fail(key, `${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
            return fallback;
        }
        return number;
    }

    boolean(key: string, fallback: boolean): boolean {
        const value = this.raw(key);
        if (value === undefined) {
            return fallback;
        }
        if (value === true || value === "true") {
            return true;
        }
        if (value === false || value === "false") {
            return false;
        }
        this.fail(key, `${JSON.stringify(value)} must be true or false`);
        return fallback;
    }

    oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
        return this.string(key, fallback, (v) =>
            allowed.includes(v as T) ? undefined : `is not one of: ${allowed.join(", ")}`,
        ) as T;
    }
}

function checkSqlIdentifier(value: string): string | undefined {
    return SQL_IDENTIFIER.test(value)
        ? undefined
        : "is not a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63 characters)";
}

// Lower case only: every step (server, dump, restore) must name the same schema, and
// PostgreSQL folds an unquoted name while a quoted one keeps its case. The dump and
// the restore replace the whole schema, so it must be one of the server's own.
function checkSchemaName(value: string): string | undefined {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
        return "must be a lower-case SQL identifier (a-z, 0-9 and _, not starting with a digit, at most 63 characters)";
    }
    return value === "public" || value.startsWith("pg_")
        ? "must be a schema of its own (e.g. sabre), not public or pg_*: dumps and restores replace the whole schema"
        : undefined;
}

function checkNotOption(value: string): string | undefined {
    return value.startsWith("-") ? "must not start with '-'" : undefined;
}

function checkGitRef(value: string): string | undefined {
    if (FULL_SHA.test(value)) {
        return undefined;
    }
    const bad =
        value.startsWith("-") || value.startsWith("/") || value.endsWith("/") || value.endsWith(".") ||
        value.endsWith(".lock") || value.includes("..") || value.includes("@{") || /[\s~^:?*[\\\x00-\x1f\x7f]/.test(value);
    return bad ? "is not a valid branch, tag or full 40-character commit SHA" : undefined;
}

function checkRelativePath(value: string): string | undefined {
    const normalized = path.posix.normalize(value);
    return path.posix.isAbsolute(value) || normalized === ".." || normalized.startsWith("../")
        ? "must be a path inside the repository (relative, without ..)"
        : undefined;
}

function checkPinnedImage(value: string): string | undefined {
    const digest = /@sha256:[0-9a-f]{64}$/.test(value);
    // After an `@` comes a digest, never a tag: `name@sha256:abc` is a malformed digest.
    const tag = value.includes("@") ? undefined : /:([\w][\w.-]{0,127})$/.exec(value.split("/").pop() ?? "")?.[1];
    if (/\s/.test(value) || (!digest && tag === undefined)) {
        return "must name a tag or a digest (e.g. ghcr.io/suitenumerique/calendars-caldav:v0.1.0)";
    }
    return !digest && tag === "latest" ? "must be pinned to a version tag or a digest, not latest" : undefined;
}

function checkHost(value: string): string | undefined {
    return parseIpv4(value) !== undefined || DNS_NAME.test(value.toLowerCase())
        ? undefined
        : "is not a host name or IPv4 address";
}

function defaultCacheDir(): string {
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
    return path.join(base, PROJECT, "sources");
}

function readImage(r: Reader): ImageConfig {
    const prebuilt = r.optionalString("prebuiltImage", checkPinnedImage);
    const repo = r.string("source.repo", "https://github.com/suitenumerique/calendars.git", checkNotOption);
    const ref = r.string("source.ref", "main", checkGitRef);
    const context = r.string("source.context", "src/caldav", checkRelativePath);
    const imageName = r.string("imageName", PROJECT, (v) =>
        IMAGE_REPOSITORY.test(v) ? undefined : "is not a Docker repository name (lowercase, e.g. calendars-caldav)",
    );
    const cacheDir = r.string("source.cacheDir", defaultCacheDir(), (v) =>
        path.isAbsolute(v) ? undefined : "must be an absolute path",
    );
    if (prebuilt !== undefined) {
        return { kind: "prebuilt", reference: prebuilt };
    }
    return { kind: "build", repo, ref, context, imageName, cacheDir };
}

function readNetwork(r: Reader): NetworkConfig {
    const name = r.string("network.name", "messages_internal", (v) =>
        DOCKER_NAME.test(v) ? undefined : "is not a Docker network name",
    );
    const create = r.boolean("network.create", false);
    const subnetText = r.string("network.subnet", "172.29.0.0/16", (v) => {
        const cidr = parseCidr(v);
        if (cidr === undefined) {
            return "is not an IPv4 CIDR whose address is the network address (e.g. 172.29.0.0/16)";
        }
        return cidr.prefix < 8 || cidr.prefix > 28 ? "must have a prefix length from /8 to /28" : undefined;
    });
    const subnet = parseCidr(subnetText) ?? parseCidr("172.29.0.0/16")!;
    const gateway = defaultGateway(subnet);

    const address = (key: string, value: string): string | undefined => {
        const ip = parseIpv4(value);
        if (ip === undefined) {
            return "is not an IPv4 address";
        }
        if (!cidrContains(subnet, ip)) {
            return `is outside network.subnet ${subnetText}; use an address of that subnet or change network.subnet`;
        }
        if (ip === subnet.network || ip === broadcastAddress(subnet)) {
            return `is the network or broadcast address of ${subnetText}; ${key} needs a host address`;
        }
        return create && ip === gateway
            ? `is the gateway of the network this stack creates; pick another address for ${key}`
            : undefined;
    };
    const backendIp = r.string("network.backendIp", "172.29.0.30", (v) => address("network.backendIp", v));
    const caldavIp = r.optionalString("network.caldavIp", (v) =>
        address("network.caldavIp", v) ?? (v === backendIp ? "is network.backendIp; the two containers need different addresses" : undefined),
    );
    const alias = r.string("network.alias", PROJECT, (v) => {
        if (!DNS_NAME.test(v)) {
            return "is not a DNS name (lowercase letters, digits and -)";
        }
        return MESSAGES_SERVICE_NAMES.includes(v)
            ? "is a service name Messages already uses on this network; Docker DNS would resolve it to two containers (pick e.g. calendars-caldav)"
            : undefined;
    });

    const reserved = [gateway, parseIpv4(backendIp)!, ...(caldavIp ? [parseIpv4(caldavIp)!] : [])];
    const range = largestFreeBlock(subnet, reserved)!;
    return {
        name,
        create,
        subnet: subnetText,
        gateway: formatIpv4(gateway),
        allocationRange: formatCidr(range),
        backendIp,
        caldavIp,
        alias,
    };
}

function readPostgres(r: Reader, network: NetworkConfig): PostgresConfig {
    const mode = r.oneOf("postgres.mode", "external", ["external", "bundled"] as const);
    const host = r.string("postgres.host", "postgresql", checkHost);
    const createUser = r.boolean("postgres.createUser", true);
    const password = r.source.secret("postgresPassword");
    if (!createUser && password === undefined) {
        r.fail("postgresPassword", "is required when postgres.createUser is false (existing role); set it with: pulumi config set --secret postgresPassword");
    }
    const common: PostgresCommonConfig = {
        host,
        port: r.integer("postgres.port", 5432, 1, 65535),
        database: r.string("postgres.database", "caldav", checkSqlIdentifier),
        schema: r.string("postgres.schema", "sabre", checkSchemaName),
        user: r.string("postgres.user", "caldav", checkSqlIdentifier),
        createUser,
        password: createUser ? undefined : password,
        bundledImage: r.string("postgres.bundledImage", "postgres:17.6-bookworm", checkPinnedImage),
    };
    const adminHost = r.optionalString("postgres.adminHost", checkHost);
    const admin: PostgresAdminConfig = {
        host: adminHost,
        // A looked-up address is the container's own, where PostgreSQL listens on postgres.port.
        port: r.integer("postgres.adminPort", adminHost === undefined && mode === "external" ? common.port : 5432, 1, 65535),
        user: r.string("postgres.adminUser", "messages", checkSqlIdentifier),
        sslmode: r.oneOf("postgres.sslmode", "disable", SSL_MODES),
    };

    if (mode === "bundled") {
        const bundledAdminHost = adminHost ?? "localhost";
        if (!["localhost", "127.0.0.1"].includes(bundledAdminHost)) {
            r.fail("postgres.adminHost", `"${bundledAdminHost}" cannot reach the bundled PostgreSQL, which is published on 127.0.0.1 only; use 127.0.0.1`);
        }
        if (!network.create && MESSAGES_SERVICE_NAMES.includes(host)) {
            r.fail(
                "postgres.host",
                `"${host}" would name the bundled PostgreSQL on the existing network ${network.name}, where Messages already runs one; ` +
                    "use postgres.mode external there, or another postgres.host",
            );
        }
        return { ...common, mode, admin: { ...admin, host: bundledAdminHost } };
    }
    if (adminHost === undefined && network.create) {
        r.fail(
            "postgres.adminHost",
            `is required when postgres.mode is external and network.create is true: the network does not exist before the first up, ` +
                `so there is no container to look postgres.host up on; set it to where this machine reaches PostgreSQL`,
        );
    }
    const adminPassword = r.source.secret("postgresAdminPassword");
    if (adminPassword === undefined) {
        r.fail("postgresAdminPassword", "is required when postgres.mode is external; set it with: pulumi config set --secret postgresAdminPassword");
    }
    return { ...common, mode, admin: { ...admin, password: adminPassword ?? pulumi.output("") } };
}

function readCaldav(r: Reader, source: ConfigSource): CaldavServerConfig {
    const publishText = r.optionalString("caldav.publish", (v) => {
        const match = /^(.+):(\d{1,5})$/.exec(v);
        const port = Number(match?.[2]);
        return match && parseIpv4(match[1]) !== undefined && port >= 1 && port <= 65535
            ? undefined
            : "must be <IPv4>:<port>, e.g. 127.0.0.1:8080";
    });
    const [publishIp, publishPort] = publishText?.split(":") ?? [];
    const containerName = r.string("caldav.containerName", `${PROJECT}-${source.stack}`, (v) =>
        !DOCKER_NAME.test(v)
            ? "is not a Docker container name"
            : MESSAGES_SERVICE_NAMES.includes(v) ? "is a service name Messages already uses on the network" : undefined,
    );
    return {
        baseUri: r.string("caldav.baseUri", "/caldav/", (v) =>
            /^\/([A-Za-z0-9._~-]+\/)*$/.test(v) ? undefined : "must start and end with / (e.g. /caldav/)",
        ),
        publish: publishText ? { ip: publishIp, port: Number(publishPort) } : undefined,
        memoryMb: r.integer("caldav.memoryMb", 512, 128, 65536),
        containerName,
        healthTimeoutSeconds: r.integer("caldav.healthTimeoutSeconds", 180, 10, 3600),
    };
}

function readBackup(r: Reader, caldav: CaldavServerConfig, postgres: PostgresConfig): BackupConfig {
    const location = r.string("backup.location", `${caldav.containerName}-backups`, (v) => {
        if (v.startsWith("/")) {
            return path.posix.normalize(v) === "/" || v.includes(":") || v.includes(",")
                ? "must be a directory below / without : or , (a Docker bind mount source)"
                : undefined;
        }
        return DOCKER_NAME.test(v) ? undefined : "is neither an absolute host path nor a Docker volume name";
    });
    return {
        enabled: r.boolean("backup.enabled", true),
        location: location.startsWith("/")
            ? { kind: "hostPath", path: path.posix.normalize(location).replace(/\/$/, "") }
            : { kind: "volume", name: location },
        keep: r.integer("backup.keep", 7, 1, 1000),
        // pg_dump must be at least as new as the server: the bundled server's image is.
        image: r.string("backup.image", postgres.bundledImage, checkPinnedImage),
    };
}

function readCallbackBaseUrl(r: Reader, network: NetworkConfig, backendPort: number): string {
    const fallback = `http://${network.backendIp}:${backendPort}`;
    return r.string("callbackBaseUrl", fallback, (v) => {
        let url: URL;
        try {
            url = new URL(v);
        } catch {
            return "is not a URL (e.g. http://172.29.0.30:8000)";
        }
        if (!["http:", "https:"].includes(url.protocol) || url.search || url.hash || url.username) {
            return "must be a plain http(s) URL without credentials, query or fragment";
        }
        return url.hostname === "backend"
            ? `must not use the host name backend: Messages has a backend too and Docker DNS picks either; use ${fallback}`
            : undefined;
    }).replace(/\/+$/, "");
}

/** Parses and validates every key; throws one ConfigError listing all problems. */
export function parseConfig(source: ConfigSource): CaldavConfig {
    const r = new Reader(source);
    const image = readImage(r);
    const network = readNetwork(r);
    const backendPort = r.integer("backendPort", 8000, 1, 65535);
    const caldav = readCaldav(r, source);
    const postgres = readPostgres(r, network);
    const config: CaldavConfig = {
        image,
        network,
        backendPort,
        callbackBaseUrl: readCallbackBaseUrl(r, network, backendPort),
        postgres,
        apiKeys: {
            mode: r.oneOf("apiKeys.mode", "shared", ["shared", "separate"] as const),
            rotation: r.string("apiKeys.rotation", "1"),
        },
        caldav,
        backup: readBackup(r, caldav, postgres),
        protect: r.boolean("protect", true),
    };
    if (r.problems.length > 0) {
        throw new ConfigError(r.problems);
    }
    return config;
}

/** The running stack's config as a ConfigSource. */
export function stackConfigSource(): ConfigSource {
    const config = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    return {
        stack: pulumi.getStack(),
        keys: () =>
            Object.keys(pulumi.runtime.allConfig())
                .filter((key) => key.startsWith(prefix))
                .map((key) => key.slice(prefix.length)),
        get: (key) => config.get(key),
        secret: (key) => config.getSecret(key),
    };
}

export function loadConfig(): CaldavConfig {
    return parseConfig(stackConfigSource());
}
