// What a scenario reads and does in backup.location and in the schema's state: the
// dumps of one stack (in a Docker volume or a host directory), copies of them spoiled
// on purpose, and the schema's comment (the image whose data it holds).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { docker, psql } from "./docker";
import { e2eEnvironment } from "./environment";

export type Location = { volume: string } | { dir: string };

export class Backups {
    constructor(readonly location: Location, readonly stack: string) {}

    /** Runs `script` (sh) in the tools image, in the stack's directory of the location. */
    sh(script: string): string {
        const mount = "volume" in this.location ? this.location.volume : this.location.dir;
        return docker("run", "--rm", "--volume", `${mount}:/b`, "--workdir", "/b", "--entrypoint", "sh", e2eEnvironment().postgresImage,
            "-c", `mkdir -p "${this.stack}" && cd "${this.stack}" && ${script}`);
    }

    /** The files of the stack's directory, sorted. */
    files(): string[] {
        return this.sh("ls -A").split("\n").filter(Boolean).sort();
    }

    dumps(): string[] {
        return this.files().filter((file) => file.endsWith(".dump"));
    }

    read(file: string): string {
        return this.sh(`cat '${file}'`);
    }

    /** SHA-256 of every dump, by name: that a good dump is still there, unchanged. */
    fingerprints(): Record<string, string> {
        return Object.fromEntries(this.dumps().map((file) => [file, createHash("sha256").update(this.sh(`base64 '${file}'`)).digest("hex")]));
    }

    /** Writes `name` (and its .image file) from `from`, spoiled by the shell command `spoil` ("$1" in, "$2" out). */
    spoiled(from: string, name: string, spoil: string): void {
        this.sh(`set -e; spoil() { ${spoil}; }; spoil '${from}' '${name}'; cp '${from.replace(/\.dump$/, ".image")}' '${name.replace(/\.dump$/, ".image")}'`);
    }

    /** Mode bits of the stack's directory and of its files ("700 prod", "600 file"). */
    modes(): string[] {
        return this.sh("stat -c '%a %n' . *").split("\n").filter(Boolean);
    }
}

/** A host directory for backup.location, readable by root only, like the dumps in it. */
export function hostDirectory(parent: string, name: string): string {
    const dir = path.join(parent, name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
}

/** The schema's state (its comment) as `admin` sees it on the PostgreSQL container. */
export function schemaState(container: string, admin: string, database: string, schema = "sabre"): string {
    return psql(container, admin, database, `SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = '${schema}'`);
}

export const deployedState = (id: string, reference: string) => `calendars-caldav deployed=${id} reference=${reference}`;
