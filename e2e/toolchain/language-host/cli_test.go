package main

// End-to-end tests: the real Pulumi CLI of the e2e toolchain runs small
// programs through this host, built from this directory, with the
// repository's node_modules/@pulumi/pulumi. Skipped, saying why, when the
// toolchain is not built (e2e/toolchain/build.sh), node is missing or the
// repository's node_modules is not installed (npm ci).
//
// Each test uses a file backend and a PULUMI_HOME in a temp dir, a passphrase
// secrets provider, no update check and no plugin downloads: the only
// network traffic is between the CLI, the host, node and the providers on
// 127.0.0.1.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const cliTimeout = 5 * time.Minute

// cliEnv is what the CLI tests share: set up once by requireCLI.
type cliEnv struct {
	repo       string // the repository root
	toolchain  string // the toolchain's bin dir (pulumi, pulumi-resource-*)
	bin        string // pulumi (link to the toolchain's) + pulumi-language-nodejs built from this directory
	pulumiVers string // PULUMI_VERSION of versions.env
}

var (
	cliOnce    sync.Once
	cli        *cliEnv
	cliSkip    string
	cliTempDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliTempDir != "" {
		os.RemoveAll(cliTempDir)
	}
	os.Exit(code)
}

// requireCLI returns the shared CLI environment, or skips the test.
func requireCLI(t *testing.T) *cliEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the Pulumi CLI (skipped with -short)")
	}
	cliOnce.Do(func() {
		var err error
		cli, cliSkip, err = setupCLI()
		if err != nil {
			cliSkip = "" // a real failure, reported below
			cli = nil
			t.Fatalf("setting up the CLI tests: %v", err)
		}
	})
	if cliSkip != "" {
		t.Skip(cliSkip)
	}
	if cli == nil {
		t.Fatal("the CLI test set-up failed earlier (see the first failing test)")
	}
	return cli
}

// setupCLI finds the toolchain with build.sh (--check first: it never
// builds here), builds this host with the ldflags build.sh uses, and puts
// both in a temp bin dir. It returns a reason to skip, or an error when
// something that should work does not.
func setupCLI() (*cliEnv, string, error) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		return nil, "", err
	}
	buildSh := filepath.Join(repo, "e2e/toolchain/build.sh")
	if _, err := os.Stat(buildSh); err != nil {
		return nil, "", fmt.Errorf("%s not found: run the tests from e2e/toolchain/language-host", buildSh)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return nil, "node is not on PATH: the CLI tests run Node.js programs", nil
	}
	if _, err := os.Stat(filepath.Join(repo, "node_modules/@pulumi/pulumi/cmd/run/index.js")); err != nil {
		return nil, fmt.Sprintf("%s/node_modules/@pulumi/pulumi is not installed: run `npm ci` in %s", repo, repo), nil
	}
	check := exec.Command("bash", buildSh, "--check")
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("the e2e toolchain is not built or out of date: run e2e/toolchain/build.sh "+
			"(it rebuilds only what changed). build.sh --check said: %s", strings.TrimSpace(string(out))), nil
	}
	out, err := exec.Command("bash", buildSh).Output() // up to date: prints the bin dir, builds nothing
	if err != nil {
		return nil, "", fmt.Errorf("build.sh (after --check succeeded): %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	toolchain := lines[len(lines)-1]
	if _, err := os.Stat(filepath.Join(toolchain, "pulumi")); err != nil {
		return nil, "", fmt.Errorf("build.sh printed %q, which has no pulumi: %w", toolchain, err)
	}
	pulumiVers, err := versionsEnv(filepath.Join(repo, "e2e/toolchain/versions.env"), "PULUMI_VERSION")
	if err != nil {
		return nil, "", err
	}

	cliTempDir, err = os.MkdirTemp("", "language-host-test-")
	if err != nil {
		return nil, "", err
	}
	bin := filepath.Join(cliTempDir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return nil, "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(bin, "pulumi-language-nodejs"),
		"-ldflags", "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v"+pulumiVers, ".")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The CLI looks for its language hosts on PATH and next to itself; with
	// both in one directory there is no "using ... from $PATH" warning.
	// A hard link keeps os.Executable() in this directory (a symbolic link
	// would resolve to the toolchain's).
	if err := os.Link(filepath.Join(toolchain, "pulumi"), filepath.Join(bin, "pulumi")); err != nil {
		if err := copyFile(filepath.Join(toolchain, "pulumi"), filepath.Join(bin, "pulumi")); err != nil {
			return nil, "", err
		}
	}
	return &cliEnv{repo: repo, toolchain: toolchain, bin: bin, pulumiVers: pulumiVers}, "", nil
}

func versionsEnv(path, key string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			return strings.Trim(v, `"'`), nil
		}
	}
	return "", fmt.Errorf("%s does not set %s", path, key)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// project is a Pulumi project in a temp dir with its own state and home.
