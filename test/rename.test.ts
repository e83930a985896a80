// Renaming what holds the calendars: a new postgres.database or postgres.user must not
// rename the live database or role in place (the provider would, and `protect` does not
// stop an update). The stack's state is given by the provider's answer (the mock's
// state): with the name ignored on update, it keeps the name the resource was created with.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RenameError } from "../components/database";
import { localSource } from "./fixtures";
import { evaluate, withConfig } from "./harness";

const WORLD = { networks: { messages_internal: { subnet: "172.29.0.0/16" } } };

async function renamed(config: { database?: string; user?: string }, state: { name: string }) {
    return evaluate(withConfig({ source: localSource() }, { postgres: config }), { postgresAdminPassword: "admin-pw" },
        // Role and database are both named "database": the state answers for both.
        { ...WORLD, states: { database: state }, drain: true });
}

describe("renaming the database or the role", () => {
    test("the name is never updated in place: the provider is told to ignore it", async () => {
        const evaluation = await evaluate(withConfig({ source: localSource() }, {}), { postgresAdminPassword: "admin-pw" }, WORLD);
        assert.deepEqual(evaluation.one("postgresql:index/database:Database").ignoreChanges, ["name"]);
        assert.deepEqual(evaluation.one("postgresql:index/role:Role").ignoreChanges, ["name"]);
    });

    test("a new postgres.database or postgres.user is refused, naming the key and the name to set back, and the server is not touched", { timeout: 30_000 }, async () => {
        const evaluation = await renamed({ database: "calendars", user: "calendars" }, { name: "caldav" });
        assert.ok(evaluation.error instanceof RenameError, String(evaluation.error));
        assert.match(evaluation.error.message, /postgres\.(user|database) is calendars, but this stack's (login role|database) is caldav: renaming it in place is not supported\. Set postgres\.(user|database) back to caldav\./);
        assert.equal(evaluation.byType("docker:index/container:Container").length, 0, "no container runs against a renamed database");
    });

    test("a new postgres.database alone is refused too, naming that key (the role keeps its name)", { timeout: 30_000 }, async () => {
        // The state answers "caldav" for both: the role's name is the configured postgres.user, the database's is not postgres.database.
        const evaluation = await renamed({ database: "calendars", user: "caldav" }, { name: "caldav" });
        assert.ok(evaluation.error instanceof RenameError, String(evaluation.error));
        // (The SDK prefixes the message with the properties it was serializing: only its end is ours.)
        assert.ok(evaluation.error.message.endsWith("postgres.database is calendars, but this stack's database is caldav: renaming it in place is not supported. " +
            "Set postgres.database back to caldav. To move the calendars to another database, deploy a new stack and restore a dump into it."), evaluation.error.message);
        assert.equal(evaluation.byType("docker:index/container:Container").length, 0, "no container runs against a renamed database");
    });

    test("the names the stack was created with pass", async () => {
        const evaluation = await renamed({ database: "calendars", user: "calendars" }, { name: "calendars" });
        assert.ifError(evaluation.error);
        assert.equal(evaluation.outputs.databaseName.value, "calendars");
        assert.equal(evaluation.outputs.databaseUser.value, "calendars");
    });
});
