#!/usr/bin/env node
// Compares the names a provider binary built by build.sh serves with the names
// the installed npm SDK sends, so that a glue ProviderInfo that maps a token or
// a property differently is caught before an e2e run fails obscurely.
//
// Usage: node e2e/toolchain/check-sdk-names.js <bin dir> <name> [<name>...]
//   e.g. node e2e/toolchain/check-sdk-names.js "$bin" random postgresql docker
//
// For each <name>, the schema is read from the binary with
// `<bin dir>/pulumi package get-schema <bin dir>/pulumi-resource-<name>` and
// compared with node_modules/@pulumi/<name>/*.js (the generated SDK):
// resource and function tokens, provider config, resource inputs, resource
// state properties, secret outputs. Exit status 1 on any mismatch.
// Tokens listed as `unsupported = <token> ...` in
// e2e/toolchain/providers/<name>/toolchain.conf (deliberately not served by
// the glue) are reported and skipped.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");

const [binDir, ...names] = process.argv.slice(2);
if (!binDir || names.length === 0) {
  console.error("usage: check-sdk-names.js <bin dir> <name> [<name>...]");
  process.exit(2);
}
const repo = path.resolve(__dirname, "../..");

function getSchema(name) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "check-sdk-names-"));
  try {
    const out = execFileSync(
      path.join(binDir, "pulumi"),
      ["package", "get-schema", path.join(binDir, `pulumi-resource-${name}`)],
      {
        env: { ...process.env, PULUMI_HOME: home, PULUMI_SKIP_UPDATE_CHECK: "true" },
        maxBuffer: 1 << 30,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    return JSON.parse(out.toString());
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// What the generated JS SDK sends: per resource token, its args (inputs),
// its state (outputs) and its additionalSecretOutputs; function tokens.
function readSdk(name) {
  const dir = path.join(repo, "node_modules", "@pulumi", name);
  const resources = {};
  const functions = new Set();
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== "node_modules" && e.name !== "types") walk(p);
        continue;
      }
      if (!e.name.endsWith(".js")) continue;
      const src = fs.readFileSync(p, "utf8");
      for (const m of src.matchAll(/invoke(?:Output|Single|SingleOutput)?\("([^"]+)"/g)) functions.add(m[1]);
      const tok = /static __pulumiType = '([^']+)'/.exec(src);
      if (!tok) continue;
      const inputs = new Set(), state = new Set(), outs = new Set();
      for (const m of src.matchAll(/resourceInputs\["([^"]+)"\] = (.*);/g)) {
        if (/^state\?*\./.test(m[2])) state.add(m[1]);
        else if (/undefined \/\*out\*\//.test(m[2])) outs.add(m[1]);
        else inputs.add(m[1]);
      }
      const secret = /additionalSecretOutputs: \[([^\]]*)\]/.exec(src);
      resources[tok[1]] = {
        file: path.relative(repo, p),
        inputs,
        state: state.size ? state : new Set([...inputs, ...outs]),
        secrets: new Set(secret ? [...secret[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]) : []),
      };
    }
  };
  walk(dir);
  return { resources, functions };
}

function unsupportedTokens(name) {
  const conf = path.join(__dirname, "providers", name, "toolchain.conf");
  if (!fs.existsSync(conf)) return new Set();
  const toks = new Set();
  for (const line of fs.readFileSync(conf, "utf8").split("\n")) {
    const m = /^\s*unsupported\s*=\s*([^#]*)/.exec(line);
    if (m) for (const t of m[1].trim().split(/\s+/)) if (t) toks.add(t);
  }
  return toks;
}

let failures = 0;
const fail = (msg) => { failures++; console.error(`  MISMATCH ${msg}`); };

for (const name of names) {
  console.error(`== ${name}: pulumi-resource-${name} vs node_modules/@pulumi/${name}`);
  const schema = getSchema(name);
  const sdk = readSdk(name);
  const skip = unsupportedTokens(name);
  for (const tok of skip) console.error(`  skipped ${tok}: declared unsupported in providers/${name}/toolchain.conf`);
  let nres = 0;
  for (const [tok, r] of Object.entries(sdk.resources)) {
    if (skip.has(tok)) continue;
    const isProvider = !tok.includes(":");
    const spec = isProvider ? schema.provider : (schema.resources || {})[tok];
    if (!spec) { fail(`${tok} (${r.file}): no such resource in the provider schema`); continue; }
    nres++;
    const specInputs = new Set(Object.keys(spec.inputProperties || {}));
    const specProps = new Set(Object.keys(spec.properties || {}));
    for (const i of r.inputs) if (!specInputs.has(i)) fail(`${tok}: SDK input "${i}" is not an input of the provider`);
    for (const i of specInputs) if (!r.inputs.has(i)) fail(`${tok}: provider input "${i}" is not sent by the SDK`);
    if (!isProvider) {
      for (const s of r.state) if (!specProps.has(s)) fail(`${tok}: SDK state property "${s}" is not a provider output`);
      for (const s of specProps) if (!r.state.has(s)) fail(`${tok}: provider output "${s}" is unknown to the SDK`);
    }
    for (const s of r.secrets) {
      const p = (spec.properties || {})[s] || (spec.inputProperties || {})[s];
      if (p && !p.secret) fail(`${tok}: "${s}" is secret in the SDK but not in the provider schema`);
    }
  }
  for (const tok of Object.keys(schema.resources || {})) {
    if (!sdk.resources[tok]) fail(`${tok}: provider resource unknown to the SDK`);
  }
  for (const fn of sdk.functions) {
    if (skip.has(fn)) continue;
    if (!(schema.functions || {})[fn]) fail(`function ${fn}: not in the provider schema`);
  }
  console.error(`  checked ${nres} resources (incl. provider), ${sdk.functions.size} functions`);
}
if (failures) {
  console.error(`${failures} mismatch(es)`);
  process.exit(1);
}
console.error("all names match");
