import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ApiKeys } from "./components/apiKeys";
import { BundledPostgres } from "./components/bundledPostgres";
import { loadConfig } from "./components/config";
import { CaldavDatabase } from "./components/database";
import { CaldavImage } from "./components/image";
import { CaldavNetwork } from "./components/network";
import { CaldavServer } from "./components/server";

const config = loadConfig();
const pg = config.postgres;

const network = new CaldavNetwork("network", config.network);

const admin = pg.mode === "bundled"
    ? new BundledPostgres("postgres", {
        image: pg.bundledImage,
        containerName: `${config.caldav.containerName}-postgres`,
        volumeName: `${config.caldav.containerName}-pgdata`,
        network: network.name,
        alias: pg.host,
        port: pg.port,
        adminUser: pg.admin.user,
        adminHost: pg.admin.host,
        adminPort: pg.admin.port,
    }).admin
    : pg.admin;

const database = new CaldavDatabase("database", {
    admin,
    database: pg.database,
    user: pg.user,
    existingUserPassword: pg.password,
    protect: config.protect,
});

const keys = new ApiKeys("api-keys", config.apiKeys);

const caldavImage = new CaldavImage("image", { source: config.image });

const server = new CaldavServer("caldav", {
    ...config.caldav,
    image: caldavImage.imageId,
    network: { name: network.name, alias: config.network.alias, ip: config.network.caldavIp },
    database: {
        host: pg.host,
        port: pg.port,
        name: database.databaseName,
        user: database.user,
        password: database.password,
        schema: pg.schema,
    },
    apiKeys: keys,
    callbackBaseUrl: config.callbackBaseUrl,
});

// `pulumi destroy` deletes in reverse dependency order and stops at the first protected
// resource: with only the database protected, it took the server down before refusing.
// This guard depends on every resource and carries the same protection, so the destroy
// of a protected stack stops before it deletes anything.
new random.RandomId("destroy-guard", { byteLength: 4 }, {
    protect: config.protect,
    dependsOn: [server, database],
});

export const caldavUrl = server.caldavUrl;
export const publicUrl = server.publicUrl;
export const callbackUrl = server.callbackUrl;
export const apiKeys = pulumi.secret({
    inbound: keys.inbound,
    outbound: keys.outbound,
    internal: keys.internal,
});
export const backendEnv = pulumi.secret({
    CALDAV_URL: server.origin,
    CALDAV_OUTBOUND_API_KEY: keys.outbound,
    CALDAV_INBOUND_API_KEY: keys.inbound,
    CALDAV_INTERNAL_API_KEY: keys.internal,
});
export const image = caldavImage.reference;
export const sourceCommit = caldavImage.sourceCommit;
export const databaseName = database.databaseName;
export const databaseUser = database.user;
export const networkName = network.name;
export const backendIp = config.network.backendIp;
export const containerName = server.containerName;
