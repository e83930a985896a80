import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { NetworkConfig } from "./config";
import { parseCidr } from "./ipv4";

export interface CaldavNetworkArgs extends NetworkConfig {
    /** An existing network's name as checkExistingNetwork returned it; without it, the component checks. */
    checked?: string;
}

/** A RunError: Pulumi prints its message without a stack trace. */
export class NetworkError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "NetworkError";
    }
}

/**
 * The Docker network shared with Messages and the Calendars backend: created
 * and owned by this stack, or an existing one that is checked, never changed.
 */
export class CaldavNetwork extends pulumi.ComponentResource {
    /** Network name; resolves only once the network exists (created or checked). */
    public readonly name: pulumi.Output<string>;

    constructor(name: string, args: CaldavNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:Network", name, {}, opts);

        if (args.create) {
            const network = new docker.Network(name, {
                name: args.name,
                driver: "bridge",
                // Dynamic addresses come from a range without the fixed IPs, so that
                // Docker never hands the backend's address to another container.
                ipamConfigs: [{ subnet: args.subnet, gateway: args.gateway, ipRange: args.allocationRange }],
            }, {
                parent: this,
                // A network name is unique per host: the old one must go before a new one exists.
                deleteBeforeReplace: true,
            });
            this.name = network.name;
        } else {
            this.name = pulumi.output(args.checked ?? checkExistingNetwork(args, this));
        }
        this.registerOutputs({ name: this.name });
    }
}

/** The existing network's name once it is found with network.subnet; a NetworkError otherwise. Read-only. */
export async function checkExistingNetwork(args: NetworkConfig, parent?: pulumi.Resource): Promise<string> {
    let existing: docker.GetNetworkResult;
    try {
        existing = await docker.getNetwork({ name: args.name }, { parent });
    } catch (error) {
        throw new NetworkError(
            `network.name ${args.name} is not a network on this Docker host (${(error as Error).message}); ` +
                "start Messages first, set network.name to its network, or set network.create true for a self-contained stack.",
        );
    }
    const subnets = existing.ipamConfigs.map((ipam) => ipam.subnet).filter((s): s is string => !!s && !!parseCidr(s));
    if (!subnets.includes(args.subnet)) {
        throw new NetworkError(
            `network.subnet is ${args.subnet}, but network ${args.name} has ${subnets.join(", ") || "no IPv4 subnet"}; ` +
                "set network.subnet (and network.backendIp) to match the existing network.",
        );
    }
    return existing.name;
}
