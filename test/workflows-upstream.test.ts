// What integration.yml hands the e2e suite (scripts/ci-e2e-upstream.ts): the
// Calendars ref staging deploys and the postgres image the dev stack runs,
// unless the manual run gives others.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { devPostgresImage, stagingRef, upstreamEnv } from "../scripts/ci-e2e-upstream";
import { localSource, tempDir } from "./fixtures";
import { evaluate, stackFileConfig, withConfig } from "./harness";

const ROOT = path.join(__dirname, "..");

/** A copy of the files the script reads, with one of them replaced. */
function repoWith(replace: Record<string, string>): string {
    const dir = tempDir("upstream");
    fs.mkdirSync(path.join(dir, "components"));
    for (const file of ["Pulumi.staging.yaml", "Pulumi.dev.yaml", "components/config.ts"]) {
        fs.writeFileSync(path.join(dir, file), replace[file] ?? fs.readFileSync(path.join(ROOT, file), "utf8"));
    }
    return dir;
}

describe("integration workflow: upstream fixtures", () => {
    test("the Calendars ref is the one Pulumi.staging.yaml deploys, and moves with it", () => {
        const staging = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8"));
        assert.equal(stagingRef(), staging.config["calendars-caldav:source"].ref);
        const moved = repoWith({ "Pulumi.staging.yaml": "config:\n  calendars-caldav:source:\n    ref: v9.9.9\n" });
        assert.equal(stagingRef(moved), "v9.9.9");
        const flat = repoWith({ "Pulumi.staging.yaml": "config:\n  calendars-caldav:source.ref: 0123456789abcdef0123456789abcdef01234567\n" });
        assert.equal(stagingRef(flat), "0123456789abcdef0123456789abcdef01234567");
        assert.throws(() => stagingRef(repoWith({ "Pulumi.staging.yaml": "config: {}\n" })), /no usable calendars-caldav:source\.ref .* pass calendars-ref/);
    });

    test("the postgres image is the one the dev stack runs", async () => {
        const evaluation = await evaluate(withConfig(stackFileConfig("dev"), { source: localSource() }), {}, {
            stack: "dev",
            networks: { messages_internal: { subnet: "172.29.0.0/16" } },
        });
        assert.ifError(evaluation.error);
        assert.equal(devPostgresImage(), evaluation.one("docker:index/remoteImage:RemoteImage", "postgres").inputs.name);
        const pinned = repoWith({ "Pulumi.dev.yaml": "config:\n  calendars-caldav:postgres:\n    mode: bundled\n    bundledImage: postgres:16.10-bookworm\n" });
        assert.equal(devPostgresImage(pinned), "postgres:16.10-bookworm");
    });

    test("a manual run may name another ref or official image, nothing that is not one", () => {
        assert.deepEqual(upstreamEnv({ CALENDARS_REF: "main", POSTGRES_IMAGE: "postgres:18.0" }), ["E2E_UPSTREAM_REF=main", "E2E_POSTGRES_IMAGE=postgres:18.0"]);
        assert.deepEqual(upstreamEnv({ CALENDARS_REF: "", POSTGRES_IMAGE: "" }), [`E2E_UPSTREAM_REF=${stagingRef()}`, `E2E_POSTGRES_IMAGE=${devPostgresImage()}`]);
        assert.throws(() => upstreamEnv({ CALENDARS_REF: "main\nE2E_ENGINE=builtin" }), /not a branch, tag or commit SHA/);
        assert.throws(() => upstreamEnv({ POSTGRES_IMAGE: "example.org/postgres:17" }), /official postgres image/);
        assert.throws(() => upstreamEnv({ POSTGRES_IMAGE: "postgres" }), /pinned by tag or digest/);
    });
});
