import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ApiKeys } from "./components/apiKeys";
import { DeploymentRecord, PreUpgradeDump } from "./components/backup";
import { BundledPostgres } from "./components/bundledPostgres";
import { CaldavConfig, loadConfig } from "./components/config";
import { CaldavDatabase } from "./components/database";
import { containerAddress, dockerEndpoint } from "./components/discovery";
import { CaldavImage, CaldavImageArgs, checkoutSource } from "./components/image";
import { CaldavNetwork, checkExistingNetwork } from "./components/network";
import { CaldavServer } from "./components/server";

/** What the program finds before it registers anything. */
interface Found {
    /** Where the PostgreSQL provider connects, when looked up (postgres.adminHost unset). */
    adminHost?: string;
    /** The existing network's name, checked (attach stacks). */
    network?: string;
    /** The image to run: a source checked out at its commit, or the published image. */
    image: CaldavImageArgs["source"];
}

/**
 * What can fail outside Pulumi's engine is read first (in preview too), before any
 * resource registers: the source at source.ref and its build context, and for an
 * attach stack the existing network (with network.subnet) and, without
 * postgres.adminHost, the container postgres.host names on it. A failure then changes
 * nothing, not even the state, and ends the program at once.
 */
async function find(config: CaldavConfig): Promise<Found> {
    const pg = config.postgres;
    const attach = !config.network.create;
    const lookup = attach && pg.mode === "external" && pg.admin.host === undefined;
    const [image, network, adminHost] = await Promise.all([
        config.image.kind === "build" ? checkoutSource(config.image) : config.image,
        attach ? checkExistingNetwork(config.network) : undefined,
        lookup ? containerAddress({ network: config.network.name, name: pg.host, endpoint: dockerEndpoint() }) : undefined,
    ]);
    return { image, network, adminHost };
}

function deploy(config: CaldavConfig, found: Found) {
    const pg = config.postgres;
    // Checked already (find): the component does not ask the engine again.
    const network = new CaldavNetwork("network", { ...config.network, checked: found.network });

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
        // Without adminHost, at the address its name has on the network: no published port needed.
        : { ...pg.admin, host: pg.admin.host ?? found.adminHost! };

    const database = new CaldavDatabase("database", {
        admin,
        database: pg.database,
        user: pg.user,
        existingUserPassword: pg.password,
        protect: config.protect,
    });

    const keys = new ApiKeys("api-keys", config.apiKeys);

    const caldavImage = new CaldavImage("image", { source: found.image });

    // The server's own connection: the dump uses the same role, database and schema.
    const serverDatabase = {
        host: pg.host,
        port: pg.port,
        name: database.databaseName,
        user: database.user,
        password: database.password,
        schema: pg.schema,
    };

    // A new image migrates the schema at its first start: dump it first, and replace the
    // server only once the dump succeeded.
    const preUpgradeDump = config.backup.enabled
        ? new PreUpgradeDump("backup", {
            ...config.backup,
            deploying: { id: caldavImage.imageId, reference: caldavImage.reference },
            containerName: `${config.caldav.containerName}-dump`,
            network: network.name,
            database: serverDatabase,
            stack: pulumi.getStack(),
        })
        : undefined;

    const server = new CaldavServer("caldav", {
        ...config.caldav,
        image: caldavImage.imageId,
        network: { name: network.name, alias: config.network.alias, ip: config.network.caldavIp },
        database: serverDatabase,
        apiKeys: keys,
        callbackBaseUrl: config.callbackBaseUrl,
        after: preUpgradeDump?.done,
    });

    // Once the server runs healthy, the schema holds that image's data: the next dump is
    // labelled with it, and taken only when the image changes again.
    const record = preUpgradeDump
        ? new DeploymentRecord("backup-record", {
            tools: preUpgradeDump.tools,
            containerName: `${config.caldav.containerName}-record`,
            serverId: server.containerId,
        })
        : undefined;

    // `pulumi destroy` deletes in reverse dependency order and stops at the first protected
    // resource: with only the database protected, it took the server down before refusing.
    // This guard depends on every resource and carries the same protection, so the destroy
    // of a protected stack stops before it deletes anything.
    // A failed dump or record fails it first: the record is waited for only once the dump
    // succeeded (a failed dump leaves the record, and the server, unregistered for good).
    const guarded: pulumi.Resource[] = [...(preUpgradeDump && record ? [preUpgradeDump, record] : []), server, database];
    new random.RandomId("destroy-guard", { byteLength: 4 }, {
        protect: config.protect,
        dependsOn: preUpgradeDump && record
            ? preUpgradeDump.done.apply(() => record.done).apply(() => guarded) as pulumi.Output<pulumi.Resource[]>
            : guarded,
    });

    return {
        caldavUrl: server.caldavUrl,
        publicUrl: server.publicUrl,
        callbackUrl: server.callbackUrl,
        apiKeys: pulumi.secret({ inbound: keys.inbound, outbound: keys.outbound, internal: keys.internal }),
        backendEnv: pulumi.secret({
            CALDAV_URL: server.origin,
            CALDAV_OUTBOUND_API_KEY: keys.outbound,
            CALDAV_INBOUND_API_KEY: keys.inbound,
            CALDAV_INTERNAL_API_KEY: keys.internal,
        }),
        image: caldavImage.reference,
        sourceCommit: caldavImage.sourceCommit,
        databaseName: database.databaseName,
        databaseUser: database.user,
        networkName: network.name,
        backendIp: config.network.backendIp,
        containerName: server.containerName,
    };
}

const config = loadConfig();
const deployment = find(config).then((found) => deploy(config, found));
type Outputs = ReturnType<typeof deploy>;
const output = <K extends keyof Outputs>(key: K) => pulumi.output(deployment.then((outputs) => outputs[key]));

export const caldavUrl = output("caldavUrl");
export const publicUrl = output("publicUrl");
export const callbackUrl = output("callbackUrl");
export const apiKeys = output("apiKeys");
export const backendEnv = output("backendEnv");
export const image = output("image");
export const sourceCommit = output("sourceCommit");
export const databaseName = output("databaseName");
export const databaseUser = output("databaseUser");
export const networkName = output("networkName");
export const backendIp = output("backendIp");
export const containerName = output("containerName");
