import * as pulumi from "@pulumi/pulumi";
import { dockerClient } from "./discovery";

/** What the error hook needs to know of a container that holds a one-shot container's name. */
export interface FoundContainer {
    running: boolean;
    exitCode: number;
    /** `KEY=value` entries. */
    env: string[];
    cmd: string[];
    /** The last lines of its log. */
    logTail: string;
}

/** The Docker Engine, as much as clearing a leftover one-shot container needs. */
export interface OneShotEngine {
    /** The container of that name; undefined when there is none. */
    find(name: string): Promise<FoundContainer | undefined>;
    remove(name: string): Promise<void>;
}

/** The Engine API at `endpoint` (see dockerEndpoint), with dockerode. */
export function oneShotEngine(endpoint: string): OneShotEngine {
    const client = dockerClient(endpoint);
    return {
        async find(name) {
            const container = client.getContainer(name);
            let info: import("dockerode").ContainerInspectInfo;
            try {
                info = await container.inspect();
            } catch (error) {
                if ((error as { statusCode?: number }).statusCode === 404) {
                    return undefined;
                }
                throw error;
            }
            const log = await container.logs({ stdout: true, stderr: true, tail: 5 }) as unknown as Buffer;
            return {
                running: info.State.Running,
                exitCode: info.State.ExitCode,
                env: info.Config.Env ?? [],
                cmd: ([] as string[]).concat(info.Config.Cmd ?? []),
                // Multiplexed log frames: an 8-byte header before each chunk.
                logTail: demultiplex(log).trim(),
            };
        },
        async remove(name) {
            await client.getContainer(name).remove();
        },
    };
}

/** The text of a multiplexed `docker logs` stream (each frame: a stream byte, 3 zero bytes, a 4-byte length). */
export function demultiplex(stream: Buffer): string {
    const chunks: Buffer[] = [];
    let offset = 0;
    while (offset + 8 <= stream.length && [1, 2].includes(stream[offset]) && stream.readUIntBE(offset + 1, 3) === 0) {
        const length = stream.readUInt32BE(offset + 4);
        chunks.push(stream.subarray(offset + 8, offset + 8 + length));
        offset += 8 + length;
    }
    // A stream without frames (a TTY container) is the text itself.
    return offset === 0 ? stream.toString("utf8") : Buffer.concat(chunks).toString("utf8");
}

/**
 * The error hook of a one-shot container of this stack (the dump, the record): when its
 * create fails because a container of that name is there already, left by an earlier
 * `up` that was killed while it ran (the state never learned of it), and that container
 * is this stack's one-shot and has ended, it is removed, saying so with its last log
 * lines, and the create is tried again. It holds no data (the dumps are in
 * backup.location); a run that was still in progress would be its own, killed with the
 * `up`, so one still running is left alone and reported, as is a container of that name
 * the stack did not create.
 */
export function clearLeftover(containerName: string, stack: string, engine: () => OneShotEngine): pulumi.ErrorHookFunction {
    return async (failure) => {
        if (failure.failedOperation !== "create" ||
            !failure.errors.some((error) => error.includes(`The container name "/${containerName}" is already in use`))) {
            return false;
        }
        const docker = engine();
        let found: FoundContainer | undefined;
        try {
            found = await docker.find(containerName);
        } catch (error) {
            await pulumi.log.error(`the container ${containerName} is in the way, and the Docker Engine did not say what it is ` +
                `(${(error as Error).message}): look at it (docker inspect ${containerName}), remove it (docker rm ${containerName}) ` +
                "if it is a one-shot container of this stack that has ended, then run pulumi up again.");
            return false;
        }
        if (found === undefined) {
            return true; // gone meanwhile: try again
        }
        const ours = found.cmd[0] === "sh" && found.cmd[1] === "-c" &&
            found.env.includes(`STACK=${stack}`) && found.env.some((entry) => entry.startsWith("DEPLOYING_IMAGE="));
        if (!ours) {
            await pulumi.log.error(`a container named ${containerName} exists that is not a one-shot container of stack ${stack}: ` +
                `rename or remove it (docker rm ${containerName}) if it is not needed, or set caldav.containerName, then run pulumi up again.`);
            return false;
        }
        if (found.running) {
            await pulumi.log.error(`${containerName}, started by an earlier pulumi up that did not finish, still runs: ` +
                `wait for it to end (docker wait ${containerName}; docker logs ${containerName} says what it does), then run pulumi up again.`);
            return false;
        }
        await docker.remove(containerName);
        await pulumi.log.warn(`removed ${containerName}, left by an earlier pulumi up that did not finish (it had ended, exit code ` +
            `${found.exitCode}${found.logTail ? `; its last lines: ${found.logTail.split("\n").join(" | ")}` : ""}); trying again.`);
        return true;
    };
}