type project struct {
	t   *testing.T
	cli *cliEnv
	dir string
	env []string
}

// newProject writes files (path → content) into a new project directory
// and links node_modules/<pkg> to the repository's for each of links
// (always @pulumi/pulumi).
func newProject(t *testing.T, c *cliEnv, files map[string]string, links ...string) *project {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "project")
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	for _, pkg := range append([]string{"@pulumi/pulumi"}, links...) {
		link := filepath.Join(dir, "node_modules", pkg)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(c.repo, "node_modules", pkg), link); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		// Nothing of the caller's Pulumi set-up (backend, tokens, home).
		if !strings.HasPrefix(kv, "PULUMI_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PATH="+c.bin+string(os.PathListSeparator)+c.toolchain+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_HOME="+filepath.Join(root, "home"),
		"PULUMI_BACKEND_URL=file://"+filepath.Join(root, "state"),
		"PULUMI_CONFIG_PASSPHRASE=language-host-test",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
	)
	if err := os.MkdirAll(filepath.Join(root, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &project{t: t, cli: c, dir: dir, env: env}
	p.mustRun("stack", "init", "test", "--non-interactive")
	return p
}

// run runs pulumi in the project directory and returns its combined output.
func (p *project) run(args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.cli.bin, "pulumi"), args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	p.t.Logf("pulumi %s (%.1fs): %v", strings.Join(args, " "), time.Since(start).Seconds(), err)
	return string(out), err
}

func (p *project) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("pulumi %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *project) up() (string, error) {
	return p.run("up", "--yes", "--skip-preview", "--non-interactive", "--color=never")
}

func (p *project) outputs(showSecrets bool) map[string]any {
	p.t.Helper()
	args := []string{"stack", "output", "--json"}
	if showSecrets {
		args = append(args, "--show-secrets")
	}
	out := p.mustRun(args...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		p.t.Fatalf("stack output: %v\n%s", err, out)
	}
	return m
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output does not contain %q:\n%s", w, out)
		}
	}
}

func mustNotContain(t *testing.T, out string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(out, u) {
			t.Errorf("output contains %q:\n%s", u, out)
		}
	}
}

const jsProgram = `const pulumi = require("@pulumi/pulumi");
const config = new pulumi.Config();
console.log("stdout-marker from the program");
pulumi.log.info("dry-run=" + pulumi.runtime.isDryRun());
exports.greeting = "hello " + config.require("name");
exports.password = config.requireSecret("password");
exports.passwordKeyIsSecret = pulumi.runtime.isConfigSecret(pulumi.getProject() + ":password");
exports.configKeys = Object.keys(JSON.parse(process.env.PULUMI_CONFIG)).sort();
exports.project = pulumi.getProject();
exports.stack = pulumi.getStack();
exports.organization = pulumi.getOrganization();
exports.cwd = process.cwd();
exports.argv = process.argv.slice(2);
`

func TestCLIUpJavaScript(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml":  "name: lhtest\nruntime: nodejs\n",
		"package.json": `{"name": "lhtest", "main": "index.js"}`,
		"index.js":     jsProgram,
	})
	p.mustRun("config", "set", "name", "world")
	p.mustRun("config", "set", "--secret", "password", "s3cr3t-value")

	out := p.mustRun("preview", "--non-interactive", "--color=never")
	mustContain(t, out, "stdout-marker from the program", "dry-run=true")
	mustNotContain(t, out, "warning", "s3cr3t-value")

	out, err := p.up()
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	mustContain(t, out, "stdout-marker from the program", "dry-run=false")
	mustNotContain(t, out, "warning", "error", "s3cr3t-value")

	got := p.outputs(true)
	cwd, _ := filepath.EvalSymlinks(p.dir)
	for k, want := range map[string]any{
		"greeting":            "hello world",
		"password":            "s3cr3t-value",
		"passwordKeyIsSecret": true,
		"configKeys":          []any{"lhtest:config:name", "lhtest:config:password"},
		"project":             "lhtest",
		"stack":               "test",
		"organization":        "organization", // the file backend's
		"cwd":                 cwd,
		"argv":                []any{},
	} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("output %s = %v, want %v", k, got[k], want)
		}
	}
	if pw := p.outputs(false)["password"]; pw != "[secret]" {
		t.Errorf("password without --show-secrets = %v, want [secret]", pw)
	}
}

