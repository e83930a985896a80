// One process's share of the unit suite (test/run.ts writes the entry file that calls load).
import * as path from "path";
import { describe } from "node:test";

const ROOT = path.join(__dirname, "..");

/** The name of a file's suite: its path from the repository root (also the key of its recorded duration). */
export function suiteName(file: string): string {
    return path.relative(ROOT, file);
}

/**
 * Loads each test file inside a suite named after it (its path from the repository
 * root): its tests, hooks included, run in that suite, one file after the other.
 */
export function load(files: string[]): void {
    for (const file of files) {
        describe(suiteName(file), () => {
            require(file);
        });
    }
}
