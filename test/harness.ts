// Runs index.ts under Pulumi's mock runtime and records what it registers:
// type, inputs as sent on the wire (secret markers included), and the
// resource options the engine would act on (protect, retainOnDelete, ...).
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { PROJECT } from "../components/config";

/** The wire marker of a secret value (see @pulumi/pulumi runtime/rpc). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const ROOT = path.join(__dirname, "..");

export interface Recorded {
    urn: string;
    type: string;
    name: string;
    parent: string;
    custom: boolean;
    /** Inputs as the engine receives them, secret values wrapped in the wire marker. */
    wire: Record<string, unknown>;
    /** Inputs with secret markers removed. */
    inputs: Record<string, any>;
    provider: string;
    dependencies: string[];
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    /** Names of the error hooks bound to the resource. */
    errorHooks: string[];
    /** Outputs a component registered, in wire form. */
    registeredOutputs?: Record<string, unknown>;
}

export interface StackOutput {
    value: any;
    secret: boolean;
}

export interface Evaluation {
    resources: Recorded[];
    outputs: Record<string, StackOutput>;
    /** Values the mocks generated for random passwords. */
    generated: string[];
    error?: Error;
    byType(type: string): Recorded[];
    one(type: string, name?: string): Recorded;
}

export interface EvaluateOptions {
    stack?: string;
    /** Existing Docker networks, by name, for getNetwork. */
    networks?: Record<string, { subnet: string }>;
}

export type StackConfig = Record<string, unknown>;

function digest(value: unknown): string {
    return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}

