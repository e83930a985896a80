// Attach mode without postgres.adminHost: the PostgreSQL provider connects to the
// container postgres.host names on the network, found through the Docker Engine the
// stack's docker:host points at (here an API stand-in), before anything registers.
import * as assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DiscoveryError } from "../components/discovery";
import { localSource } from "./fixtures";
import { DockerWorld, FakeDocker, startFakeDocker } from "./fakeDocker";
import { containerEnv, evaluate, Evaluation, StackConfig, withConfig } from "./harness";

const ADMIN_PASSWORD = "admin-secret-value";
const PROVIDER = "pulumi:providers:postgresql";
const WORLD: DockerWorld = {
    messages_internal: [
        { name: "messages-db-1", aliases: ["pg-main"], ip: "172.29.0.7" },
        { name: "messages-backend-1", aliases: ["backend"], ip: "172.29.0.3" },
    ],
};
const NETWORKS = { messages_internal: { subnet: "172.29.0.0/16" } };

describe("attach: finding Messages' PostgreSQL on the network", () => {
    let engine: FakeDocker;

    before(async () => {
        engine = await startFakeDocker(WORLD);
    });
    after(() => engine.close());

    async function run(overrides: StackConfig, networks = NETWORKS): Promise<Evaluation> {
        const config = withConfig({ source: localSource(), "docker:host": engine.endpoint, postgres: { host: "pg-main" } }, overrides);
        return evaluate(config, { postgresAdminPassword: ADMIN_PASSWORD }, { networks });
    }

    const container = (evaluation: Evaluation) => containerEnv(evaluation.one("docker:index/container:Container", "caldav"));

    test("without adminHost, the provider connects to the container's address at postgres.port; the server keeps the name", async () => {
        const evaluation = await run({ postgres: { port: 6543 } });
        assert.ifError(evaluation.error);
        const { host, port } = evaluation.one(PROVIDER).inputs;
        assert.deepEqual({ host, port }, { host: "172.29.0.7", port: "6543" });
        const env = container(evaluation);
        assert.deepEqual([env.PGHOST, env.PGPORT], ["pg-main", "6543"], "the CalDAV container uses the DNS name, which survives a restart");
    });

    test("an explicit adminPort is kept with the looked-up address", async () => {
        const evaluation = await run({ postgres: { port: 6543, adminPort: 15432 } });
        assert.ifError(evaluation.error);
        assert.deepEqual([evaluation.one(PROVIDER).inputs.host, evaluation.one(PROVIDER).inputs.port], ["172.29.0.7", "15432"]);
    });

    test("an explicit adminHost wins, and the Docker Engine is not asked", async () => {
        const asked = engine.requests.length;
        const evaluation = await run({ postgres: { adminHost: "db.internal" } });
        assert.ifError(evaluation.error);
        assert.deepEqual([evaluation.one(PROVIDER).inputs.host, evaluation.one(PROVIDER).inputs.port], ["db.internal", "5432"]);
        assert.equal(engine.requests.length, asked);
    });

    test("a name no container has on the network fails before anything registers, naming postgres.host", async () => {
        const evaluation = await run({ postgres: { host: "postgresql" } });
        assert.ok(evaluation.error instanceof DiscoveryError, String(evaluation.error));
        assert.match(evaluation.error.message, /postgres\.host postgresql is the name of no container on network messages_internal/);
        assert.deepEqual(evaluation.resources.map((r) => r.type), []);
    });

    test("a subnet that does not match the existing network fails before anything registers", async () => {
        const evaluation = await run({}, { messages_internal: { subnet: "172.30.0.0/16" } });
        assert.match(String(evaluation.error), /network\.subnet is 172\.29\.0\.0\/16, but network messages_internal has 172\.30\.0\.0\/16/);
        assert.deepEqual(evaluation.resources.map((r) => r.type), []);
    });
});
