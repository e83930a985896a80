// Runs one operation of an existing TestStack in a process of its own:
//   node --import tsx e2e/harness/operation.ts <workDir> <stack> up|preview
// A program that throws (a config error, say) also leaves an unhandled rejection in
// the process that ran it; here that process is this one, not the test runner's.
// Exit 0 on success; otherwise the operation's error message on stderr and exit 1.
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { ROOT } from "./environment";

async function main(): Promise<void> {
    const [workDir, stackName, operation] = process.argv.slice(2);
    if (!workDir || !stackName || !["up", "preview"].includes(operation)) {
        throw new Error("usage: operation.ts <workDir> <stack> up|preview");
    }
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(process.env.E2E_TOOLCHAIN_BIN as string), skipVersionCheck: true });
    const program = async () => ({ ...require(path.join(ROOT, "index.ts")) });
    const stack = await LocalWorkspace.selectStack(
        { stackName, projectName: "calendars-caldav", program },
        { workDir, pulumiCommand, envVars: process.env as Record<string, string> },
    );
    await (operation === "up" ? stack.up({ color: "never" }) : stack.preview({ color: "never" }));
}

main().then(() => process.exit(0), (error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
});
