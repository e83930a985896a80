import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { localSource } from "./fixtures";
import { evaluateOnce, Evaluation, stackFileConfig, withConfig } from "./harness";

const ROOT = path.join(__dirname, "..");
const STACKS = fs.readdirSync(ROOT)
    .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
    .filter((stack): stack is string => stack !== undefined);

/** Evaluates a committed stack file, with the git source on disk and the secrets its README lines set. */
async function evaluateStack(stack: string): Promise<Evaluation> {
    const config = withConfig(stackFileConfig(stack), { source: localSource() });
    const secrets: Record<string, string> = stack === "dev" ? {} : { postgresAdminPassword: "admin-secret" };
    const evaluation = await evaluateOnce(config, secrets, { stack, networks: { messages_internal: { subnet: "172.29.0.0/16" } } });
    assert.ifError(evaluation.error);
    return evaluation;
}

describe("committed stacks", () => {
    test("dev, staging and prod are committed", () => {
        assert.deepEqual(STACKS.sort(), ["dev", "prod", "staging"]);
    });

    for (const stack of STACKS) {
        test(`Pulumi.${stack}.yaml evaluates and holds no plaintext secret`, async () => {
            // Ciphertext (`secure:`) is committed once a stack is initialised, so that CI can read it.
            const config = parseYaml(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8"))?.config ?? {};
            const plaintext = Object.entries<unknown>(config).filter(([key, value]) =>
                /password/i.test(key) && !(typeof value === "object" && value !== null && "secure" in value));
            assert.deepEqual(plaintext.map(([key]) => key), [], "secrets are set with pulumi config set --secret");
            const evaluation = await evaluateStack(stack);
            assert.equal(evaluation.outputs.containerName.value, `calendars-caldav-${stack}`);
        });
    }

    test("dev is self-contained: own network, bundled PostgreSQL, ports on 127.0.0.1 only, not protected", async () => {
        const evaluation = await evaluateStack("dev");
        const network = evaluation.one("docker:index/network:Network").inputs;
        assert.equal(network.name, "messages_internal");
        assert.equal(network.ipamConfigs[0].subnet, "172.29.0.0/16");

        const postgres = evaluation.one("docker:index/container:Container", "postgres");
        assert.deepEqual(postgres.inputs.ports, [{ internal: 5432, external: 15432, ip: "127.0.0.1" }]);
        assert.deepEqual(postgres.inputs.networksAdvanced, [{ name: "messages_internal", aliases: ["postgresql"] }]);
        assert.match(evaluation.one("docker:index/remoteImage:RemoteImage", "postgres").inputs.name, /^postgres:\d+\.\d+/, "a pinned official image");
        assert.equal(postgres.inputs.wait, true);
        const probe = (postgres.inputs.healthcheck.tests as string[]).join(" ").split(/\s+/);
        assert.ok(probe.includes("pg_isready"));
        // Over TCP: while initdb runs, the image's temporary server answers on the socket only.
        assert.equal(probe[probe.indexOf("-h") + 1], "127.0.0.1");
        assert.ok(postgres.inputs.envs.includes(`PGPORT=${probe[probe.indexOf("-p") + 1]}`), "probes the port the server listens on");
        assert.equal((postgres.wire.uploads as Record<string, unknown>[]).filter((upload) => typeof upload.content === "object").length, 1,
            "the admin password file travels as a secret");
        assert.ok(postgres.inputs.envs.includes("PGDATA=/var/lib/postgresql/data"));
        assert.equal(postgres.inputs.restart, "unless-stopped", "back after a reboot of the laptop");

        const volume = evaluation.one("docker:index/volume:Volume").inputs.name;
        assert.deepEqual(postgres.inputs.volumes, [{ volumeName: volume, containerPath: "/var/lib/postgresql/data" }]);
        // The README's teardown command deletes exactly this volume, on purpose.
        assert.match(fs.readFileSync(path.join(ROOT, "scripts", "dev.sh"), "utf8"), new RegExp(`^VOLUME=${volume}$`, "m"));

        const provider = evaluation.one("pulumi:providers:postgresql");
        assert.equal(provider.inputs.host, "127.0.0.1");
        assert.equal(provider.inputs.port, "15432");
        assert.ok(provider.dependencies.includes(postgres.urn), "the provider waits for the healthy server");
        // The image creates the provider's admin role from POSTGRES_USER, and serves no TLS.
        assert.ok(postgres.inputs.envs.includes(`POSTGRES_USER=${provider.inputs.username}`));
        assert.equal(provider.inputs.sslmode, "disable");

        const caldav = evaluation.one("docker:index/container:Container", "caldav").inputs;
        assert.deepEqual(caldav.ports, [{ internal: 80, external: 8080, ip: "127.0.0.1" }]);
        assert.equal(evaluation.outputs.publicUrl.value, "http://127.0.0.1:8080/caldav/");
        assert.equal(evaluation.one("postgresql:index/database:Database").protect, false);
    });

    test("staging and prod attach to Messages' network and database and own neither", async () => {
        for (const stack of ["staging", "prod"]) {
            const evaluation = await evaluateStack(stack);
            assert.equal(evaluation.byType("docker:index/network:Network").length, 0, stack);
            // The one volume of theirs holds the pre-upgrade dumps, and outlives the stack.
            const volumes = evaluation.byType("docker:index/volume:Volume");
            assert.deepEqual(volumes.map((v) => [v.inputs.name, v.retainOnDelete]), [[`calendars-caldav-${stack}-backups`, true]], stack);
            assert.equal(evaluation.one("postgresql:index/database:Database").protect, true, stack);
        }
        const prod = await evaluateStack("prod");
        assert.equal(prod.one("docker:index/remoteImage:RemoteImage", "image").inputs.build, undefined, "prod runs the published image");
        assert.equal(prod.outputs.sourceCommit.value, undefined);
    });
});
