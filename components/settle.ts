import * as pulumi from "@pulumi/pulumi";

/**
 * `output` of a resource, gated on that resource's `inputs`: it fails as soon as one of
 * them fails. A resource whose input failed never registers, and its own outputs then
 * never settle: whatever awaits them (a component's registered outputs, a dependsOn, a
 * stack output) would keep the program from ever ending. Chained with `apply`, which
 * rejects as soon as the value it waits for does.
 */
export function gated<T>(inputs: pulumi.Input<unknown>[], output: pulumi.Output<T>): pulumi.Output<T> {
    // The inputs' values are dropped: their secrecy must not spread to `output`.
    return pulumi.unsecret(pulumi.all(inputs)).apply(() => output);
}
