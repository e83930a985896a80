// What a config change does to the resource graph: the engine diffs inputs per
// URN, so a resource whose inputs (or options) are unchanged is left alone.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createUpstreamRepo, localSource, tempDir } from "./fixtures";
import { evaluate, evaluateOnce, Evaluation, StackConfig, withConfig } from "./harness";

const SECRETS = { postgresAdminPassword: "admin-secret" };
const NETWORKS = { messages_internal: { subnet: "172.29.0.0/16" } };

function base(): StackConfig {
    return { source: localSource() };
}

async function run(config: StackConfig): Promise<Evaluation> {
    const evaluation = await evaluateOnce(config, SECRETS, { networks: NETWORKS });
    assert.ifError(evaluation.error);
    return evaluation;
}

/** URN -> everything the engine diffs for that resource. */
function graph(evaluation: Evaluation): Map<string, string> {
    return new Map(evaluation.resources.map((r) => [r.urn, JSON.stringify({
        inputs: r.wire,
        provider: r.provider,
        protect: r.protect,
        retainOnDelete: r.retainOnDelete,
        deleteBeforeReplace: r.deleteBeforeReplace,
    })]));
}

/** `type name` of every resource added, removed or with other inputs/options after the change. */
async function changedBy(overrides: StackConfig): Promise<{ changed: string[]; before: Evaluation; after: Evaluation }> {
    const before = await run(base());
    const after = await run(withConfig(base(), overrides));
    const [a, b] = [graph(before), graph(after)];
    const label = (urn: string) => {
        const parts = urn.split("::");
        return `${parts[2].split("$").pop()} ${parts[3]}`;
    };
    const changed = [...new Set([...a.keys(), ...b.keys()])]
        .filter((urn) => a.get(urn) !== b.get(urn))
        .map(label)
        .sort();
    return { changed, before, after };
}

const CONTAINER = "docker:index/container:Container caldav";

