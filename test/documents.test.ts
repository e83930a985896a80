// The documents name only what exists: every npm script, configuration key, stack file,
// resource type (or type::name) and container or volume name that README.md,
// CONTRIBUTING.md, CHANGELOG.md, SECURITY.md, docs/*.md and e2e/README.md mention, in
// prose or in code, is one that package.json, the program (components/config.ts, and
// what it registers for the committed stacks) and the repository have. Each test's name
// says how many references it checked.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { CONFIG_KEYS } from "../components/config";
import { localSource } from "./fixtures";
import { evaluateOnce, Recorded, stackFileConfig, withConfig } from "./harness";

const ROOT = path.join(__dirname, "..");
const DOCUMENTS = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "SECURITY.md", "e2e/README.md",
    ...fs.readdirSync(path.join(ROOT, "docs")).filter((file) => file.endsWith(".md")).map((file) => `docs/${file}`)];
const STACKS = fs.readdirSync(ROOT).map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1]).filter((stack): stack is string => stack !== undefined);

interface Reference {
    file: string;
    line: number;
    kind: "npm script" | "config key" | "stack file" | "resource" | "container";
    /** As written, e.g. `backup.*`, `calendars-caldav-<stack>-dump`. */
    text: string;
}

/** `code` spans and fenced blocks, where commands and names are written. */
function codeOf(text: string): { code: string; offset: number }[] {
    const parts: { code: string; offset: number }[] = [];
    for (const match of text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
        parts.push({ code: match[1], offset: (match.index ?? 0) + match[0].indexOf(match[1]) });
    }
    const withoutBlocks = text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, (block) => " ".repeat(block.length));
    for (const match of withoutBlocks.matchAll(/`([^`\n]+)`/g)) {
        parts.push({ code: match[1], offset: (match.index ?? 0) + 1 });
    }
    return parts;
}

const CONFIG_GROUPS = [...new Set(CONFIG_KEYS.filter((key) => key.includes(".")).map((key) => key.split(".")[0]))];
const KEY_SHAPE = new RegExp(`^(?:${CONFIG_GROUPS.join("|")})\\.(?:[A-Za-z]+|\\*)$`);

export function referencesIn(file: string, text: string): Reference[] {
    const references: Reference[] = [];
    const lineOf = (offset: number) => text.slice(0, offset).split("\n").length;
    const add = (kind: Reference["kind"], reference: string, offset: number) => references.push({ file, line: lineOf(offset), kind, text: reference });
    // Prose and code: `npm run X`, a line break allowed between the words.
    for (const match of text.matchAll(/\bnpm\s+run\s+(?:(?:-s|--silent)\s+)?([a-z][\w:-]*)/g)) {
        add("npm script", match[1], match.index ?? 0);
    }
    for (const match of text.matchAll(/\bcalendars-caldav:([A-Za-z]\w*(?:\.\w+)*)/g)) {
        add("config key", match[1], match.index ?? 0);
    }
    for (const match of text.matchAll(/\bPulumi\.([\w-]+)\.yaml\b/g)) {
        add("stack file", `Pulumi.${match[1]}.yaml`, match.index ?? 0);
    }
    for (const match of text.matchAll(/\b[a-z][\w-]*:[a-z][\w-]*(?:\/[a-z]\w*)?:[A-Z]\w*(?:::[\w-]+)?/g)) {
        add("resource", match[0], match.index ?? 0);
    }
    const names = `(?:${["<stack>", ...STACKS].join("|")})`;
    for (const match of text.matchAll(new RegExp(`\\bcalendars-caldav-${names}(?:-[a-z]+)?\\b`, "g"))) {
        add("container", match[0], match.index ?? 0);
    }
    for (const { code, offset } of codeOf(text)) {
        if (KEY_SHAPE.test(code)) {
            add("config key", code, offset);
        }
        // `pulumi config set [--path|--secret] KEY`, KEY perhaps quoted; upper-case words are placeholders.
        for (const match of code.matchAll(/\bconfig set\s+(?:--(?:path|secret)\s+)*'?([A-Za-z]\w*(?:\.\w+)*)'?/g)) {
            if (!/^[A-Z_]+$/.test(match[1])) {
                add("config key", match[1], offset + (match.index ?? 0));
            }
        }
    }
    return references;
}

const REFERENCES = DOCUMENTS.flatMap((file) => referencesIn(file, fs.readFileSync(path.join(ROOT, file), "utf8")));
const ofKind = (kind: Reference["kind"]) => REFERENCES.filter((reference) => reference.kind === kind);

type Kind = Reference["kind"];
const KINDS: Kind[] = ["npm script", "config key", "stack file", "resource", "container"];

/** What the program registers for each committed stack, as the stack files configure it. */
async function registered(): Promise<Map<string, Recorded[]>> {
    const byStack = new Map<string, Recorded[]>();
    for (const stack of STACKS) {
        const config = withConfig(stackFileConfig(stack), { source: localSource() });
        const secrets: Record<string, string> = stack === "dev" ? {} : { postgresAdminPassword: "admin-secret" };
        const evaluation = await evaluateOnce(config, secrets, { stack, networks: { messages_internal: { subnet: "172.29.0.0/16" } } });
        assert.ifError(evaluation.error);
        byStack.set(stack, evaluation.resources);
    }
    return byStack;
}

/** For each kind, whether a reference names something that exists. */
async function existence(): Promise<Record<Kind, (reference: string) => boolean>> {
    const scripts = Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts);
    const byStack = await registered();
    const resources = [...byStack.values()].flat();
    const names = new Map([...byStack].map(([stack, list]) => [stack, list
        .filter((resource) => ["docker:index/container:Container", "docker:index/volume:Volume"].includes(resource.type))
        .map((resource) => String(resource.inputs.name))]));
    const templates = [...names].flatMap(([stack, list]) => list.map((name) => name.replace(`calendars-caldav-${stack}`, "calendars-caldav-<stack>")));
    return {
        "npm script": (name) => scripts.includes(name),
        "config key": (key) => key.endsWith(".*")
            ? CONFIG_KEYS.some((known) => known.startsWith(key.slice(0, -1)))
            : CONFIG_KEYS.includes(key) || CONFIG_GROUPS.includes(key),
        "stack file": (file) => fs.existsSync(path.join(ROOT, file)),
        "resource": (reference) => {
            const [type, name] = reference.split("::");
            return resources.some((resource) => resource.type === type && (name === undefined || resource.name === name));
        },
        "container": (reference) => {
            const stack = /^calendars-caldav-(<stack>|[^-]+)/.exec(reference)?.[1] as string;
            return stack === "<stack>" ? templates.includes(reference) : (names.get(stack) ?? []).includes(reference);
        },
    };
}

const stale = (references: Reference[], exists: (reference: string) => boolean) =>
    references.filter((reference) => !exists(reference.text)).map((reference) => `${reference.file}:${reference.line}: ${reference.kind} ${reference.text}`);

describe("documents: what they name exists", () => {
    test(`${REFERENCES.length} references in ${DOCUMENTS.length} documents: each kind is found, so none is checked vacuously`, () => {
        for (const kind of KINDS) {
            assert.ok(ofKind(kind).length > 0, `no ${kind} found in ${DOCUMENTS.join(", ")}`);
        }
        process.stderr.write(`# documents: ${REFERENCES.length} references checked (${KINDS.map((kind) => `${ofKind(kind).length} ${kind}`).join(", ")})\n`);
    });

    const descriptions: Record<Kind, string> = {
        "npm script": "are scripts of package.json",
        "config key": "are keys the program reads (a group.* names at least one)",
        "stack file": "are committed stack files",
        "resource": "are resource types (and type::name) the program registers",
        "container": "are container and volume names the program gives, <stack> standing for any stack",
    };
    for (const kind of KINDS) {
        test(`${ofKind(kind).length} ${kind} references ${descriptions[kind]}`, async () => {
            assert.deepEqual(stale(ofKind(kind), (await existence())[kind]), []);
        });
    }

    test("a stale reference of each kind is reported, with its document and line", async () => {
        const exists = await existence();
        const text = "`npm run devup`, `postgres.adminhost`, `caldav.*s`, Pulumi.qa.yaml,\n" +
            "random:index/randomId:RandomId::guard, calendars:caldav:Backup, calendars-caldav-<stack>-dumps, calendars-caldav-dev-dump";
        const references = referencesIn("old.md", text);
        assert.deepEqual(KINDS.flatMap((kind) => stale(references.filter((reference) => reference.kind === kind), exists[kind])), [
            "old.md:1: npm script devup",
            "old.md:1: config key postgres.adminhost",
            "old.md:1: stack file Pulumi.qa.yaml",
            "old.md:2: resource random:index/randomId:RandomId::guard",
            "old.md:2: resource calendars:caldav:Backup",
            "old.md:2: container calendars-caldav-<stack>-dumps",
            "old.md:2: container calendars-caldav-dev-dump",
        ]);
    });
});

