import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface ApiKeysArgs {
    /** shared: one key for all three variables; separate: one key each. */
    mode: "shared" | "separate";
    /** Changing it generates new keys. */
    rotation: string;
}

export type ApiKeyRole = "inbound" | "outbound" | "internal";
const ROLES: ApiKeyRole[] = ["inbound", "outbound", "internal"];

/** The three `CALDAV_*_API_KEY` values, generated; every one is a secret. */
export class ApiKeys extends pulumi.ComponentResource {
    public readonly inbound: pulumi.Output<string>;
    public readonly outbound: pulumi.Output<string>;
    public readonly internal: pulumi.Output<string>;

    constructor(name: string, args: ApiKeysArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:ApiKeys", name, {}, opts);

        const generate = (suffix: string) =>
            pulumi.secret(new random.RandomPassword(`${name}-${suffix}`, {
                // Sent as HTTP header values: alphanumeric only, long enough to not be guessed.
                length: 64,
                special: false,
                keepers: { rotation: args.rotation },
            }, { parent: this }).result);

        const shared = args.mode === "shared" ? generate("shared") : undefined;
        const keys = Object.fromEntries(ROLES.map((role) => [role, shared ?? generate(role)])) as Record<ApiKeyRole, pulumi.Output<string>>;
        this.inbound = keys.inbound;
        this.outbound = keys.outbound;
        this.internal = keys.internal;
        this.registerOutputs(keys);
    }
}
