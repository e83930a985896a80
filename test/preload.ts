// Loaded before every test file (`npm test`, stryker.config.mjs: --require ./test/preload.ts,
// after tsx/cjs), for speed only: nothing here changes what a test runs or checks.
//
// @pulumi/pulumi requires two large dependencies when it loads, that the mock
// runtime never calls: the TypeScript compiler (through its typescript-shim, for
// closure serialization) and @npmcli/arborist (automation's code paths). They
// are about a third of the time a test process spends loading modules. Here each
// is replaced by an object that requires the real module on first use, so that
// a test which does use them gets them. If @pulumi/pulumi moves them, nothing is
// replaced and everything loads as before.
//
// The dependencies' own CommonJS files are compiled without tsx's check for ES
// module syntax, and with a V8 code cache (compileDependencies, below). node:test's
// async hook is made without `destroy`, and recorded for the harness to pause
// (recordTestRunnerHook, at the end).
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as vm from "vm";

function requireOnFirstUse(request: string, from: string, esModule: boolean): void {
    let file: string;
    try {
        file = require.resolve(request, { paths: [from] });
    } catch {
        return;
    }
    let real: any;
    const load = () => {
        if (real === undefined) {
            delete require.cache[file];
            real = require(file);
        }
        return real;
    };
    const stub = new (require("module"))(file);
    stub.filename = file;
    stub.loaded = true;
    stub.exports = new Proxy({}, {
        // `__importStar` copies a module's keys unless it says it is an ES module.
        get: (_, key) => (esModule && key === "__esModule" ? true : load()[key]),
        has: (_, key) => key in load(),
        ownKeys: () => Reflect.ownKeys(load()),
        getOwnPropertyDescriptor: (_, key) => {
            const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
            return descriptor && { ...descriptor, configurable: true };
        },
    });
    require.cache[file] = stub;
}

let pulumiDir: string | undefined;
try {
    pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
} catch {
    pulumiDir = undefined;
}
if (pulumiDir) {
    requireOnFirstUse("./typescript-shim", pulumiDir, false);
    requireOnFirstUse("@npmcli/arborist", path.join(pulumiDir, "runtime", "closure"), true);
    requireOnFirstUse("./automation", pulumiDir, true);
}

/** Package type of the scope of a directory under node_modules, as Node finds it (nearest package.json). */
const scopes = new Map<string, string | undefined>();
function scopeType(dir: string): string | undefined {
    if (!scopes.has(dir)) {
        let type: string | undefined;
        const manifest = path.join(dir, "package.json");
        if (path.basename(dir) === "node_modules" || path.dirname(dir) === dir) {
            type = undefined;
        } else if (fs.existsSync(manifest)) {
            try {
                type = JSON.parse(fs.readFileSync(manifest, "utf8")).type ?? "commonjs";
            } catch {
                type = undefined;
            }
        } else {
            type = scopeType(path.dirname(dir));
        }
        scopes.set(dir, type);
    }
    return scopes.get(dir);
}

/** V8's compiled code for dependency files, by file and content, shared by the test processes. */
const CODE_CACHE = path.join(os.tmpdir(), `caldav-test-code-cache-${os.userInfo().uid}`, `${process.version}-${process.arch}`);
/** Scripts compiled without usable cached code: their code is cached when the process exits. */
const uncached: Array<{ script: vm.Script; file: string }> = [];

/**
 * Runs a dependency's CommonJS file as Module.prototype._compile does, but from
 * V8's code cache when there is one. Returns false, having run nothing, when the
 * file does not compile as CommonJS (so that Node's own path, which detects ES
 * syntax, takes it).
 */
function runCached(module: any, filename: string, source: string): boolean {
    const Module = require("module");
    const file = path.join(CODE_CACHE, createHash("sha1").update(filename).update("\0").update(source).digest("hex"));
    let cachedData: Buffer | undefined;
    try {
        cachedData = fs.readFileSync(file);
    } catch {
        cachedData = undefined;
    }
    let script: vm.Script;
    try {
        script = new vm.Script(Module.wrap(source), {
            filename,
            cachedData,
            importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
        });
    } catch (error) {
        if (error instanceof SyntaxError) {
            return false;
        }
        throw error;
    }
    if (cachedData === undefined || script.cachedDataRejected) {
        uncached.push({ script, file });
    }
    // As Node's makeRequireFunction.
    const requireFn: any = (id: string) => module.require(id);
    requireFn.resolve = (request: string, options?: { paths?: string[] }) => Module._resolveFilename(request, module, false, options);
    requireFn.resolve.paths = (request: string) => Module._resolveLookupPaths(request, module);
    requireFn.main = process.mainModule;
    requireFn.extensions = Module._extensions;
    requireFn.cache = Module._cache;
    const wrapper = script.runInThisContext({ displayErrors: true });
    wrapper.call(module.exports, module.exports, requireFn, module, filename, path.dirname(filename));
    return true;
}

