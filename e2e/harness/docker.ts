// The docker CLI against the e2e engine, for what scenarios set up outside Pulumi
// (Messages stand-ins) and for what they check (networks, containers, health).
import { execFileSync, spawnSync } from "node:child_process";
import { e2eEnvironment } from "./environment";

export function docker(...args: string[]): string {
    const result = spawnSync("docker", args, {
        encoding: "utf8",
        // The classic builder: Debian's docker client has no buildx plugin.
        env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost, DOCKER_BUILDKIT: "0" },
    });
    if (result.status !== 0) {
        throw new Error(`docker ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
    }
    return result.stdout.trim();
}

/** `docker inspect` of one object, parsed. */
export function inspect(kind: "container" | "network" | "volume" | "image", name: string): any {
    return JSON.parse(docker(kind, "inspect", name))[0];
}

/** A container's environment (`docker inspect`'s Config.Env), as a map. */
export function containerEnv(name: string): Record<string, string> {
    return Object.fromEntries((inspect("container", name).Config.Env as string[])
        .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
}

export function exists(kind: "container" | "network" | "volume" | "image", name: string): boolean {
    return spawnSync("docker", [kind, "inspect", name], {
        env: { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost },
    }).status === 0;
}

/** Removes containers, then networks, then volumes, ignoring those already gone. */
export function removeAll(objects: { containers?: string[]; networks?: string[]; volumes?: string[] }): void {
    const env = { ...process.env, DOCKER_HOST: e2eEnvironment().dockerHost };
    for (const [kind, names, flags] of [
        ["container", objects.containers ?? [], ["rm", "--force", "--volumes"]],
        ["network", objects.networks ?? [], ["rm"]],
        ["volume", objects.volumes ?? [], ["rm", "--force"]],
    ] as const) {
        for (const name of names) {
            if (spawnSync("docker", [kind, "inspect", name], { env }).status === 0) {
                execFileSync("docker", [kind, ...flags, name], { env, stdio: "ignore" });
            }
        }
    }
}

/** Runs SQL with psql inside a PostgreSQL container, as `user`; returns unaligned rows. */
export function psql(container: string, user: string, database: string, sql: string): string {
    return docker("exec", container, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database, "-tAc", sql);
}

/** Waits until a PostgreSQL container accepts TCP connections (the state Docker's health check reports). */
export async function waitHealthy(container: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const state = inspect("container", container).State;
        if (state.Health?.Status === "healthy") {
            return;
        }
        if (!state.Running) {
            throw new Error(`container ${container} stopped: ${docker("logs", "--tail", "20", container)}`);
        }
        if (Date.now() > deadline) {
            throw new Error(`container ${container} not healthy after ${timeoutMs} ms`);
        }
        // Polls Docker's own health state; the wait ends on the condition, not on the delay.
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
}
