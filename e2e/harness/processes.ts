// The host's processes as /proc shows them, for what a scenario must find or kill itself.
import * as fs from "node:fs";
import * as path from "node:path";

/** Every process of the host and its parent (pid -> ppid). */
export function processParents(): Map<number, number> {
    const parents = new Map<number, number>();
    for (const entry of fs.readdirSync("/proc")) {
        if (/^\d+$/.test(entry)) {
            try {
                // pid (comm) state ppid ...: comm may hold spaces and parentheses.
                const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
                parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
            } catch {
                // Ended meanwhile.
            }
        }
    }
    return parents;
}

/**
 * Processes on this host whose working directory is `dir` or below (the CLI of a stack,
 * its language host, node, the providers), whoever started them.
 */
export function processesIn(dir: string): { pid: number; command: string }[] {
    const found: { pid: number; command: string }[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) {
            continue;
        }
        try {
            const cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
            if (cwd === dir || cwd.startsWith(dir + path.sep)) {
                found.push({ pid: Number(entry), command: fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim() });
            }
        } catch {
            // Ended meanwhile, or a kernel thread.
        }
    }
    return found;
}