process.on("exit", () => {
    if (uncached.length === 0) {
        return;
    }
    try {
        fs.mkdirSync(CODE_CACHE, { recursive: true, mode: 0o700 });
        for (const { script, file } of uncached) {
            // After the run, so that the functions it compiled are in the cache too.
            const temporary = `${file}.${process.pid}`;
            fs.writeFileSync(temporary, script.createCachedData());
            fs.renameSync(temporary, file);
        }
    } catch {
        // A cache that cannot be written only makes the next run as slow as this one.
    }
});

/**
 * How the dependencies' files are compiled, for speed only: what they do is unchanged.
 *
 * tsx's require hook reads every .js file that is loaded and, when its text has
 * `import` or `export` anywhere (every file TypeScript compiles to CommonJS has
 * `exports.`), parses all of it to tell whether it is an ES module to transpile.
 * Until tsx's WebAssembly parser is ready, which is never before the modules a
 * test file requires at startup under `--require tsx/cjs`, that parse runs in
 * JavaScript: half a second per process for the Pulumi SDKs. And every test
 * process compiles the same few hundred files of the SDKs and their dependencies.
 *
 * A .js file under node_modules whose package scope is not "type": "module" is
 * CommonJS: it is compiled here as tsx compiles it when the parse finds no ES
 * syntax, from V8's code cache (V8 checks that the cached code is for this V8,
 * its flags and a source of that length; the cache key is the file's path and
 * content). A file that does not compile as CommonJS goes to `module._compile`,
 * which, as Node without tsx, loads a file with ES syntax as an ES module. Every
 * other file (the project's, "type": "module" packages, .cjs, .mjs, tsx's
 * `?namespace` requests) still goes through tsx.
 */
function compileDependencies(): void {
    const extensions = (require("module") as { _extensions: Record<string, (module: any, filename: string) => void> })._extensions;
    const viaTsx = extensions[".js"];
    extensions[".js"] = function loadJs(module, filename) {
        const dependency = filename.endsWith(".js") && filename.includes(`${path.sep}node_modules${path.sep}`) && !filename.includes("?");
        if (!dependency || scopeType(path.dirname(filename)) !== "commonjs") {
            return viaTsx.call(this, module, filename);
        }
        const source = fs.readFileSync(filename, "utf8");
        if (!runCached(module, filename, source)) {
            module._compile(source, filename);
        }
    };
}
compileDependencies();

/**
 * node:test (Node 20) maps every async resource a test creates to that test, to
 * tell which test an uncaught error comes from, with an async hook: `init` adds to
 * the map, `destroy` removes. An evaluation of the program makes about twenty
 * thousand async resources; that hook's calls, and V8 watching every promise for
 * its `destroy`, cost about as much CPU as the evaluation itself. So node:test's
 * hook is made here without `destroy` (its map then keeps the entries of resources
 * that are gone: ids are never reused, and the test code around evaluations makes
 * few), and recorded, so that the harness pauses it while it evaluates the program
 * (test/harness.ts). Found by its maker, node:test's harness: if node:test makes
 * its hook elsewhere, it is made as asked and evaluations are slower.
 */
function recordTestRunnerHook(): void {
    const asyncHooks = require("async_hooks") as typeof import("async_hooks");
    const createHook = asyncHooks.createHook;
    asyncHooks.createHook = function createHookRecordingTestRunners(callbacks) {
        if (!new Error().stack?.includes("node:internal/test_runner/harness")) {
            return createHook.call(this, callbacks);
        }
        const hook = createHook.call(this, { ...callbacks, destroy: undefined });
        (globalThis as Record<symbol, unknown>)[Symbol.for("calendars-caldav:test-runner-hook")] = hook;
        return hook;
    };
}
recordTestRunnerHook();
