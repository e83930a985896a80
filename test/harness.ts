// Runs index.ts under Pulumi's mock runtime and records what it registers:
// type, inputs as sent on the wire (secret markers included), and the
// resource options the engine would act on (protect, retainOnDelete, ...).
import type { AsyncHook } from "async_hooks";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { PROJECT } from "../components/config";
import { DockerWorld, FakeDocker, MESSAGES_WORLD, startFakeDocker } from "./fakeDocker";

/** The wire marker of a secret value (see @pulumi/pulumi runtime/rpc). */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
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
    ignoreChanges: string[];
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
    /** The error hooks the program registered, by name (a resource names its own in `errorHooks`). */
    errorHooks: ReadonlyMap<string, pulumi.ErrorHookFunction>;
    byType(type: string): Recorded[];
    one(type: string, name?: string): Recorded;
}

export interface EvaluateOptions {
    stack?: string;
    /** Existing Docker networks, by name, for getNetwork. */
    networks?: Record<string, { subnet: string }>;
    /**
     * Containers the Docker Engine API answers about (the PostgreSQL address lookup),
     * unless the config sets docker:host itself. Default: a standard Messages installation.
     */
    docker?: DockerWorld;
    /** Output properties the provider reports, by resource name, over the mock's defaults. */
    states?: Record<string, Record<string, unknown>>;
    /**
     * After a failure, still wait until every registration and registered output has
     * settled, as a process that must end waits for them: an evaluation that never ends
     * is a program that hangs (give such a test a timeout).
     */
    drain?: boolean;
    /** Resources (by name) whose creation the provider fails. */
    failing?: string[];
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

/** A recorded container's `envs` (`KEY=value` entries, secrets unwrapped) as a map. */
export function containerEnv(container: Recorded): Record<string, string> {
    return Object.fromEntries((container.inputs.envs as string[]).map((entry) => {
        const index = entry.indexOf("=");
        return [entry.slice(0, index), entry.slice(index + 1)];
    }));
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
 * @pulumi/pulumi's per-deployment state (internal API, test harness only): the
 * runtime keeps its settings, mock monitor, config, RPC queue and leak
 * candidates in a store held by an AsyncLocalStorage, as the Automation API
 * does for each inline program it runs.
 */
interface RuntimeState {
    /** Runs `callback` with a new store: every promise it creates, however deep, sees that store. */
    withLocalStorage<T>(callback: () => T): T;
    getLocalStore(): RuntimeStore | undefined;
}
type RuntimeStore = object;
const runtimeState: RuntimeState = require("@pulumi/pulumi/runtime/state");

/**
 * The functions of the error hooks a program registered, by hook name, by the runtime store
 * of its evaluation: the engine would call them when an operation on a resource fails, so a
 * test calls them to see what the operator would be told.
 */
const errorHookSinks = new WeakMap<RuntimeStore, Map<string, pulumi.ErrorHookFunction>>();
const callbackServer = require("@pulumi/pulumi/runtime/callbacks").CallbackServer.prototype as {
    registerErrorHook(hook: pulumi.ErrorHook): Promise<void>;
};
const registerErrorHook = callbackServer.registerErrorHook;
callbackServer.registerErrorHook = function (this: unknown, hook: pulumi.ErrorHook) {
    errorHookSinks.get(runtimeState.getLocalStore()!)?.set(hook.name, hook.callback);
    return registerErrorHook.call(this, hook);
};

/** Where a rejection nobody handled goes, by the runtime store of the evaluation that created the promise. */
const rejectionSinks = new WeakMap<RuntimeStore, NodeJS.UnhandledRejectionListener>();
/** The test runner's own listeners, called for every rejection that no evaluation created. */
const runnerListeners: NodeJS.UnhandledRejectionListener[] = [];

/**
 * Node runs an `unhandledRejection` listener in the async context of the
 * rejected promise, so the store it sees is the one of the evaluation whose
 * program created that promise, however late the rejection comes. (Were it
 * not so, the rejection would reach the test runner and fail the test: never
 * another evaluation.)
 */
function routeRejection(reason: unknown, promise: Promise<unknown>): void {
    const store = runtimeState.getLocalStore();
    const sink = store && rejectionSinks.get(store);
    if (sink) {
        sink(reason, promise);
    } else {
        runnerListeners.forEach((listener) => listener(reason, promise));
    }
}

/** Makes routeRejection the one `unhandledRejection` listener, in front of any the runner has added. */
function routeRejections(): void {
    for (const listener of process.listeners("unhandledRejection")) {
        if (listener !== routeRejection) {
            if (!runnerListeners.includes(listener)) {
                runnerListeners.push(listener);
            }
            process.off("unhandledRejection", listener);
        }
    }
    if (!process.listeners("unhandledRejection").includes(routeRejection)) {
        process.on("unhandledRejection", routeRejection);
    }
}

/** Resolves once Node has emitted `unhandledRejection` for every promise rejected until now. */
function rejectionsEmitted(): Promise<void> {
    // Node emits them once the microtask queue of the current macrotask is empty, before the next one.
    return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Pulumi formats a stack trace for every promise and resource a program makes
 * (debuggablePromise, Resource.callsites). With tsx's source maps on, Node maps
 * each frame through its source map cache: half of an evaluation's CPU. So
 * evaluations run with that mapping off, except a process's first, which loads
 * the program's modules with their source maps. V8 formats an error's stack when
 * it is first read, so an error a test reports is still mapped (but for the
 * frames of index.ts, compiled anew in each evaluation).
 */
const sourceMaps = process.sourceMapsEnabled;

/**
 * Pulumi's debuggablePromise (runtime/debuggable) stores `new Error().stack` on
 * each promise it tracks, several per resource input (transferProperties), to
 * print where a leaked promise was made when PULUMI_DEBUG_PROMISE_LEAKS is set,
 * and nowhere else. Capturing and formatting those stacks is about half of an
 * evaluation's CPU. Unless that debugging is on, the stack it stores is an empty
 * one (`Error`); the promise, its leak tracking and everything else it does are
 * Pulumi's own. Resource.callsites, which sets its own stack limit for the
 * source positions of registrations, is left alone. (Internal API, test harness
 * only: if Pulumi changes it, nothing is replaced and evaluations are slower.)
 */
function withoutPromiseStacks(): void {
    const debuggable = require("@pulumi/pulumi/runtime/debuggable");
    const original = debuggable.debuggablePromise;
    if (typeof original !== "function" || original.length !== 2 || debuggable.debugPromiseLeaks !== false) {
        return;
    }
    debuggable.debuggablePromise = function debuggablePromise<T>(promise: Promise<T>, context: unknown): Promise<T> {
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        try {
            return original(promise, context);
        } finally {
            Error.stackTraceLimit = limit;
        }
    };
}
withoutPromiseStacks();
let evaluating = 0;
let programLoaded = false;

/**
 * node:test's async hook, recorded by test/preload.ts when node:test makes it: it
 * maps each async resource a test creates to the test (see there), and is paused
 * while the program is evaluated. An evaluation's rejections are routed by its
 * runtime store (routeRejection), not by that map; an uncaught exception thrown
 * by an evaluation fails its test file rather than its test.
 */
function testRunnerHook(): AsyncHook | undefined {
    return (globalThis as Record<symbol, unknown>)[Symbol.for("calendars-caldav:test-runner-hook")] as AsyncHook | undefined;
}

/**
 * One Docker Engine API stand-in per world, shared by the evaluations of a test
 * process: it only answers read-only inspections of a fixed world (the tests that
 * count requests start an engine of their own and set docker:host). It keeps no
 * process alive, and its socket is removed when the process exits.
 */
const engines = new Map<string, Promise<FakeDocker>>();

function engineFor(world: DockerWorld): Promise<FakeDocker> {
    const key = JSON.stringify(world);
    let engine = engines.get(key);
    if (!engine) {
        engine = startFakeDocker(world, { keepProcessAlive: false });
        engines.set(key, engine);
    }
    return engine;
}

/** Freezes `value` and everything it holds, so that no test can change what another reads. */
function deepFreeze<T>(value: T): T {
    if (value && typeof value === "object" && !Object.isFrozen(value)) {
        Object.freeze(value);
        Object.values(value).forEach(deepFreeze);
    }
    return value;
}

const evaluations = new Map<string, Promise<Evaluation>>();

/**
 * `evaluate`, once per distinct set of arguments in a test process: for the tests
 * that read the same evaluation (a baseline, a stack's graph). The evaluation is
 * frozen. Only for arguments that fix the result: a source at a full commit SHA
 * (localSource), not a branch that a test moves.
 */
export function evaluateOnce(config: StackConfig, secrets: Record<string, string> = {}, options: EvaluateOptions = {}): Promise<Evaluation> {
    const key = JSON.stringify([config, secrets, options]);
    let evaluation = evaluations.get(key);
    if (!evaluation) {
        evaluation = evaluate(config, secrets, options).then(deepFreeze);
        evaluations.set(key, evaluation);
    }
    return evaluation;
}

/**
 * Evaluates index.ts once with `config` (keys without the project prefix;
 * `secrets` are set as secret config), and returns what it registered.
 *
 * Each evaluation runs in a runtime store of its own: its mocks, config, RPC
 * queue and leak candidates are reachable only from the promises its program
 * created, so a failed program that is still rejecting cannot reach the next
 * evaluation's monitor, config or error.
 */
export async function evaluate(config: StackConfig, secrets: Record<string, string> = {}, options: EvaluateOptions = {}): Promise<Evaluation> {
    routeRejections();
    if (evaluating++ === 0) {
        process.setSourceMapsEnabled(sourceMaps && !programLoaded);
        testRunnerHook()?.disable();
    }
    try {
        return await runtimeState.withLocalStorage(() => evaluateInOwnStore(config, secrets, options));
    } finally {
        programLoaded = true;
        if (--evaluating === 0) {
            process.setSourceMapsEnabled(sourceMaps);
            testRunnerHook()?.enable();
        }
    }
}

async function evaluateInOwnStore(config: StackConfig, secrets: Record<string, string>, options: EvaluateOptions): Promise<Evaluation> {
    const resources: Recorded[] = [];
    const generated: string[] = [];
    const networks = options.networks ?? {};
    /** Set once the program has finished or failed: nothing it does afterwards is recorded. */
    let finished = false;
    let error: Error | undefined;

    await pulumi.runtime.setMocks({
        newResource: async ({ type, name, inputs }) => {
            if (options.failing?.includes(name)) {
                throw new Error(`the provider failed to create ${name}`);
            }
            return { id: `${name}-id`, state: { ...mockState(type, name, inputs, generated), ...options.states?.[name] } };
        },
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
            if (!err && !finished) {
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
                    ignoreChanges: req.getIgnorechangesList(),
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
        if (recorded && !finished) {
            recorded.registeredOutputs = req.getOutputs()?.toJavaScript() ?? {};
        }
        registerOutputs(req, callback);
    };

    // A Docker Engine API answering about the evaluation's world, for what the program asks the engine directly.
    const engine = "docker:host" in config ? undefined : await engineFor(options.docker ?? MESSAGES_WORLD);
    pulumi.runtime.setAllConfig(
        toConfigMap({ ...config, ...(engine && { "docker:host": engine.endpoint }), ...secrets }),
        Object.keys(secrets).map((key) => `${PROJECT}:${key}`),
    );

    // Like Pulumi's language host, count a rejection nobody handled (e.g. a failed
    // input of a resource) as the program's error rather than the test runner's;
    // outputs that depend on the failed resource would otherwise wait forever.
    let fail: (reason: unknown) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => {
        fail = reject;
    });
    const errorHooks = new Map<string, pulumi.ErrorHookFunction>();
    errorHookSinks.set(runtimeState.getLocalStore()!, errorHooks);
    rejectionSinks.set(runtimeState.getLocalStore()!, (reason, promise) => {
        if (!finished) {
            fail(reason);
        } else if (!error) {
            // A program that passed, rejecting afterwards: the test runner reports it.
            runnerListeners.forEach((listener) => listener(reason, promise));
        }
        // Else the aftermath of a failed program: it only ever reaches this evaluation, now over.
    });

    const programPath = require.resolve("../index");
    delete require.cache[programPath];
    const outputs: Record<string, StackOutput> = {};
    try {
        await Promise.race([failed, (async () => {
            const program = require(programPath) as Record<string, unknown>;
            for (const [key, value] of Object.entries(program)) {
                outputs[key] = await resolveOutput(value);
            }
            // Every registration, invoke and output registration has completed
            // (the runtime's RPC queue, as `pulumi up` waits for it).
            await pulumi.runtime.disconnect();
            // And Node has reported any rejection they left unhandled.
            await rejectionsEmitted();
        })()]);
    } catch (caught) {
        error = caught as Error;
        if (options.drain) {
            await pulumi.runtime.disconnect();
        }
        // A failed program never drains: the failed resource's URN and outputs stay
        // pending, and so does the RPC of every component output that waits on them
        // (pulumi.runtime.disconnect() would wait forever). In a real run the process
        // ends there. Here, end the deployment as that exit would: close its callback
        // server, and clear its leak candidates so that no exit check counts them
        // (internal API, test harness only). What is left of the program can only
        // reach this evaluation's store, mocks and records, which nothing reads.
        pulumi.runtime.disconnectSync();
        require("@pulumi/pulumi/runtime/debuggable").leakedPromises();
    } finally {
        finished = true;
    }

    // What the program registered and exported until it finished, or failed: a failed
    // program's leftovers may still run, in their own store, but change nothing here.
    const registered = [...resources];
    const byType = (type: string) => registered.filter((r) => r.type === type);
    return {
        resources: registered,
        outputs: { ...outputs },
        generated: [...generated],
        error,
        errorHooks,
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
