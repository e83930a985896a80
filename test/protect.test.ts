// `protect` must stop `pulumi destroy` before it deletes anything, not after it has
// taken the server down (found on a real engine: the database alone was protected).
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { localSource } from "./fixtures";
import { evaluate, Evaluation, withConfig } from "./harness";

const GUARD = "random:index/randomId:RandomId";

async function run(overrides: Record<string, unknown>): Promise<Evaluation> {
    const evaluation = await evaluate(withConfig({ source: localSource(), network: { create: true }, postgres: { adminHost: "db.internal" } }, overrides),
        { postgresAdminPassword: "admin-secret" });
    assert.ifError(evaluation.error);
    return evaluation;
}

describe("destroy guard", () => {
    test("every other custom resource is deleted only after the guard, which shares the stack's protection", async () => {
        const bundled = { postgres: { mode: "bundled", adminHost: "127.0.0.1" } };
        for (const [protect, extra] of [[true, {}], [false, {}], [true, bundled]] as const) {
            const evaluation = await run({ protect, ...extra });
            const guard = evaluation.one(GUARD);
            assert.equal(guard.protect, protect);
            assert.equal(evaluation.one("postgresql:index/database:Database").protect, protect);
            // The guard's dependencies, and theirs, reach every other custom resource.
            const byUrn = new Map(evaluation.resources.map((r) => [r.urn, r]));
            const reached = new Set<string>();
            const visit = (urn: string) => {
                for (const dependency of byUrn.get(urn)?.dependencies ?? []) {
                    if (!reached.has(dependency)) {
                        reached.add(dependency);
                        visit(dependency);
                    }
                }
            };
            visit(guard.urn);
            const others = evaluation.resources.filter((r) => r.custom && r.urn !== guard.urn && !r.type.startsWith("pulumi:providers:"));
            assert.ok(others.length > 5);
            assert.deepEqual(others.filter((r) => !reached.has(r.urn)).map((r) => r.urn), [], "deleted before the guard");
        }
    });

    test("the guard never changes on its own: nothing in the config is an input of it", async () => {
        const a = (await run({ protect: true, caldav: { memoryMb: 512 }, apiKeys: { rotation: "1" } })).one(GUARD);
        const b = (await run({ protect: true, caldav: { memoryMb: 1024 }, apiKeys: { rotation: "2" } })).one(GUARD);
        assert.deepEqual(a.inputs, b.inputs);
    });
});
