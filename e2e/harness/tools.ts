// A shell in the tools image with what the stack's dump container has (its network, its
// backup.location mount, its connection to the database), as an operator would take or
// restore a dump by hand.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PGPASS_FILE } from "../../components/backup";
import { docker, inspect } from "./docker";

export function likeDumpContainer(dumpContainer: string, script: string): string {
    const info = inspect("container", dumpContainer);
    const mount = info.Mounts.find((m: { Destination: string }) => m.Destination === "/backups");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-tools-"));
    try {
        fs.writeFileSync(path.join(dir, "env"), `${info.Config.Env.join("\n")}\n`, { mode: 0o600 });
        // The password file the dump container was given (PGPASSFILE), mounted at the same path.
        docker("cp", `${dumpContainer}:${PGPASS_FILE}`, path.join(dir, "pgpass"));
        return docker("run", "--rm", "--network", Object.keys(info.NetworkSettings.Networks)[0],
            "--volume", `${mount.Type === "volume" ? mount.Name : mount.Source}:/backups`, "--env-file", path.join(dir, "env"),
            "--volume", `${path.join(dir, "pgpass")}:${PGPASS_FILE}:ro`,
            "--entrypoint", "sh", info.Image, "-c", script);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
