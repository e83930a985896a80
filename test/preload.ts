// Loaded before every test file (`npm test`: --import ./test/preload.ts), for speed only.
//
// @pulumi/pulumi requires two large dependencies when it loads, that the mock
// runtime never calls: the TypeScript compiler (through its typescript-shim, for
// closure serialization) and @npmcli/arborist (automation's code paths). They
// are about a third of the time a test process spends loading modules. Here each
// is replaced by an object that requires the real module on first use, so that
// a test which does use them gets them. If @pulumi/pulumi moves them, nothing is
// replaced and everything loads as before.
import * as path from "path";

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
}
