// Before any Pulumi command in CI (pulumi.yml): checks that the committed
// Pulumi.<stack>.yaml is an initialised stack file (its secrets provider's
// material and the secrets the program needs, as ciphertext) and that the
// GitHub environment gave the job a backend and the credentials this stack
// needs. Says everything that is missing at once and where to set it, instead
// of Pulumi failing on the first one ("no stack named ...", "incorrect
// passphrase", "missing required configuration ...").
//
//   node --import tsx scripts/ci-stack-preflight.ts STACK
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

const ROOT = path.join(__dirname, "..");
const PROJECT = "calendars-caldav";
const GUIDE = "docs/ci-cd.md";

export interface Findings {
    /** Each stops the job. */
    errors: string[];
    /** Worth reading, but the runner may have what is missing (an instance role, say). */
    warnings: string[];
}

type Env = Record<string, string | undefined>;

const set = (env: Env, name: string) => (env[name] ?? "") !== "";

/** Which secrets provider a stack file was initialised with. */
export function secretsProvider(config: Record<string, unknown>): "passphrase" | "cloud-kms" | "service" | "unknown" {
    const provider = typeof config.secretsprovider === "string" ? config.secretsprovider : undefined;
    if (provider === undefined) {
        if (config.encryptionsalt !== undefined) {
            return "passphrase";
        }
        return config.encryptedkey !== undefined ? "unknown" : "service";
    }
    if (provider === "passphrase") {
        return "passphrase";
    }
    if (/^(awskms|azurekeyvault|gcpkms|hashivault):\/\//.test(provider)) {
        return "cloud-kms";
    }
    return provider === "default" || provider === "service" ? "service" : "unknown";
}

type Config = Record<string, unknown>;

function configValue(config: Config, key: string): unknown {
    if (`${PROJECT}:${key}` in config) {
        return config[`${PROJECT}:${key}`];
    }
    const [first, ...rest] = key.split(".");
    let value = config[`${PROJECT}:${first}`];
    for (const part of rest) {
        value = value !== null && typeof value === "object" ? (value as Config)[part] : undefined;
    }
    return value;
}

function isCiphertext(value: unknown): boolean {
    return value !== null && typeof value === "object" && typeof (value as { secure?: unknown }).secure === "string";
}