describe("documents: the reference finder", () => {
    test("finds each kind in prose and code, and skips placeholders and file names", () => {
        const text = [
            "Run `npm run -s dev:pulumi` or npm run\nlint; `pulumi config set --path 'postgres.host' db` and",
            "`pulumi config set --secret KEY`; `backup.*`, `/run/secrets/caldav.pgpass`, `components/source.ts`.",
            "```sh\npulumi config set --secret postgresAdminPassword --stack prod\n```",
            "Pulumi.prod.yaml, Pulumi.<stack>.yaml, random:index/randomId:RandomId::destroy-guard, calendars:caldav:Server,",
            "calendars-caldav-<stack>-dump, calendars-caldav-prod, calendars-caldav-e2e, calendars-caldav:network.name.",
        ].join("\n");
        assert.deepEqual(referencesIn("x.md", text).map(({ kind, text: reference, line }) => `${line} ${kind} ${reference}`).sort(), [
            "1 npm script dev:pulumi",
            "1 npm script lint",
            "2 config key postgres.host",
            "3 config key backup.*",
            "5 config key postgresAdminPassword",
            "7 resource calendars:caldav:Server",
            "7 resource random:index/randomId:RandomId::destroy-guard",
            "7 stack file Pulumi.prod.yaml",
            "8 config key network.name",
            "8 container calendars-caldav-<stack>-dump",
            "8 container calendars-caldav-prod",
        ]);
    });
});
