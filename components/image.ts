import * as fs from "fs";
import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ImageConfig } from "./config";
import { fetchSource, SourceError, withoutCredentials } from "./source";

/** A source checked out at a commit, with its build context found (see checkoutSource). */
export interface CheckedOutSource {
    kind: "build";
    imageName: string;
    commit: string;
    /** Directory holding the Dockerfile. */
    context: string;
}

export interface CaldavImageArgs {
    /** Build from a checked-out source, or run a published image. */
    source: CheckedOutSource | Extract<ImageConfig, { kind: "prebuilt" }>;
}

/**
 * Fetches the source at its ref and finds the build context in it. Run before anything
 * registers (index.ts does), so that a missing ref or context fails the program at once
 * and changes nothing; previews run it too.
 */
export async function checkoutSource(source: Extract<ImageConfig, { kind: "build" }>): Promise<CheckedOutSource> {
    const checkout = await fetchSource(source);
    return { kind: "build", imageName: source.imageName, commit: checkout.commit, context: buildContext(checkout.dir, checkout.commit, source) };
}

/** The CalDAV server image: built from the Calendars source at a commit, or pulled prebuilt. */
export class CaldavImage extends pulumi.ComponentResource {
    /** What the container runs: the image ID, so that a new build replaces the container. */
    public readonly imageId: pulumi.Output<string>;
    /** Readable reference: `<imageName>:<commit>`, or the configured prebuilt reference. */
    public readonly reference: pulumi.Output<string>;
    /** Commit the image was built from; undefined for a prebuilt image. */
    public readonly sourceCommit: pulumi.Output<string | undefined>;

    constructor(name: string, args: CaldavImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:Image", name, {}, opts);
        const source = args.source;

        if (source.kind === "prebuilt") {
            const image = new docker.RemoteImage(name, {
                name: source.reference,
                // Other stacks or containers on the host may use the same image.
                keepLocally: true,
            }, { parent: this });
            this.imageId = image.imageId;
            this.reference = image.name;
            this.sourceCommit = pulumi.output(undefined);
        } else {
            // Built by the docker provider's own image resource (Terraform's docker_image):
            // tagged by commit, so the same ref twice is no change and a new commit a new
            // image (the name forces a replacement). Previews never build.
            const image = new docker.RemoteImage(name, {
                name: `${source.imageName}:${source.commit}`,
                build: { context: source.context },
                // Other stacks on the host may run the same commit; `docker image prune` reclaims old ones.
                keepLocally: true,
            }, { parent: this });
            // The ID, not the tag: the container follows the image that was actually built.
            this.imageId = image.imageId;
            this.reference = image.name;
            this.sourceCommit = pulumi.output(source.commit);
        }

        this.registerOutputs({
            imageId: this.imageId,
            reference: this.reference,
            sourceCommit: this.sourceCommit,
        });
    }
}

function buildContext(dir: string, commit: string, source: { repo: string; context: string }): string {
    const context = path.join(dir, source.context);
    if (!fs.existsSync(path.join(context, "Dockerfile"))) {
        throw new SourceError(
            `source.context ${source.context} has no Dockerfile at commit ${commit} of source.repo ${withoutCredentials(source.repo).url}; ` +
                "set source.context to the CalDAV server's directory (docker/sabredav before March 2026, src/caldav since).",
        );
    }
    return context;
}
