// A one-shot container (the dump, the record) left by a killed `pulumi up` holds its fixed
// name: the next `up`'s create fails on it. Its error hook clears it when that is safe, and
// says what to do when it is not.
import * as assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { clearLeftover, demultiplex, FoundContainer, OneShotEngine } from "../components/leftover";
import { localSource } from "./fixtures";
import { evaluateOnce } from "./harness";

const NAME = "dav-eu-dump";
const CONFLICT = `Error response from daemon: Conflict. The container name "/${NAME}" is already in use by container "${"a".repeat(64)}". ` +
    "You have to remove (or rename) that container to be able to reuse that name.";

/** The dump container of stack `eu` as a killed `up` left it: ended, its log kept. */
function leftover(overrides: Partial<FoundContainer> = {}): FoundContainer {
    return {
        running: false,
        exitCode: 0,
        env: ["PGHOST=postgresql", "STACK=eu", "DEPLOYING_IMAGE=sha256:0123"],
        cmd: ["sh", "-c", "BACKUP_DIR=/backups\n..."],
        logTail: "dumped caldav schema sabre\ncaldav-000002.dump kept",
        ...overrides,
    };
}

function engineWith(found: FoundContainer | undefined | Error): OneShotEngine & { removed: string[] } {
    const removed: string[] = [];
    return {
        removed,
        find: async () => {
            if (found instanceof Error) {
                throw found;
            }
            return found;
        },
        remove: async (name) => {
            removed.push(name);
        },
    };
}

/** Runs the hook on a failed operation; what it returned and what it logged. */
async function hook(engine: OneShotEngine, errors: string[] = [CONFLICT], failedOperation = "create") {
    const warned = mock.method(pulumi.log, "warn", async () => undefined);
    const errored = mock.method(pulumi.log, "error", async () => undefined);
    try {
        const retry = await clearLeftover(NAME, "eu", () => engine)({
            urn: "urn:pulumi:eu::calendars-caldav::calendars:caldav:PreUpgradeDump$docker:index/container:Container::backup-container",
            id: "", name: "backup-container", type: "docker:index/container:Container", failedOperation, errors,
        });
        return {
            retry,
            warnings: warned.mock.calls.map((call) => String(call.arguments[0])),
            errors: errored.mock.calls.map((call) => String(call.arguments[0])),
        };
    } finally {
        warned.mock.restore();
        errored.mock.restore();
    }
}

describe("a one-shot container left by a killed up", () => {
    test("ended, and this stack's: removed, saying so with its exit code and last lines, and the create tried again", async () => {
        const engine = engineWith(leftover({ exitCode: 3 }));
        const result = await hook(engine);
        assert.equal(result.retry, true);
        assert.deepEqual(engine.removed, [NAME]);
        assert.deepEqual(result.errors, []);
        assert.match(result.warnings.join("\n"),
            /^removed dav-eu-dump, left by an earlier pulumi up that did not finish \(it had ended, exit code 3; its last lines: dumped caldav schema sabre \| caldav-000002\.dump kept\); trying again\.$/);
    });

    test("still running: left alone, and the operator told to wait for it", async () => {
        const engine = engineWith(leftover({ running: true }));
        const result = await hook(engine);
        assert.equal(result.retry, false);
        assert.deepEqual(engine.removed, []);
        assert.match(result.errors.join("\n"), /dav-eu-dump, started by an earlier pulumi up that did not finish, still runs: wait for it to end \(docker wait dav-eu-dump;/);
    });

    test("a container of that name the stack did not create is never removed", async () => {
        for (const stranger of [leftover({ env: ["STACK=other", "DEPLOYING_IMAGE=sha256:0123"] }), leftover({ cmd: ["postgres"] }), leftover({ env: ["STACK=eu"] })]) {
            const engine = engineWith(stranger);
            const result = await hook(engine);
            assert.equal(result.retry, false);
            assert.deepEqual(engine.removed, []);
            assert.match(result.errors.join("\n"), /a container named dav-eu-dump exists that is not a one-shot container of stack eu: rename or remove it/);
        }
    });

    test("gone by the time the hook looks: the create is simply tried again", async () => {
        const engine = engineWith(undefined);
        assert.deepEqual(await hook(engine), { retry: true, warnings: [], errors: [] });
    });

    test("an engine that does not answer: nothing removed, and what to check by hand", async () => {
        const result = await hook(engineWith(new Error("connect ENOENT /var/run/docker.sock")));
        assert.equal(result.retry, false);
        assert.match(result.errors.join("\n"), /did not say what it is \(connect ENOENT \/var\/run\/docker\.sock\): look at it \(docker inspect dav-eu-dump\)/);
    });

    test("any other failure, or another container's name, is left to the provider's own message", async () => {
        const engine = engineWith(leftover());
        const other = CONFLICT.replace(`/${NAME}`, "/dav-eu-record");
        for (const [errors, operation] of [[["image not found"], "create"], [[other], "create"], [[CONFLICT], "update"], [[CONFLICT], "delete"]] as const) {
            assert.deepEqual(await hook(engine, [...errors], operation), { retry: false, warnings: [], errors: [] }, `${operation}: ${errors}`);
        }
        assert.deepEqual(engine.removed, []);
    });

    test("docker logs' multiplexed frames are read as text; a stream without frames is the text", () => {
        const frame = (stream: number, text: string) => {
            const header = Buffer.alloc(8);
            header[0] = stream;
            header.writeUInt32BE(Buffer.byteLength(text), 4);
            return Buffer.concat([header, Buffer.from(text)]);
        };
        assert.equal(demultiplex(Buffer.concat([frame(1, "dumped\n"), frame(2, "warning\n")])), "dumped\nwarning\n");
        assert.equal(demultiplex(Buffer.from("plain text\n")), "plain text\n");
    });
});

describe("the one-shot containers of the program", () => {
    test("the dump and the record carry the hook, for their own names and the stack's, on the stack's Docker Engine", async () => {
        const evaluation = await evaluateOnce({ source: localSource(), network: { create: true }, postgres: { mode: "bundled", adminHost: "127.0.0.1" }, caldav: { containerName: "dav-eu" } });
        assert.ifError(evaluation.error);
        for (const [resource, containerName] of [["backup-container", "dav-eu-dump"], ["backup-record-container", "dav-eu-record"]]) {
            const container = evaluation.one("docker:index/container:Container", resource);
            assert.deepEqual(container.errorHooks, [`${resource}-leftover`]);
            const registered = evaluation.errorHooks.get(`${resource}-leftover`)!;
            const failure = { urn: container.urn, id: "", name: resource, type: container.type, failedOperation: "create" };
            // The harness's engine has no such container: the hook asked it, and tries again.
            const conflict = CONFLICT.replace(`/${NAME}`, `/${containerName}`);
            assert.equal(await registered({ ...failure, errors: [conflict] }), true, resource);
            assert.equal(await registered({ ...failure, errors: [CONFLICT.replace(`/${NAME}`, "/dav-eu")] }), false, `${resource}: another name's conflict`);
        }
    });
});