/** The findings for one stack file (its text) and the job's environment variables. */
export function preflight(stack: string, stackFile: string | undefined, env: Env): Findings {
    const errors: string[] = [];
    const warnings: string[] = [];
    const file = `Pulumi.${stack}.yaml`;

    // The backend first: it decides what else the stack file must hold.
    const backend = env.PULUMI_BACKEND_URL ?? "";
    const cloudBackend = backend === "" || /^https?:\/\//.test(backend);
    if (backend === "") {
        errors.push(`PULUMI_BACKEND_URL is not set: add the variable to the GitHub environment of this job (s3://…, azblob://…, gs://… or https://api.pulumi.com; ${GUIDE}, "Variables and secrets")`);
    } else if (backend.startsWith("file://")) {
        errors.push(`PULUMI_BACKEND_URL is ${backend}: a file backend on a runner is not shared with the other runs; use the team's bucket or Pulumi Cloud`);
    }
    if (cloudBackend && backend !== "" && !set(env, "PULUMI_ACCESS_TOKEN")) {
        errors.push(`the backend is Pulumi Cloud but PULUMI_ACCESS_TOKEN is not set: set PULUMI_OIDC_ORGANIZATION (OIDC, preferred) or the secret PULUMI_ACCESS_TOKEN on the environment`);
    }
    if (backend.startsWith("s3://") && !set(env, "AWS_ACCESS_KEY_ID") && !set(env, "AWS_PROFILE") && !set(env, "AWS_WEB_IDENTITY_TOKEN_FILE")) {
        warnings.push("the backend is S3 but no AWS credentials were set (AWS_ROLE_TO_ASSUME for OIDC, or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY secrets); only an instance role of the runner can still work");
    }
    if (backend.startsWith("s3://") && !set(env, "AWS_REGION") && !/[?&]region=/.test(backend)) {
        errors.push("the backend is S3 without a region: set the variable AWS_REGION or add ?region=… to PULUMI_BACKEND_URL");
    }
    if (backend.startsWith("azblob://") && !set(env, "AZURE_STORAGE_ACCOUNT")) {
        errors.push("the backend is Azure Blob Storage but the variable AZURE_STORAGE_ACCOUNT is not set");
    }
    if (backend.startsWith("gs://") && !set(env, "GOOGLE_CREDENTIALS") && !set(env, "GOOGLE_APPLICATION_CREDENTIALS")) {
        warnings.push("the backend is Google Cloud Storage but no credentials were set (GCP_WORKLOAD_IDENTITY_PROVIDER for OIDC, or the GOOGLE_CREDENTIALS secret); only the runner's own service account can still work");
    }

    if (stackFile === undefined) {
        errors.push(`${file} is not committed: initialise the stack once and commit the file (${GUIDE}, "Initialise the stacks")`);
        return { errors, warnings };
    }
    let parsed: Config;
    try {
        parsed = (parseYaml(stackFile) ?? {}) as Config;
    } catch (error) {
        errors.push(`${file} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
        return { errors, warnings };
    }
    const config = (parsed.config ?? {}) as Config;

    const provider = secretsProvider(parsed);
    if (provider === "service" && !cloudBackend) {
        errors.push(`${file} holds no secrets provider (no encryptionsalt, secretsprovider or encryptedkey): the stack was initialised elsewhere and this file was not committed afterwards. Run \`pulumi stack init ${stack} --secrets-provider …\` once (or \`pulumi stack change-secrets-provider\`) and commit ${file} (${GUIDE}, "Initialise the stacks")`);
    }
    if (provider === "cloud-kms" && parsed.encryptedkey === undefined) {
        errors.push(`${file} names the secrets provider ${parsed.secretsprovider} but holds no encryptedkey: commit the file as \`pulumi stack init\` wrote it`);
    }
    if (provider === "unknown") {
        errors.push(`${file} has secrets provider ${JSON.stringify(parsed.secretsprovider ?? "(none)")} with an encryptedkey: this preflight knows passphrase, awskms://, azurekeyvault://, gcpkms://, hashivault:// and Pulumi Cloud`);
    }
    if (provider === "passphrase" && !set(env, "PULUMI_CONFIG_PASSPHRASE") && !set(env, "PULUMI_CONFIG_PASSPHRASE_FILE")) {
        errors.push(`${file} uses the passphrase secrets provider but PULUMI_CONFIG_PASSPHRASE is not set: add the secret to the GitHub environment`);
    }
    if (provider === "cloud-kms" && String(parsed.secretsprovider).startsWith("awskms://") && !set(env, "AWS_ACCESS_KEY_ID") && !set(env, "AWS_PROFILE")) {
        warnings.push("secrets are encrypted with AWS KMS but no AWS credentials were set; only an instance role of the runner can still decrypt them");
    }

    // The secrets the program requires, committed as ciphertext (never plaintext).
    const required: string[] = [];
    if (configValue(config, "postgres.mode") !== "bundled") {
        required.push("postgresAdminPassword");
    }
    if (configValue(config, "postgres.createUser") === false) {
        required.push("postgresPassword");
    }
    for (const key of ["postgresAdminPassword", "postgresPassword"]) {
        const value = config[`${PROJECT}:${key}`];
        if (value !== undefined && !isCiphertext(value)) {
            errors.push(`${file} holds ${PROJECT}:${key} in PLAINTEXT: remove it, rotate that password, and set it with \`pulumi config set --secret ${key} --stack ${stack}\``);
        } else if (value === undefined && required.includes(key)) {
            errors.push(`${file} has no ${PROJECT}:${key}: set it once with \`pulumi config set --secret ${key} --stack ${stack}\` and commit the file (only its ciphertext is written)`);
        }
    }
    return { errors, warnings };
}

if (require.main === module) {
    const stack = process.argv[2];
    if (!stack || !/^[A-Za-z0-9_.-]+$/.test(stack)) {
        process.stderr.write("usage: node --import tsx scripts/ci-stack-preflight.ts STACK\n");
        process.exit(2);
    }
    const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
    const { errors, warnings } = preflight(stack, text, process.env);
    const github = process.env.GITHUB_ACTIONS === "true";
    for (const warning of warnings) {
        process.stderr.write(github ? `::warning title=Preflight ${stack}::${warning}\n` : `warning: ${warning}\n`);
    }
    for (const error of errors) {
        process.stderr.write(github ? `::error title=Preflight ${stack}::${error}\n` : `error: ${error}\n`);
    }
    if (errors.length > 0) {
        process.stderr.write(`${stack}: ${errors.length} problem(s) before any Pulumi command; nothing was run\n`);
        process.exit(1);
    }
    process.stderr.write(`${stack}: stack file, backend and credentials are in place\n`);
}
