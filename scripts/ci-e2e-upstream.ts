// The upstream fixtures of the integration workflow: the Calendars ref that
// staging deploys and the official postgres image the dev stack runs. Prints
// `E2E_UPSTREAM_REF=...` and `E2E_POSTGRES_IMAGE=...` lines for $GITHUB_ENV.
// CALENDARS_REF / POSTGRES_IMAGE (the workflow_dispatch inputs) override them.
//
//   node --import tsx scripts/ci-e2e-upstream.ts >> "$GITHUB_ENV"
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

const ROOT = path.join(__dirname, "..");
const PROJECT = "calendars-caldav";

/** A branch, tag or commit SHA that is safe to hand to git and to $GITHUB_ENV. */
const REF = /^(?!-)[A-Za-z0-9._/-]{1,200}$/;
/** The official image, pinned by tag and/or digest (never implicit latest). */
const OFFICIAL_POSTGRES = /^(docker\.io\/(library\/)?)?postgres(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$/;

/** A key of a committed stack file, `namespace:a.b` read from nested objects (or a flat `a.b` key). */
export function stackValue(root: string, stack: string, key: string): unknown {
    const file = path.join(root, `Pulumi.${stack}.yaml`);
    type Config = Record<string, unknown>;
    const config = ((parseYaml(fs.readFileSync(file, "utf8")) ?? {}).config ?? {}) as Config;
    const [first, ...rest] = key.split(".");
    if (`${PROJECT}:${key}` in config) {
        return config[`${PROJECT}:${key}`];
    }
    let value = config[`${PROJECT}:${first}`];
    for (const part of rest) {
        value = value !== null && typeof value === "object" ? (value as Config)[part] : undefined;
    }
    return value;
}

/** The ref staging deploys: `source.ref` of Pulumi.staging.yaml. */
export function stagingRef(root = ROOT): string {
    const ref = stackValue(root, "staging", "source.ref");
    if (typeof ref !== "string" || !REF.test(ref)) {
        throw new Error(`Pulumi.staging.yaml has no usable ${PROJECT}:source.ref (got ${JSON.stringify(ref)}); pass calendars-ref to the workflow`);
    }
    return ref;
}

/** The postgres image of the dev stack: its `postgres.bundledImage`, else the program's default. */
export function devPostgresImage(root = ROOT): string {
    const override = stackValue(root, "dev", "postgres.bundledImage");
    if (override !== undefined) {
        return checkImage(String(override), "Pulumi.dev.yaml's postgres.bundledImage");
    }
    const source = fs.readFileSync(path.join(root, "components", "config.ts"), "utf8");
    const match = /["']postgres\.bundledImage["']\s*,\s*["']([^"']+)["']/.exec(source);
    if (!match) {
        throw new Error("components/config.ts no longer reads postgres.bundledImage with a literal default; set E2E_POSTGRES_IMAGE (postgres-image input) explicitly");
    }
    return checkImage(match[1], "the default postgres.bundledImage of components/config.ts");
}

function checkImage(image: string, where: string): string {
    if (!OFFICIAL_POSTGRES.test(image) || !/[:@]/.test(image.replace(/^docker\.io\//, ""))) {
        throw new Error(`${where} is ${JSON.stringify(image)}: the integration run needs the official postgres image pinned by tag or digest`);
    }
    return image;
}

/** The lines for $GITHUB_ENV, overrides first. */
export function upstreamEnv(env: NodeJS.ProcessEnv, root = ROOT): string[] {
    const ref = env.CALENDARS_REF?.trim() || stagingRef(root);
    if (!REF.test(ref)) {
        throw new Error(`calendars-ref ${JSON.stringify(ref)} is not a branch, tag or commit SHA`);
    }
    const image = env.POSTGRES_IMAGE?.trim() ? checkImage(env.POSTGRES_IMAGE.trim(), "postgres-image") : devPostgresImage(root);
    return [`E2E_UPSTREAM_REF=${ref}`, `E2E_POSTGRES_IMAGE=${image}`];
}

if (require.main === module) {
    try {
        process.stdout.write(`${upstreamEnv(process.env).join("\n")}\n`);
    } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        process.stderr.write(`${process.env.GITHUB_ACTIONS ? "::error title=Upstream fixtures::" : "error: "}${message}\n`);
        process.exit(1);
    }
}
