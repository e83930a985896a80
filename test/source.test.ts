import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { fetchSource, SourceError } from "../components/source";
import { createUpstreamRepo, tempDir, UpstreamRepo } from "./fixtures";
import { evaluate } from "./harness";

describe("source fetch (git, file:// repository)", () => {
    let repo: UpstreamRepo;
    before(() => {
        repo = createUpstreamRepo();
    });

    test("an annotated tag resolves to the commit it tags", async () => {
        const checkout = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir: tempDir("cache") });
        assert.equal(checkout.commit, repo.tagged);
        assert.equal(fs.readFileSync(path.join(checkout.dir, "src/caldav/VERSION"), "utf8"), "first\n");
    });

    test("a branch resolves to its tip, and a new commit gives a new checkout", async () => {
        const cacheDir = tempDir("cache");
        const upstream = createUpstreamRepo();
        const first = await fetchSource({ repo: upstream.url, ref: "main", cacheDir });
        assert.equal(first.commit, upstream.main);
        const next = upstream.commit("third");
        const second = await fetchSource({ repo: upstream.url, ref: "main", cacheDir });
        assert.equal(second.commit, next);
        assert.notEqual(second.dir, first.dir);
        assert.equal(fs.readFileSync(path.join(second.dir, "src/caldav/VERSION"), "utf8"), "third\n");
    });

    test("a full commit SHA is fetched as is", async () => {
        const checkout = await fetchSource({ repo: repo.url, ref: repo.oldLayout, cacheDir: tempDir("cache") });
        assert.equal(checkout.commit, repo.oldLayout);
        assert.ok(fs.existsSync(path.join(checkout.dir, "docker/sabredav/Dockerfile")));
    });

    test("the cache is reused when the commit is already there", async () => {
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        const marker = path.join(first.dir, ".git", "reused-marker");
        fs.writeFileSync(marker, "");
        const second = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        assert.equal(second.dir, first.dir);
        assert.ok(fs.existsSync(marker), "the checkout was fetched again");
        // A SHA needs no remote at all once cached.
        const offline = await fetchSource({ repo: "file:///nonexistent/calendars", ref: first.commit, cacheDir })
            .catch((error: Error) => error);
        assert.ok(offline instanceof SourceError, "a different repo URL has its own cache");
    });

    test("a modified checkout in the cache is fetched again", async () => {
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        fs.writeFileSync(path.join(first.dir, "src/caldav/VERSION"), "tampered\n");
        const second = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        assert.equal(fs.readFileSync(path.join(second.dir, "src/caldav/VERSION"), "utf8"), "first\n");
    });

    test("a cached checkout git cannot read is fetched again", async () => {
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        fs.rmSync(path.join(first.dir, ".git"), { recursive: true });
        fs.writeFileSync(path.join(first.dir, ".git"), "gitdir: /nonexistent\n");
        const second = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        assert.equal(second.dir, first.dir);
        assert.ok(fs.statSync(path.join(second.dir, ".git")).isDirectory(), "a checkout of its own again");
        assert.equal(fs.readFileSync(path.join(second.dir, "src/caldav/VERSION"), "utf8"), "first\n");
    });

    test("a checkout with a file the commit does not have is fetched again (it would be in the build context)", async () => {
        const cacheDir = tempDir("cache");
        const first = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        fs.writeFileSync(path.join(first.dir, "src/caldav/stray.php"), "<?php\n");
        const second = await fetchSource({ repo: repo.url, ref: "v0.1.0", cacheDir });
        assert.equal(second.dir, first.dir);
        assert.ok(!fs.existsSync(path.join(second.dir, "src/caldav/stray.php")));
        assert.equal(fs.readFileSync(path.join(second.dir, "src/caldav/VERSION"), "utf8"), "first\n");
    });

    test("an unknown ref is an error naming source.ref and source.repo", async () => {
        await assert.rejects(
            fetchSource({ repo: repo.url, ref: "v9.9.9", cacheDir: tempDir("cache") }),
            (error: Error) => error instanceof SourceError &&
                error.message.includes("source.ref v9.9.9 is not a branch or tag of source.repo file://") &&
                error.message.endsWith("; set source.ref to an existing branch, tag or full 40-character commit SHA."),
        );
    });

    test("a SHA the remote does not have is an error naming source.ref", async () => {
        await assert.rejects(
            fetchSource({ repo: repo.url, ref: "0".repeat(40), cacheDir: tempDir("cache") }),
            /could not fetch source\.ref 0{40} from source\.repo file:.*\nA commit SHA must be a full 40-character SHA that the remote still has\.$/s,
        );
    });

    test("an unreachable repository is an error naming source.repo", async () => {
        await assert.rejects(
            fetchSource({ repo: "file:///nonexistent/calendars", ref: "main", cacheDir: tempDir("cache") }),
            (error: Error) => {
                // git's own words, trimmed, then what to check: not node's "Command failed: git ..." wrapper.
                assert.match(error.message, /^could not read source\.repo file:\/\/\/nonexistent\/calendars: fatal: .*does not appear to be a git repository/s);
                assert.match(error.message, /\S\nCheck the URL, network access and credentials \(git must reach it without a prompt\)\.$/);
                assert.doesNotMatch(error.message, /Command failed/);
                return true;
            },
        );
    });

    test("the image is built from <checkout>/<source.context>, tagged by commit, and kept when the stack lets go of it", async () => {
        const cacheDir = tempDir("cache");
        const evaluation = await evaluate(
            { source: { repo: repo.url, ref: "v0.1.0", cacheDir }, network: { create: true }, postgres: { adminHost: "db.internal" } },
            { postgresAdminPassword: "admin-secret" },
        );
        assert.ifError(evaluation.error);
        const image = evaluation.one("docker:index/remoteImage:RemoteImage", "image").inputs;
        assert.equal(image.name, `calendars-caldav:${repo.tagged}`);
        assert.ok(image.build.context.startsWith(cacheDir));
        assert.ok(image.build.context.endsWith(path.join(repo.tagged, "src/caldav")));
        // Another stack on the host may run the same commit: destroy must not remove it.
        assert.equal(image.keepLocally, true);
        assert.equal(evaluation.outputs.sourceCommit.value, repo.tagged);
        assert.equal(evaluation.outputs.image.value, `calendars-caldav:${repo.tagged}`);
        const container = evaluation.one("docker:index/container:Container", "caldav").inputs;
        assert.match(container.image, /^sha256:/, "the container runs the built image's ID");
    });

    test("a context without a Dockerfile at that commit is an error naming source.context", async () => {
        const evaluation = await evaluate(
            { source: { repo: repo.url, ref: "old-layout", cacheDir: tempDir("cache") }, network: { create: true }, postgres: { adminHost: "db.internal" } },
            { postgresAdminPassword: "admin-secret" },
        );
        assert.match(evaluation.error?.message ?? "", /source\.context src\/caldav has no Dockerfile at commit [0-9a-f]{40}/);
        assert.deepEqual(evaluation.resources.map((r) => r.type), [], "found before anything registers");
    });
});