func TestCLIProgramErrorIsShownOnce(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml":  "name: lhtest\nruntime: nodejs\n",
		"package.json": `{"name": "lhtest", "main": "index.js"}`,
		// What the project's components throw (pulumi.RunError: message, no stack).
		"index.js": `const pulumi = require("@pulumi/pulumi");
throw new pulumi.RunError("config-problem-marker: postgres.port must be a number");
`,
	})
	out, err := p.up()
	if err == nil {
		t.Fatalf("up succeeded:\n%s", out)
	}
	// The program reported the error (exit 32): the CLI bails with that
	// message only, once in the diagnostics (the progress display echoes
	// the first line of every diagnostic as it comes, as with any host).
	if n := strings.Count(diagnostics(out), "config-problem-marker"); n != 1 {
		t.Errorf("the error message appears %d times in the diagnostics, want 1:\n%s", n, out)
	}
	mustNotContain(t, out, "non-zero exit code", "unhandled error")
}

// diagnostics returns the "Diagnostics:" section of the CLI's output.
func diagnostics(out string) string {
	_, after, ok := strings.Cut(out, "\nDiagnostics:\n")
	if !ok {
		return ""
	}
	for _, end := range []string{"\nOutputs:\n", "\nResources:\n"} {
		if i := strings.Index(after, end); i >= 0 {
			after = after[:i]
		}
	}
	return after
}

func TestCLIProgramCrash(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml":  "name: lhtest\nruntime: nodejs\n",
		"package.json": `{"name": "lhtest", "main": "index.js"}`,
		"index.js": `process.stderr.write("crash-marker on stderr\n");
process.exit(3);
`,
	})
	out, err := p.up()
	if err == nil {
		t.Fatalf("up succeeded:\n%s", out)
	}
	mustContain(t, out, "crash-marker on stderr", "Program exited with non-zero exit code: 3")
}

