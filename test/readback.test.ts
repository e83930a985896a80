// What a real engine reports back must equal what the program asks for, or every
// preview shows a change (both were found by the end-to-end suite on a real engine).
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { goDuration } from "../components/duration";
import { localSource } from "./fixtures";
import { evaluateOnce, Evaluation, SECRET_SIG, withConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";

async function devLike(overrides: Record<string, unknown> = {}): Promise<Evaluation> {
    const evaluation = await evaluateOnce(withConfig({
        source: localSource(),
        network: { create: true },
        postgres: { mode: "bundled", adminHost: "127.0.0.1", adminPort: 15432 },
    }, overrides), {});
    assert.ifError(evaluation.error);
    return evaluation;
}

/** Seconds of a Go duration string ("1h2m3s", "1m0s", "15s"). */
function seconds(text: string): number {
    const match = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(text);
    assert.ok(match, `${text} is a Go duration`);
    return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3]);
}

describe("values as the engine reports them back", () => {
    test("goDuration writes durations as Go prints them", () => {
        assert.deepEqual([0, 5, 59, 60, 90, 3599, 3600, 3661].map(goDuration),
            ["0s", "5s", "59s", "1m0s", "1m30s", "59m59s", "1h0m0s", "1h1m1s"]);
        assert.throws(() => goDuration(1.5), /whole seconds/);
        assert.throws(() => goDuration(-1), /whole seconds/);
    });

    test("every health check duration of every container is already in Docker's form", async () => {
        const evaluation = await devLike();
        const containers = evaluation.byType(CONTAINER).filter((container) => container.inputs.healthcheck);
        assert.deepEqual(containers.map((c) => c.name).sort(), ["caldav", "postgres"], "the CalDAV server and the bundled PostgreSQL");
        for (const container of containers) {
            const { interval, timeout, startPeriod, startInterval } = container.inputs.healthcheck;
            for (const value of [interval, timeout, startPeriod, startInterval]) {
                assert.equal(goDuration(seconds(value)), value, `${container.name}: ${value}`);
            }
        }
    });

    test("the memory limit allows no swap beyond it, and follows caldav.memoryMb", async () => {
        for (const memoryMb of [512, 1536]) {
            const server = (await devLike({ caldav: { memoryMb } })).one(CONTAINER, "caldav").inputs;
            assert.equal(server.memory, memoryMb);
            assert.equal(server.memorySwap, memoryMb, "memory + swap = memory: the engine would otherwise report twice the limit");
        }
    });
});

describe("bundled PostgreSQL after a destroy that kept its volume", () => {
    test("every start sets the admin password from the container's secret environment, and health waits for it", async () => {
        const evaluation = await devLike();
        const postgres = evaluation.one(CONTAINER, "postgres");
        const script = postgres.inputs.command.join(" ");
        const marker = /touch ([^\s;]+)/.exec(script)?.[1];
        assert.ok(marker, "the start command marks when the password is applied");
        assert.match(postgres.inputs.healthcheck.tests.join(" "), new RegExp(`test -f ${marker} && pg_isready`));
        assert.match(script, /\\set password `cat "\$POSTGRES_PASSWORD_FILE"`.*ALTER ROLE .* PASSWORD :'password'/s,
            "the password comes from its file into a psql variable");
        const password = evaluation.generated.find((value) => value.startsWith("postgresadmin"));
        assert.ok(password);
        assert.ok(!script.includes(password), "no secret in the command line");
        assert.ok(!JSON.stringify(postgres.inputs.envs).includes(password), "no password in the environment (docker inspect shows it)");
        assert.ok(SECRET_SIG in ((postgres.wire.uploads as Record<string, object>[])[0].content), "the password file travels as a secret");
    });
});
