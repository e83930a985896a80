// What e2e/run.sh hands to the scenarios: the toolchain, the engine and the images.
// Scenarios started any other way fail here, naming what is missing.
import * as path from "node:path";

export const ROOT = path.join(__dirname, "..", "..");

export interface E2eEnvironment {
    /** Directory holding `pulumi` and the `pulumi-resource-*` plugins built by e2e/toolchain. */
    toolchainBin: string;
    /** The e2e engine's socket (unix://...). */
    dockerHost: string;
    /** Stand-in for the official postgres image (e2e/images/postgres). */
    postgresImage: string;
    /** PHP + Apache + SabreDAV base of the stand-in CalDAV server (e2e/images/php-apache). */
    phpImage: string;
    /** `standin`: the fixtures of this folder; `upstream`: the real Calendars source. */
    fixtures: "standin" | "upstream";
    /** `build`: plugins come from e2e/toolchain only; `external`: the CLI may download them. */
    toolchain: "build" | "external";
}

const VARIABLES: Record<keyof E2eEnvironment, string> = {
    toolchainBin: "E2E_TOOLCHAIN_BIN",
    dockerHost: "DOCKER_HOST",
    postgresImage: "E2E_POSTGRES_IMAGE",
    phpImage: "E2E_PHP_IMAGE",
    fixtures: "E2E_FIXTURES",
    toolchain: "E2E_TOOLCHAIN",
};

let cached: E2eEnvironment | undefined;

export function e2eEnvironment(): E2eEnvironment {
    if (cached) {
        return cached;
    }
    const missing = Object.values(VARIABLES).filter((name) => !process.env[name]);
    if (missing.length > 0) {
        throw new Error(
            `${missing.join(", ")} not set: the scenarios run inside e2e/run.sh (npm run test:e2e), ` +
                "which builds the toolchain, starts the engine and builds the images first",
        );
    }
    cached = Object.fromEntries(
        Object.entries(VARIABLES).map(([key, name]) => [key, process.env[name] as string]),
    ) as unknown as E2eEnvironment;
    return cached;
}
