// One process's share of the unit suite (test/run.ts writes the entry file that calls load).
import * as path from "path";
import { describe } from "node:test";

const ROOT = path.join(__dirname, "..");

/**
 * Loads each test file inside a suite named after it (its path from the repository
 * root): its tests, hooks included, run in that suite, one file after the other.
 */
export function load(files: string[]): void {
    for (const file of files) {
        describe(path.relative(ROOT, file), () => {
            require(file);
        });
    }
}