func TestCLIMainAndNodeargs(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml": `name: lhtest
main: src/app.js
runtime:
  name: nodejs
  options:
    nodeargs: "--max-old-space-size=200 --title='lh test'"
`,
		// package.json's main is not used when Pulumi.yaml names the entry point.
		"package.json": `{"name": "lhtest", "main": "index.js"}`,
		"index.js":     `throw new Error("index.js must not run");`,
		"src/app.js": `const path = require("path");
exports.entry = path.basename(__filename);
exports.cwd = path.basename(process.cwd());
exports.execArgv = process.execArgv;
`,
	})
	if out, err := p.up(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	got := p.outputs(false)
	if got["entry"] != "app.js" || got["cwd"] != "src" {
		t.Errorf("entry %v in %v, want app.js in src (Pulumi.yaml main)", got["entry"], got["cwd"])
	}
	if fmt.Sprint(got["execArgv"]) != "[--max-old-space-size=200 --title=lh test]" {
		t.Errorf("node execArgv = %v, want the nodeargs runtime option", got["execArgv"])
	}
}

func TestCLITypeScript(t *testing.T) {
	c := requireCLI(t)
	files := map[string]string{
		"Pulumi.yaml": "name: lhtest\nruntime: nodejs\n",
		// As in the project: no Pulumi.yaml main, package.json's main is index.ts.
		"package.json":  `{"name": "lhtest", "main": "index.ts"}`,
		"tsconfig.json": `{"compilerOptions": {"strict": true, "target": "ES2022", "module": "commonjs", "moduleResolution": "node", "types": []}}`,
		"lib/greet.ts": `export interface Greeting { text: string; loud: boolean }
export function greet(name: string): Greeting { return { text: "typed hello " + name, loud: false }; }
`,
		"index.ts": `import * as pulumi from "@pulumi/pulumi";
import { greet, Greeting } from "./lib/greet";
const g: Greeting = greet(pulumi.getStack());
export const greeting: string = g.text;
`,
	}
	p := newProject(t, c, files)
	if out, err := p.up(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if got := p.outputs(false)["greeting"]; got != "typed hello test" {
		t.Errorf("greeting = %v", got)
	}

	// Type-checked, as the CLI runs TypeScript (unless transpile-only): a
	// type error fails the run, reported once by the program.
	writeFile(t, filepath.Join(p.dir, "index.ts"), `import { greet } from "./lib/greet";
const n: number = greet("x").text;
export const value = n;
`)
	out, err := p.up()
	if err == nil {
		t.Fatalf("up with a type error succeeded:\n%s", out)
	}
	if n := strings.Count(diagnostics(out), "TS2322"); n != 1 {
		t.Errorf("TS2322 appears %d times in the diagnostics, want 1:\n%s", n, out)
	}
	mustContain(t, out, "Unable to compile TypeScript")
	mustNotContain(t, out, "non-zero exit code")

	// The tsconfig runtime option: a project whose default tsconfig.json
	// rejects the program but the named one accepts it.
	writeFile(t, filepath.Join(p.dir, "Pulumi.yaml"),
		"name: lhtest\nruntime:\n  name: nodejs\n  options:\n    tsconfig: tsconfig.loose.json\n")
	writeFile(t, filepath.Join(p.dir, "tsconfig.loose.json"),
		`{"compilerOptions": {"strict": false, "noImplicitAny": false, "target": "ES2022", "module": "commonjs", "moduleResolution": "node", "types": []}}`)
	writeFile(t, filepath.Join(p.dir, "index.ts"), `function twice(x) { return x + x; }
export const value = twice("ab");
`)
	if out, err := p.up(); err != nil {
		t.Fatalf("up with tsconfig.loose.json: %v\n%s", err, out)
	}
	if got := p.outputs(false)["value"]; got != "abab" {
		t.Errorf("value = %v", got)
	}
}

func TestCLIRequiredPackagesAndProvider(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		// The provider binary comes from the toolchain as a project plugin
		// (no "from $PATH" warning); its version is the one the language host
		// reports from node_modules/@pulumi/random/package.json.
		"Pulumi.yaml": fmt.Sprintf(`name: lhtest
runtime: nodejs
plugins:
  providers:
    - name: random
      path: %s
`, c.toolchain),
		"package.json": `{"name": "lhtest", "main": "index.ts"}`,
		"index.ts": `import * as random from "@pulumi/random";
const s = new random.RandomString("s", { length: 16, special: false });
export const value = s.result;
`,
	}, "@pulumi/random")
	out, err := p.run("up", "--yes", "--skip-preview", "--non-interactive", "--color=never", "--logflow", "--logtostderr", "-v=7")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	// The engine asked this host for the program's plugins and got random.
	mustContain(t, out, "GetRequiredPackages(", "success: #versions=1")
	v, _ := p.outputs(true)["value"].(string)
	if len(v) != 16 {
		t.Errorf("RandomString result %q, want 16 characters", v)
	}
	state := p.mustRun("stack", "export")
	mustContain(t, state, `"type": "pulumi:providers:random"`, `"version": "4.21.2"`)
}

func TestCLIRunPluginTypeScriptProvider(t *testing.T) {
	c := requireCLI(t)
	// A resource provider written in TypeScript, run by the CLI through this
	// host's RunPlugin (a plugin directory with PulumiPlugin.yaml, no binary).
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml": `name: lhtest
runtime: nodejs
plugins:
  providers:
    - name: lhprov
      path: ./provider
`,
		"package.json": `{"name": "lhtest", "main": "index.js"}`,
		"index.js": `const pulumi = require("@pulumi/pulumi");
const thing = new pulumi.CustomResource("lhprov:index:Thing", "thing", { name: "x", made: undefined });
exports.made = thing.made;
`,
		"provider/PulumiPlugin.yaml": "runtime: nodejs\n",
		"provider/package.json":      `{"name": "lhprov", "main": "index.ts"}`,
		"provider/index.ts": `import * as provider from "@pulumi/pulumi/provider";
declare const process: { argv: string[] };
class ThingProvider implements provider.Provider {
    readonly version = "0.0.1";
    async create(_urn: string, inputs: any): Promise<provider.CreateResult> {
        return { id: "thing-1", outs: { ...inputs, made: "by the TypeScript provider" } };
    }
}
provider.main(new ThingProvider(), process.argv.slice(2));
`,
	})
	link := filepath.Join(p.dir, "provider/node_modules/@pulumi/pulumi")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(c.repo, "node_modules/@pulumi/pulumi"), link); err != nil {
		t.Fatal(err)
	}
	if out, err := p.up(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if got := p.outputs(false)["made"]; got != "by the TypeScript provider" {
		t.Errorf("made = %v", got)
	}
}

func TestCLIInstallDependencies(t *testing.T) {
	c := requireCLI(t)
	p := newProject(t, c, map[string]string{
		"Pulumi.yaml":       "name: lhtest\nruntime: nodejs\n",
		"package.json":      `{"name": "lhtest", "main": "index.js"}`,
		"package-lock.json": `{"name": "lhtest", "lockfileVersion": 3, "packages": {}}`,
		"index.js":          "exports.x = 1;\n",
	})
	// A fake npm first on PATH: `pulumi install` must not reach a registry.
	npmDir := t.TempDir()
	writeFile(t, filepath.Join(npmDir, "npm"), "#!/bin/sh\necho \"fake npm $*\"\necho fake-npm-stderr >&2\n")
	if err := os.Chmod(filepath.Join(npmDir, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, kv := range p.env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p.env[i] = "PATH=" + npmDir + string(os.PathListSeparator) + v
		}
	}
	out := p.mustRun("install")
	mustContain(t, out, "Installing dependencies...", "fake npm ci --loglevel=error --no-audit --no-fund",
		"fake-npm-stderr", "Finished installing dependencies")
}