describe("config changes and the resource graph", () => {
    test("two evaluations of the same config give an identical graph (a second up is a no-op)", async () => {
        // Two evaluations of their own (not evaluateOnce's one).
        const first = await evaluate(base(), SECRETS, { networks: NETWORKS });
        const second = await evaluate(base(), SECRETS, { networks: NETWORKS });
        assert.ifError(first.error ?? second.error);
        assert.ok(first.resources.length > 5);
        // Registration order is the runtime's (promises racing), not a diff: compare per URN.
        assert.deepEqual(graph(second), graph(first));
        assert.deepEqual(second.outputs, first.outputs);
    });

    test("changing the memory limit touches only the container", async () => {
        const { changed } = await changedBy({ caldav: { memoryMb: 1024 } });
        assert.deepEqual(changed, [CONTAINER]);
    });

    test("publishing the port touches only the container (and publicUrl)", async () => {
        const { changed, after } = await changedBy({ caldav: { publish: "127.0.0.1:8080" } });
        assert.deepEqual(changed, [CONTAINER]);
        assert.equal(after.outputs.publicUrl.value, "http://127.0.0.1:8080/caldav/");
    });

    test("rotating the keys touches only the keys, the container and backendEnv", async () => {
        const { changed, before, after } = await changedBy({ apiKeys: { rotation: "2" } });
        assert.deepEqual(changed, [CONTAINER, "random:index/randomPassword:RandomPassword api-keys-shared"]);
        assert.notDeepEqual(after.outputs.backendEnv.value, before.outputs.backendEnv.value);
        assert.equal(after.outputs.backendEnv.value.CALDAV_URL, before.outputs.backendEnv.value.CALDAV_URL);
        assert.notEqual(after.outputs.apiKeys.value.outbound, before.outputs.apiKeys.value.outbound);
    });

    test("moving to separate keys replaces the key resources and the container only", async () => {
        const { changed } = await changedBy({ apiKeys: { mode: "separate" } });
        assert.deepEqual(changed, [
            CONTAINER,
            "random:index/randomPassword:RandomPassword api-keys-inbound",
            "random:index/randomPassword:RandomPassword api-keys-internal",
            "random:index/randomPassword:RandomPassword api-keys-outbound",
            "random:index/randomPassword:RandomPassword api-keys-shared",
        ]);
    });

    test("changing the backend IP touches only the container's callback URL", async () => {
        const { changed, after } = await changedBy({ network: { backendIp: "172.29.0.40" } });
        assert.deepEqual(changed, [CONTAINER]);
        assert.equal(after.outputs.callbackUrl.value, "http://172.29.0.40:8000/api/v1.0/caldav-scheduling-callback/");
    });

    test("on a created network, a backend IP in the same half of the subnet leaves the network alone", async () => {
        const created = { network: { create: true }, postgres: { adminHost: "db.internal" } };
        const before = graph(await run(withConfig(base(), created)));
        const after = graph(await run(withConfig(base(), { ...created, network: { create: true, backendIp: "172.29.0.40" } })));
        const network = [...before.keys()].find((urn) => urn.endsWith("docker:index/network:Network::network"))!;
        assert.equal(after.get(network), before.get(network));
    });

    test("a new commit on the ref rebuilds the image, takes a dump, replaces the container and records it, nothing else", async () => {
        // A repository of this test's own: the branch moves between the two evaluations.
        const upstream = createUpstreamRepo();
        const config = { source: { repo: upstream.url, ref: "main", cacheDir: tempDir("cache") } };
        const before = await evaluate(config, SECRETS, { networks: NETWORKS });
        upstream.commit("upgrade");
        const after = await evaluate(config, SECRETS, { networks: NETWORKS });
        assert.ifError(before.error ?? after.error);
        const [a, b] = [graph(before), graph(after)];
        const changed = [...a.keys()].filter((urn) => a.get(urn) !== b.get(urn)).map((urn) => urn.split("::")[3]).sort();
        assert.deepEqual(changed, ["backup-container", "backup-record-container", "caldav", "image"]);
        assert.notEqual(after.outputs.sourceCommit.value, before.outputs.sourceCommit.value);
    });

    test("every resource that a replacement could clash or lose data on has the option that prevents it", async () => {
        const evaluation = await run(withConfig(base(), { network: { create: true }, postgres: { mode: "bundled", adminHost: "127.0.0.1" } }));
        const expected: Record<string, Partial<Record<"deleteBeforeReplace" | "retainOnDelete" | "protect", boolean>>> = {
            // Fixed names (and IPs): the old one must be gone before the new one is created.
            "docker:index/container:Container": { deleteBeforeReplace: true },
            "docker:index/network:Network": { deleteBeforeReplace: true },
            // Data: destroy forgets, never drops.
            "docker:index/volume:Volume": { retainOnDelete: true },
            "postgresql:index/database:Database": { retainOnDelete: true, protect: true },
            "postgresql:index/role:Role": { retainOnDelete: true },
        };
        for (const [type, options] of Object.entries(expected)) {
            const resources = evaluation.byType(type);
            assert.ok(resources.length > 0, `no ${type} in the dev-like graph`);
            for (const resource of resources) {
                for (const [option, value] of Object.entries(options)) {
                    assert.equal(resource[option as keyof typeof options], value, `${type} ${resource.name}: ${option}`);
                }
            }
        }
        // A volume keeps the name it was created with (caldav.containerName renamed): never an empty one instead.
        for (const volume of evaluation.byType("docker:index/volume:Volume")) {
            assert.deepEqual(volume.ignoreChanges, ["name"], volume.name);
        }
        // The bundled server is stopped (a clean shutdown) before it is removed or when the daemon stops.
        const postgres = evaluation.one("docker:index/container:Container", "postgres");
        assert.ok(postgres.inputs.destroyGraceSeconds >= 30 && postgres.inputs.stopTimeout >= 30,
            `${postgres.inputs.destroyGraceSeconds} ${postgres.inputs.stopTimeout}`);
    });
});
