// A source.repo with credentials in its URL, fetched for real from a git server on
// 127.0.0.1 that demands them (git http-backend behind HTTP basic auth): the fetch works,
// and the credentials appear in no git command line and in no message.
import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fetchSource, SourceError, withoutCredentials } from "../components/source";
import { createUpstreamRepo, tempDir } from "./fixtures";

const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
const USER = "deploy-bot";
const PASSWORD = "s3cret:with@odd/chars";

/** git's smart HTTP protocol over `root`, for requests that bring USER and PASSWORD. */
function gitServer(root: string): http.Server {
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
    return http.createServer((req, res) => {
        if (req.headers.authorization !== expected) {
            res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end();
            return;
        }
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const cgi = spawn(REAL_GIT, ["http-backend"], {
            env: {
                ...process.env, GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: "1", REMOTE_USER: USER,
                REQUEST_METHOD: req.method, PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1),
                CONTENT_TYPE: req.headers["content-type"] ?? "", GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
            },
        });
        req.pipe(cgi.stdin);
        const chunks: Buffer[] = [];
        cgi.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
        cgi.on("close", () => {
            const output = Buffer.concat(chunks);
            const split = output.indexOf("\r\n\r\n");
            const headers = Object.fromEntries(output.subarray(0, split).toString().split("\r\n").map((line) => {
                const colon = line.indexOf(":");
                return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
            }));
            const status = Number(String(headers.Status ?? "200").split(" ")[0]);
            delete headers.Status;
            res.writeHead(status, headers).end(output.subarray(split + 4));
        });
    });
}

describe("source.repo with credentials", () => {
    let server: http.Server;
    let base: string;
    let repoDir: string;
    let calls: string;

    before(async () => {
        const upstream = createUpstreamRepo();
        repoDir = upstream.dir;
        server = gitServer(path.dirname(repoDir));
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        base = `127.0.0.1:${(server.address() as AddressInfo).port}/${path.basename(repoDir)}`;
        // A git on PATH that records every command line, then runs the real one.
        const bin = tempDir("git-argv");
        calls = path.join(bin, "argv.log");
        fs.writeFileSync(path.join(bin, "git"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexec '${REAL_GIT}' "$@"\n`, { mode: 0o755 });
        process.env.PATH = `${bin}:${process.env.PATH}`;
    });

    after(() => {
        server?.close();
        process.env.PATH = process.env.PATH!.split(":").slice(1).join(":");
    });

    test("splits user and password (URL-encoded) from an http(s) URL, and leaves other URLs alone", () => {
        assert.deepEqual(withoutCredentials("https://bot:p%40ss%3Aword@git.example.org/calendars.git"),
            { url: "https://git.example.org/calendars.git", username: "bot", password: "p@ss:word" });
        assert.deepEqual(withoutCredentials("https://ghp_token@github.com/x/y.git"), { url: "https://github.com/x/y.git", username: "ghp_token", password: "" });
        assert.deepEqual(withoutCredentials("https://bot:pa:ss:@git.example.org/x.git"), { url: "https://git.example.org/x.git", username: "bot", password: "pa:ss:" },
            "a password's own colons, not URL-encoded");
        for (const url of ["https://github.com/x/y.git", "git@github.com:x/y.git", "ssh://git@host/y.git", "file:///srv/y"]) {
            assert.deepEqual(withoutCredentials(url), { url });
        }
    });

    test("fetches with them, and no git command line holds them", async () => {
        fs.writeFileSync(calls, "");
        const repo = `http://${USER}:${encodeURIComponent(PASSWORD)}@${base}`;
        const checkout = await fetchSource({ repo, ref: "main", cacheDir: tempDir("cache") });
        assert.match(checkout.commit, /^[0-9a-f]{40}$/);
        const argv = fs.readFileSync(calls, "utf8");
        assert.match(argv, new RegExp(`ls-remote -- http://${base.replaceAll(".", "\\.")} `), "the URL without them");
        assert.ok(!argv.includes("s3cret") && !argv.includes(encodeURIComponent(PASSWORD)), argv);
    });

    test("a git that quotes URLs with credentials in its message (an older git, a url.insteadOf that adds them): the message keeps the URLs, not the credentials", async () => {
        const bin = tempDir("git-quoting");
        fs.writeFileSync(path.join(bin, "git"), `#!/bin/sh
echo "warning: redirecting to HTTPS://bot:tok3n@mirror.example.org/x.git/" >&2
echo "fatal: unable to access 'http://deploy:tok3n@git.example.org/x.git/': The requested URL returned error: 403" >&2
exit 128
`, { mode: 0o755 });
        const before = process.env.PATH;
        process.env.PATH = `${bin}:${before}`;
        try {
            await assert.rejects(fetchSource({ repo: "http://git.example.org/x.git", ref: "main", cacheDir: tempDir("cache") }), (error: Error) => {
                assert.ok(error instanceof SourceError);
                assert.ok(error.message.includes("warning: redirecting to HTTPS://mirror.example.org/x.git/\n" +
                    "fatal: unable to access 'http://git.example.org/x.git/': The requested URL returned error: 403"), error.message);
                assert.ok(!/tok3n|bot|deploy/.test(error.message), error.message);
                return true;
            });
        } finally {
            process.env.PATH = before;
        }
    });

    test("wrong ones fail naming the URL without them", async () => {
        const repo = `http://${USER}:wrong-password-123@${base}`;
        await assert.rejects(fetchSource({ repo, ref: "main", cacheDir: tempDir("cache") }), (error: Error) => {
            assert.ok(error instanceof SourceError);
            assert.match(error.message, new RegExp(`could not read source.repo http://${base.replaceAll(".", "\\.")}: `));
            assert.ok(!error.message.includes("wrong-password-123"), error.message);
            return true;
        });
    });
});
