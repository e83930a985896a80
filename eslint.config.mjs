import pulumi from "@pulumi/eslint-plugin";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
    { ignores: ["node_modules/", ".pulumi/", ".stryker-tmp/", "reports/"] },
    tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        plugins: { pulumi },
        rules: {
            // An Output in a plain template literal prints "Calling [toString] on an Output<T>".
            "pulumi/no-output-in-template-literal": "error",
            "pulumi/no-output-instance-in-template-literal": "error",
            "@typescript-eslint/no-floating-promises": ["error", {
                allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["describe", "test"] }],
            }],
        },
    },
    {
        // The harnesses read untyped wire objects (the mock monitor's, docker inspect's);
        // the toolchain's name check is a plain CommonJS script run by build.sh.
        files: ["test/**/*.ts", "e2e/**/*.ts", "e2e/toolchain/**/*.js"],
        rules: {
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-require-imports": "off",
        },
    },
);