export function unwrapSecrets(value: unknown): any {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (record[SECRET_SIG] !== undefined) {
            return unwrapSecrets(record.value);
        }
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/** Every string in `value` that is not inside a secret marker. */
export function plainStrings(value: unknown): string[] {
    if (typeof value === "string") {
        return [value];
    }
    if (Array.isArray(value)) {
        return value.flatMap(plainStrings);
    }
    if (value && typeof value === "object") {
        const record = value as Record<string, unknown>;
        return record[SECRET_SIG] !== undefined ? [] : Object.values(record).flatMap(plainStrings);
    }
    return [];
}

function mockState(type: string, name: string, inputs: Record<string, any>, generated: string[]): Record<string, any> {
    switch (type) {
        case "random:index/randomPassword:RandomPassword": {
            const result = `${name.replace(/[^A-Za-z0-9]/g, "")}${digest([name, inputs.keepers])}`.slice(0, inputs.length);
            generated.push(result);
            return { ...inputs, result };
        }
        case "docker:index/image:Image":
            return { ...inputs, repoDigest: `sha256:${digest(inputs)}` };
        case "docker:index/remoteImage:RemoteImage":
            return { ...inputs, imageId: `sha256:${digest(inputs.name)}` };
        default:
            return inputs;
    }
}

function toConfigMap(config: StackConfig): Record<string, string> {
    return Object.fromEntries(Object.entries(config).map(([key, value]) => [
        key.includes(":") ? key : `${PROJECT}:${key}`,
        typeof value === "string" ? value : JSON.stringify(value),
    ]));
}

/** Merges object-valued keys field by field (like `pulumi config set --path`). */
export function withConfig(base: StackConfig, overrides: StackConfig): StackConfig {
    const merged: StackConfig = { ...base };
    for (const [key, value] of Object.entries(overrides)) {
        const current = merged[key];
        merged[key] = value && typeof value === "object" && current && typeof current === "object"
            ? { ...current, ...value }
            : value;
    }
    return merged;
}

/** The `config:` of a committed stack file, keys without the project prefix. */
export function stackFileConfig(stack: string): StackConfig {
    const file = parseYaml(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) ?? {};
    return Object.fromEntries(Object.entries<unknown>(file.config ?? {}).map(([key, value]) => [
        key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key,
        value,
    ]));
}

async function resolveOutput(output: unknown): Promise<StackOutput> {
    if (!pulumi.Output.isInstance(output)) {
        return { value: output, secret: false };
    }
    // isSecret rejects when the output failed, so a failing program cannot hang the apply below.
    const secret = await pulumi.isSecret(output);
    const value = await new Promise((resolve) => output.apply((v) => {
        resolve(v);
        return v;
    }));
    return { value, secret };
}

/**
 * Evaluates index.ts once with `config` (keys without the project prefix;
 * `secrets` are set as secret config), and returns what it registered.
 */
export async function evaluate(config: StackConfig, secrets: Record<string, string> = {}, options: EvaluateOptions = {}): Promise<Evaluation> {
    const resources: Recorded[] = [];
    const generated: string[] = [];
    const networks = options.networks ?? {};

    await pulumi.runtime.setMocks({
        newResource: async ({ type, name, inputs }) => ({
            id: `${name}-id`,
            state: mockState(type, name, inputs, generated),
        }),
        call: async ({ token, inputs }) => {
            if (token === "docker:index/getNetwork:getNetwork") {
                const network = networks[inputs.name];
                if (!network) {
                    throw new Error(`Error: No such network: ${inputs.name}`);
                }
                return { id: `${inputs.name}-id`, name: inputs.name, driver: "bridge", ipamConfigs: [{ subnet: network.subnet }] };
            }
            throw new Error(`unexpected invoke ${token}`);
        },
    }, PROJECT, options.stack ?? "test", false);

    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const wire = req.getObject()?.toJavaScript() ?? {};
        register(req, (err: unknown, res: any) => {
            if (!err) {
                resources.push({
                    urn: res.getUrn(),
                    type: req.getType(),
                    name: req.getName(),
                    parent: req.getParent(),
                    custom: req.getCustom(),
                    wire,
                    inputs: unwrapSecrets(wire),
                    provider: req.getProvider(),
                    dependencies: req.getDependenciesList(),
                    protect: req.getProtect?.() ?? false,
                    retainOnDelete: req.getRetainondelete?.() ?? false,
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    errorHooks: req.getHooks()?.getOnErrorList() ?? [],
                });
            }
            callback(err, res);
        });
    };
    // The mock monitor predates error hooks; the engine only needs to learn their names.
    monitor.registerErrorHook = (_req: unknown, callback: (err: unknown, res: unknown) => void) => callback(null, {});
    const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
    monitor.registerResourceOutputs = (req: any, callback: any) => {
        const recorded = resources.find((r) => r.urn === req.getUrn());
        if (recorded) {
            recorded.registeredOutputs = req.getOutputs()?.toJavaScript() ?? {};
        }
        registerOutputs(req, callback);
    };

    pulumi.runtime.setAllConfig(
        toConfigMap({ ...config, ...secrets }),
        Object.keys(secrets).map((key) => `${PROJECT}:${key}`),
    );

    // Like Pulumi's language host, count a rejection nobody handled (e.g. a failed
    // input of a resource) as the program's error rather than the test runner's;
    // outputs that depend on the failed resource would otherwise wait forever.
    let fail: (reason: unknown) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => {
        fail = reject;
    });
    let rejections = 0;
    const runnerListeners = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", (reason) => {
        rejections++;
        fail(reason);
    });

    const programPath = require.resolve("../index");
    delete require.cache[programPath];
    const outputs: Record<string, StackOutput> = {};
    let error: Error | undefined;
    try {
        await Promise.race([failed, (async () => {
            const program = require(programPath) as Record<string, unknown>;
            for (const [key, value] of Object.entries(program)) {
                outputs[key] = await resolveOutput(value);
            }
            await pulumi.runtime.disconnect();
        })()]);
    } catch (caught) {
        error = caught as Error;
        // The failure goes on rejecting whatever depends on it (component outputs...):
        // let that settle here rather than in the next evaluation.
        for (let seen = -1; seen !== rejections;) {
            seen = rejections;
            await new Promise((resolve) => setTimeout(resolve, 25));
        }
        // A failed program leaves the failed resource's promises pending; in a real run
        // the process ends there. Clear them so the runtime's exit check does not fail
        // this test process for them (internal API, test harness only).
        require("@pulumi/pulumi/runtime/debuggable").leakedPromises();
    } finally {
        process.removeAllListeners("unhandledRejection");
        runnerListeners.forEach((listener) => process.on("unhandledRejection", listener));
    }

    const byType = (type: string) => resources.filter((r) => r.type === type);
    return {
        resources,
        outputs,
        generated,
        error,
        byType,
        one(type: string, name?: string) {
            const matches = byType(type).filter((r) => name === undefined || r.name === name);
            if (matches.length !== 1) {
                throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${matches.length}`);
            }
            return matches[0];
        },
    };
}
