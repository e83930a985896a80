// Stand-ins the scenarios create: the Calendars source (a git repository on disk
// that the program fetches and builds exactly as it does upstream's) and the parts
// of a Messages installation (its network, its PostgreSQL, the Calendars backend).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { docker, exists, psql, removeAll, waitHealthy } from "./docker";
import { e2eEnvironment, ROOT } from "./environment";

const FIXTURES = path.join(ROOT, "e2e", "fixtures");

function git(cwd: string, ...args: string[]): string {
    return execFileSync("git", args, {
        cwd,
        encoding: "utf8",
        env: { ...process.env, GIT_AUTHOR_NAME: "e2e", GIT_AUTHOR_EMAIL: "e2e@localhost", GIT_COMMITTER_NAME: "e2e", GIT_COMMITTER_EMAIL: "e2e@localhost" },
    }).trim();
}

function copyTree(from: string, to: string, transform: (file: string, text: string) => string): void {
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
        const source = path.join(from, entry.name);
        const target = path.join(to, entry.name);
        if (entry.isDirectory()) {
            fs.mkdirSync(target, { recursive: true });
            copyTree(source, target, transform);
        } else {
            fs.writeFileSync(target, transform(source, fs.readFileSync(source, "utf8")), { mode: fs.statSync(source).mode });
        }
    }
}

/**
 * The Calendars source the program fetches, as a git repository on disk: the stand-in
 * of fixtures/caldav-standin, or (E2E_FIXTURES=upstream) a clone of E2E_UPSTREAM_REPO at
 * E2E_UPSTREAM_REF. Either way branch main is the version under test, tagged v0.1.0
 * unless upstream has that tag, and scenarios can commit on top of it.
 */
export class CalendarsSource {
    readonly url: string;

    private constructor(readonly dir: string) {
        this.url = `file://${dir}`;
    }

    static create(): CalendarsSource {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "calendars-source-"));
        if (e2eEnvironment().fixtures === "upstream") {
            git(dir, "clone", "--quiet", "--branch", process.env.E2E_UPSTREAM_REF as string, process.env.E2E_UPSTREAM_REPO as string, ".");
            git(dir, "checkout", "--quiet", "-B", "main");
        } else {
            git(dir, "init", "--quiet", "--initial-branch=main");
            copyTree(path.join(FIXTURES, "caldav-standin"), dir, (_file, text) => text.replaceAll("@PHP_IMAGE@", e2eEnvironment().phpImage));
            git(dir, "add", "--all");
            git(dir, "commit", "--quiet", "--message", "stand-in CalDAV server");
        }
        if (!git(dir, "tag", "--list", "v0.1.0")) {
            git(dir, "tag", "--annotate", "v0.1.0", "--message", "v0.1.0");
        }
        // As GitHub does: any commit of the history can be fetched by its SHA (source.ref).
        git(dir, "config", "uploadpack.allowReachableSHA1InWant", "true");
        return new CalendarsSource(dir);
    }

    head(): string {
        return git(this.dir, "rev-parse", "HEAD");
    }

    /** Commits `files` (paths relative to the repository) on main; returns the new commit. */
    commit(message: string, files: Record<string, string>): string {
        for (const [file, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(this.dir, file)), { recursive: true });
            fs.writeFileSync(path.join(this.dir, file), text);
        }
        git(this.dir, "add", "--all");
        git(this.dir, "commit", "--quiet", "--message", message);
        return this.head();
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

export interface MessagesOptions {
    network: string;
    subnet: string;
    backendIp: string;
}

/**
 * What a Messages installation brings, created outside Pulumi as an operator finds it:
 * the network, PostgreSQL under the alias `postgresql` with an admin role `messages`
 * (CREATEDB and CREATEROLE, not superuser) and, as in Messages' compose file, no port
 * published on the host; and a recorder at the backend's fixed IP.
 */
export class MessagesStandin {
    readonly postgres: string;
    readonly backend: string;
    readonly adminPassword = "messages-admin-e2e";

    constructor(readonly options: MessagesOptions, prefix = "e2e-messages") {
        this.postgres = `${prefix}-postgresql`;
        this.backend = `${prefix}-backend`;
    }

    async start(): Promise<void> {
        const { network, subnet, backendIp } = this.options;
        docker("network", "create", "--driver", "bridge", "--subnet", subnet, network);
        docker("run", "--detach", "--name", this.postgres, "--network", network, "--network-alias", "postgresql",
            "--env", "POSTGRES_USER=postgres", "--env", "POSTGRES_PASSWORD=superuser-e2e",
            "--health-cmd", "pg_isready -h 127.0.0.1 -U postgres -d postgres", "--health-interval", "1s",
            e2eEnvironment().postgresImage);
        docker("run", "--detach", "--name", this.backend, "--network", network, "--ip", backendIp,
            "--network-alias", "backend",
            "--volume", `${path.join(FIXTURES, "messages", "recorder.php")}:/srv/recorder.php:ro`,
            e2eEnvironment().phpImage, "php", "-S", "0.0.0.0:8000", "/srv/recorder.php");
        await waitHealthy(this.postgres);
        psql(this.postgres, "postgres", "postgres",
            `CREATE ROLE messages LOGIN CREATEDB CREATEROLE PASSWORD '${this.adminPassword}'`);
    }

    /** Requests the backend stand-in received, oldest first. */
    requests(): { method: string; path: string; headers: Record<string, string> }[] {
        return docker("logs", this.backend).split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
    }

    remove(): void {
        removeAll({ containers: [this.postgres, this.backend], networks: [this.options.network] });
    }
}

/**
 * What an attach stack finds on the host: a Messages installation on messages_internal
 * (172.29.0.0/16, backend at 172.29.0.30) and a CalDAV image built outside Pulumi from
 * the Calendars source and tagged `image`, as an operator pins a release.
 */
export class AttachHost {
    static readonly network = { name: "messages_internal", subnet: "172.29.0.0/16", backendIp: "172.29.0.30" };

    private constructor(readonly source: CalendarsSource, readonly messages: MessagesStandin, readonly image: string) {}

    static async start(image: string): Promise<AttachHost> {
        const source = CalendarsSource.create();
        docker("build", "--quiet", "--tag", image, `${source.dir}/src/caldav`);
        const messages = new MessagesStandin({ ...AttachHost.network, network: AttachHost.network.name });
        const host = new AttachHost(source, messages, image);
        await messages.start();
        return host;
    }

    /**
     * Config of an attach stack on this host: the pinned image. The provider finds
     * Messages' PostgreSQL by its name on the network, as Pulumi.prod.yaml does.
     */
    stackConfig(): Record<string, unknown> {
        return {
            prebuiltImage: this.image,
            network: { create: false },
            postgres: { adminUser: "messages" },
            // pg_dump for the dump before image changes: this host's PostgreSQL image (no registry here).
            backup: { image: e2eEnvironment().postgresImage },
        };
    }

    remove(): void {
        this.messages.remove();
        if (exists("image", this.image)) {
            docker("image", "rm", this.image);
        }
        this.source.remove();
    }
}
