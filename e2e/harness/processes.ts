// The host's processes as /proc shows them, for what a scenario must find or kill itself.
import * as fs from "node:fs";

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
