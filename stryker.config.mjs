// Mutation testing (StrykerJS): `npm run mutation`, or scoped to some files:
//   npm run mutation -- --mutate components/duration.ts,components/server.ts
// Not part of .ci/run: it runs the unit suite once per mutant (slow).
// The tap runner runs each test file with node's built-in test runner (TAP
// reporter), with the same loaders as `npm test`, and records which test files
// reach each mutant so that only those files run against it.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
    packageManager: "npm",
    testRunner: "tap",
    plugins: ["@stryker-mutator/tap-runner"],
    tap: {
        // The workflow tests read components/config.ts as text, which Stryker rewrites; they
        // never run the program's code, so they are left out. So is the reference test: it
        // asks git which files the repository has, and `npm run mutation` keeps git from
        // looking above the sandbox (GIT_CEILING_DIRECTORIES): a mutant that drops git's
        // working directory once ran `git checkout` on the repository holding the sandbox.
        testFiles: ["test/!(workflows*|reference).test.ts"],
        // A mutant is killed by its first failing test: the rest of that file need not run.
        forceBail: true,
        nodeArgs: [
            "--require", "tsx/cjs",
            "--require", "./test/preload.ts",
            "--test-reporter=tap",
            "-r", "{{hookFile}}",
            "{{testFile}}",
        ],
    },
    mutate: ["components/**/*.ts", "index.ts"],
    coverageAnalysis: "perTest",
    concurrency: 2,
    timeoutMS: 10000,
    // The sandbox lives in the repository (git-ignored), reports in reports/.
    tempDirName: ".stryker-tmp",
    cleanTempDir: true,
    ignorePatterns: ["e2e", ".pulumi", "reports"],
    reporters: ["clear-text", "progress", "html", "json"],
    htmlReporter: { fileName: "reports/mutation/mutation.html" },
    jsonReporter: { fileName: "reports/mutation/mutation.json" },
};
