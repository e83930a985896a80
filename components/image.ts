import * as fs from "fs";
import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ImageConfig } from "./config";
import { fetchSource, SourceError } from "./source";

export interface CaldavImageArgs {
    /** Build from a git source, or run a published image. */
    source: ImageConfig;
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
            const checkout = pulumi.output(
                fetchSource(source).then((c) => ({ ...c, context: buildContext(c.dir, c.commit, source) })),
            );
            const image = new docker.Image(name, {
                // Tagged by commit: the same ref twice is no change, a new commit a new image.
                imageName: pulumi.interpolate`${source.imageName}:${checkout.commit}`,
                build: {
                    context: checkout.context,
                    builderVersion: docker.BuilderVersion.BuilderBuildKit,
                },
                // Local daemon only; previews (e.g. on pull requests) never build.
                skipPush: true,
                buildOnPreview: false,
            }, { parent: this });
            this.imageId = image.repoDigest;
            this.reference = image.imageName;
            this.sourceCommit = checkout.commit;
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
            `source.context ${source.context} has no Dockerfile at commit ${commit} of source.repo ${source.repo}; ` +
                "set source.context to the CalDAV server's directory (docker/sabredav before March 2026, src/caldav since).",
        );
    }
    return context;
}
