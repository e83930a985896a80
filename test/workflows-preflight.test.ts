// scripts/ci-stack-preflight.ts, run by pulumi.yml before any Pulumi command:
// a stack file or environment that CI cannot work with is named, with what to
// do, before Pulumi fails on the first problem ("no stack named ... found").
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { preflight, secretsProvider } from "../scripts/ci-stack-preflight";

const ROOT = path.join(__dirname, "..");

/** A stack file as `pulumi stack init` + `pulumi config set --secret` leave it, on top of a committed one. */
function initialised(committed: string, header: string, password = "  calendars-caldav:postgresAdminPassword:\n    secure: v1:abc:def\n"): string {
    return `${header}${committed.replace(/^config:\n/m, `config:\n${password}`)}`;
}

const S3 = { PULUMI_BACKEND_URL: "s3://state/calendars?region=eu-west-3", AWS_ACCESS_KEY_ID: "id" };
const PASSPHRASE_HEADER = "encryptionsalt: v1:c2FsdA==:v1:abc:def\n";
const KMS_HEADER = "secretsprovider: awskms://alias/calendars?region=eu-west-3\nencryptedkey: AQICAHg=\n";

describe("CI preflight of a stack", () => {
    for (const stack of ["staging", "prod"]) {
        const committed = fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8");

        test(`Pulumi.${stack}.yaml as committed today is refused: CI cannot read a stack that was never initialised into it`, () => {
            const { errors } = preflight(stack, committed, { ...S3, PULUMI_CONFIG_PASSPHRASE: "p" });
            assert.ok(errors.some((error) => /holds no secrets provider .* commit Pulumi\.\w+\.yaml/.test(error)), errors.join("\n"));
            assert.ok(errors.some((error) => /has no calendars-caldav:postgresAdminPassword: set it once with `pulumi config set --secret postgresAdminPassword --stack \w+` and commit/.test(error)));
        });

        test(`Pulumi.${stack}.yaml initialised (passphrase or KMS) and committed passes with the environment's credentials`, () => {
            assert.deepEqual(preflight(stack, initialised(committed, PASSPHRASE_HEADER), { ...S3, PULUMI_CONFIG_PASSPHRASE: "p" }), { errors: [], warnings: [] });
            assert.deepEqual(preflight(stack, initialised(committed, KMS_HEADER), S3), { errors: [], warnings: [] });
        });
    }

    const staging = initialised(fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8"), PASSPHRASE_HEADER);

    test("every missing piece of the environment is named at once, with where to set it", () => {
        const { errors } = preflight("staging", staging, {});
        assert.equal(errors.length, 2, errors.join("\n"));
        assert.match(errors[0], /PULUMI_BACKEND_URL is not set: add the variable to the GitHub environment/);
        assert.match(errors[1], /passphrase secrets provider but PULUMI_CONFIG_PASSPHRASE is not set/);
        assert.match(preflight("staging", staging, { PULUMI_BACKEND_URL: "https://api.pulumi.com", PULUMI_CONFIG_PASSPHRASE: "p" }).errors.join(), /PULUMI_ACCESS_TOKEN is not set: set PULUMI_OIDC_ORGANIZATION \(OIDC, preferred\)/);
        assert.match(preflight("staging", staging, { PULUMI_BACKEND_URL: "s3://state", PULUMI_CONFIG_PASSPHRASE: "p" }).errors.join(), /S3 without a region/);
        assert.match(preflight("staging", staging, { PULUMI_BACKEND_URL: "file:///tmp/x", PULUMI_CONFIG_PASSPHRASE: "p" }).errors.join(), /file backend on a runner/);
    });

    test("a password committed in plaintext stops the run and says to rotate it", () => {
        const leaked = staging.replace(/calendars-caldav:postgresAdminPassword:\n\s+secure: \S+\n/, "calendars-caldav:postgresAdminPassword: hunter2\n");
        assert.match(preflight("staging", leaked, { ...S3, PULUMI_CONFIG_PASSPHRASE: "p" }).errors.join(), /PLAINTEXT: remove it, rotate that password/);
    });

    test("an existing login role needs its password too; a bundled PostgreSQL needs no admin password", () => {
        const existingRole = staging.replace("    adminUser: messages\n", "    adminUser: messages\n    createUser: false\n");
        assert.match(preflight("staging", existingRole, { ...S3, PULUMI_CONFIG_PASSPHRASE: "p" }).errors.join(), /no calendars-caldav:postgresPassword/);
        const dev = fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8");
        assert.deepEqual(preflight("dev", `${PASSPHRASE_HEADER}${dev}`, { ...S3, PULUMI_CONFIG_PASSPHRASE: "p" }).errors, []);
    });

    test("Pulumi Cloud stacks may keep their secrets provider in the service; self-managed backends may not", () => {
        const bare = staging.replace(PASSPHRASE_HEADER, "");
        assert.equal(secretsProvider({}), "service");
        assert.deepEqual(preflight("staging", bare, { PULUMI_BACKEND_URL: "https://api.pulumi.com", PULUMI_ACCESS_TOKEN: "t" }).errors, []);
        assert.match(preflight("staging", bare, S3).errors.join(), /holds no secrets provider/);
    });

    test("an uncommitted stack file is named", () => {
        assert.match(preflight("qa", undefined, S3).errors.join(), /Pulumi\.qa\.yaml is not committed/);
    });

    test("the command line prints GitHub annotations and exits 1 before any Pulumi command", () => {
        const result = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "ci-stack-preflight.ts"), "prod"], {
            cwd: ROOT,
            encoding: "utf8",
            env: { PATH: process.env.PATH, GITHUB_ACTIONS: "true" },
        });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /^::error title=Preflight prod::PULUMI_BACKEND_URL is not set/m);
        assert.match(result.stderr, /prod: \d+ problem\(s\) before any Pulumi command; nothing was run/);
    });
});
