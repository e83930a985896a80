package main

// Unit tests: the host in-process behind a real gRPC server on 127.0.0.1,
// with fake `node` and `npm` scripts on PATH that record how they were
// started. No Pulumi CLI, no Node.js needed (cli_test.go runs real ones).

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// startHost serves h on 127.0.0.1 and returns a client.
func startHost(t *testing.T, h *host) pulumirpc.LanguageRuntimeClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return pulumirpc.NewLanguageRuntimeClient(conn)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeNode puts a `node` on PATH that answers `node -e <script> <module>`
// (module resolution) with /fake/<module>/index.js, unless the module is
// listed in FAKE_NODE_MISSING, and otherwise records its arguments, working
// directory and environment in $FAKE_NODE_LOG/{args,pwd,env}, prints
// "fake-stdout" and "fake-stderr", runs $FAKE_NODE_SCRIPT (shell code) if
// set, and exits with $FAKE_NODE_EXIT.
// onPath puts an executable `name` running `script` first on PATH, for the test.
func onPath(t *testing.T, name, script string) {
	t.Helper()
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, name), script)
	if err := os.Chmod(filepath.Join(bin, name), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func fakeNode(t *testing.T) (logDir string) {
	t.Helper()
	logDir = t.TempDir()
	onPath(t, "node", `#!/bin/sh
if [ "$1" = "-e" ]; then
  case " $FAKE_NODE_MISSING " in
    *" $3 "*) echo "could not find $3: it looks like the Pulumi SDK is not installed; run $4" >&2; exit 1 ;;
  esac
  echo "/fake/$3/index.js"
  exit 0
fi
printf '%s\n' "$@" > "$FAKE_NODE_LOG/args"
pwd > "$FAKE_NODE_LOG/pwd"
env > "$FAKE_NODE_LOG/env"
echo fake-stdout
echo fake-stderr >&2
if [ -n "$FAKE_NODE_SCRIPT" ]; then eval "$FAKE_NODE_SCRIPT"; fi
exit "${FAKE_NODE_EXIT:-0}"
`)
	t.Setenv("FAKE_NODE_LOG", logDir)
	t.Setenv("FAKE_NODE_EXIT", "0")
	t.Setenv("FAKE_NODE_SCRIPT", "")
	t.Setenv("FAKE_NODE_MISSING", "")
	t.Setenv(runPathOverride, "")
	return logDir
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func envValue(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUnimplementedMethodsNameTheMethod(t *testing.T) {
	c := startHost(t, newHost("", ""))
	ctx := context.Background()
	calls := map[string]func() error{
		"About": func() error { _, err := c.About(ctx, &pulumirpc.AboutRequest{}); return err },
		"GetProgramDependencies": func() error {
			_, err := c.GetProgramDependencies(ctx, &pulumirpc.GetProgramDependenciesRequest{})
			return err
		},
		"RuntimeOptionsPrompts": func() error {
			_, err := c.RuntimeOptionsPrompts(ctx, &pulumirpc.RuntimeOptionsRequest{})
			return err
		},
		"Template":        func() error { _, err := c.Template(ctx, &pulumirpc.TemplateRequest{}); return err },
		"GenerateProgram": func() error { _, err := c.GenerateProgram(ctx, &pulumirpc.GenerateProgramRequest{}); return err },
		"GenerateProject": func() error { _, err := c.GenerateProject(ctx, &pulumirpc.GenerateProjectRequest{}); return err },
		"GeneratePackage": func() error { _, err := c.GeneratePackage(ctx, &pulumirpc.GeneratePackageRequest{}); return err },
		"Pack":            func() error { _, err := c.Pack(ctx, &pulumirpc.PackRequest{}); return err },
		"Link":            func() error { _, err := c.Link(ctx, &pulumirpc.LinkRequest{}); return err },
	}
	for name, call := range calls {
		err := call()
		if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want Unimplemented naming %s", name, err, name)
		}
	}
}

func TestGetPluginInfoReportsStampedVersion(t *testing.T) {
	old := version.Version
	version.Version = "v3.248.0"
	t.Cleanup(func() { version.Version = old })
	info, err := startHost(t, newHost("", "")).GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "v3.248.0" {
		t.Fatalf("GetPluginInfo = %v, %v; want v3.248.0", info, err)
	}
}

// A program tree with plugin packages in several places.
func packagesFixture(t *testing.T) string {
	dir := t.TempDir()
	nm := filepath.Join(dir, "node_modules")
	writeFile(t, filepath.Join(nm, "@pulumi/pulumi/package.json"),
		`{"name":"@pulumi/pulumi","version":"3.248.0","pulumi":{"comment":"not a plugin"}}`)
	writeFile(t, filepath.Join(nm, "@pulumi/random/package.json"),
		`{"name":"@pulumi/random","version":"4.21.2","pulumi":{"resource":true,"name":"random","version":"4.21.2"}}`)
	// Plugin version differs from the npm version; no pulumi.name: from the @pulumi/ scope.
	writeFile(t, filepath.Join(nm, "@pulumi/docker/package.json"),
		`{"name":"@pulumi/docker","version":"5.2.0-alpha.1","pulumi":{"resource":true,"version":"v5.2.0"}}`)
	// Third-party package: pulumi.name and a download server.
	writeFile(t, filepath.Join(nm, "acme-things/package.json"),
		`{"name":"acme-things","version":"0.1.0","pulumi":{"resource":true,"name":"acme","server":"https://example.invalid/acme"}}`)
	// Parameterized package.
	writeFile(t, filepath.Join(nm, "@acme/param/package.json"),
		`{"name":"@acme/param","version":"1.0.0","pulumi":{"resource":true,"name":"terraform-provider","version":"0.8.0",`+
			`"parameterization":{"name":"acmetf","version":"1.0.0","value":"eyJ4IjoxfQ=="}}}`)
	// Nested copy of random: deduplicated.
	writeFile(t, filepath.Join(nm, "acme-things/node_modules/@pulumi/random/package.json"),
		`{"name":"@pulumi/random","version":"4.21.2","pulumi":{"resource":true,"name":"random","version":"4.21.2"}}`)
	// Not plugins: resource false, third-party without pulumi.name, not JSON, outside node_modules.
	writeFile(t, filepath.Join(nm, "@pulumi/eslint-plugin/package.json"), `{"name":"@pulumi/eslint-plugin","version":"0.3.1"}`)
	writeFile(t, filepath.Join(nm, "nameless/package.json"), `{"name":"nameless","version":"1.0.0","pulumi":{"resource":true}}`)
	writeFile(t, filepath.Join(nm, "broken/package.json"), `{ this is not json`)
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"prog","version":"1.0.0","pulumi":{"resource":true,"name":"prog"}}`)
	// A nested policy pack's plugins are not the program's.
	writeFile(t, filepath.Join(dir, "policy/PulumiPolicy.yaml"), "runtime: nodejs\n")
	writeFile(t, filepath.Join(dir, "policy/node_modules/@pulumi/aws/package.json"),
		`{"name":"@pulumi/aws","version":"7.0.0","pulumi":{"resource":true,"name":"aws"}}`)
	// A package reached through a symbolic link, and a link cycle.
	writeFile(t, filepath.Join(dir, "vendor/postgresql/package.json"),
		`{"name":"@pulumi/postgresql","version":"3.18.1","pulumi":{"resource":true,"name":"postgresql","version":"3.18.1"}}`)
	if err := os.Symlink(filepath.Join(dir, "vendor/postgresql"), filepath.Join(nm, "@pulumi/postgresql")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(nm, filepath.Join(nm, "acme-things/loop")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGetRequiredPackages(t *testing.T) {
	dir := packagesFixture(t)
	resp, err := startHost(t, newHost("", "")).GetRequiredPackages(context.Background(),
		&pulumirpc.GetRequiredPackagesRequest{Info: &pulumirpc.ProgramInfo{
			RootDirectory: dir, ProgramDirectory: dir, EntryPoint: ".",
		}})
	if err != nil {
		t.Fatal(err)
	}
	type pkg struct{ Name, Kind, Version, Server, Param string }
	var got []pkg
	for _, p := range resp.GetPackages() {
		param := ""
		if pp := p.GetParameterization(); pp != nil {
			param = pp.GetName() + "@" + pp.GetVersion() + ":" + string(pp.GetValue())
		}
		got = append(got, pkg{p.GetName(), p.GetKind(), p.GetVersion(), p.GetServer(), param})
	}
	want := []pkg{
		{"acme", "resource", "v0.1.0", "https://example.invalid/acme", ""},
		{"docker", "resource", "v5.2.0", "", ""},
		{"postgresql", "resource", "v3.18.1", "", ""},
		{"random", "resource", "v4.21.2", "", ""},
		{"terraform-provider", "resource", "v0.8.0", "", `acmetf@1.0.0:{"x":1}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetRequiredPackages:\n got %+v\nwant %+v", got, want)
	}

	// The older RPC: the same plugins, minus the parameterized one.
	plugins, err := startHost(t, newHost("", "")).GetRequiredPlugins(context.Background(),
		&pulumirpc.GetRequiredPluginsRequest{Info: &pulumirpc.ProgramInfo{ProgramDirectory: dir}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range plugins.GetPlugins() {
		names = append(names, p.GetName()+"@"+p.GetVersion())
	}
	if want := []string{"acme@v0.1.0", "docker@v5.2.0", "postgresql@v3.18.1", "random@v4.21.2"}; !slices.Equal(names, want) {
		t.Fatalf("GetRequiredPlugins = %v, want %v", names, want)
	}
}

func TestGetRequiredPackagesOfThisRepository(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "node_modules/@pulumi/pulumi/package.json")); err != nil {
		t.Skipf("%s/node_modules is not installed (run npm ci there)", repo)
	}
	start := time.Now()
	found := findPulumiPackages(repo)
	var got []string
	for _, p := range found {
		got = append(got, p.name+"@"+p.version)
	}
	t.Logf("%d plugin packages in %s in %v: %v", len(found), repo, time.Since(start), got)
	for _, name := range []string{"docker", "postgresql", "random"} {
		if !slices.ContainsFunc(found, func(p pulumiPackage) bool { return p.name == name }) {
			t.Errorf("plugin %s not found in %s/node_modules", name, repo)
		}
	}
}

func TestParseOptions(t *testing.T) {
	opts, err := parseOptions(nil)
	if err != nil || !opts.typescript || opts.tsconfig != "" || opts.nodeargs != nil || opts.packagemanager != "auto" {
		t.Fatalf("defaults: %+v, %v", opts, err)
	}
	opts, err = parseOptions(map[string]any{
		"typescript": false, "tsconfig": "tsconfig.build.json",
		"nodeargs": `--max-old-space-size=4096 --title="a b"`, "packagemanager": "npm",
	})
	if err != nil || opts.typescript || opts.tsconfig != "tsconfig.build.json" || opts.packagemanager != "npm" ||
		!slices.Equal(opts.nodeargs, []string{"--max-old-space-size=4096", "--title=a b"}) {
		t.Fatalf("parsed: %+v, %v", opts, err)
	}
	if env := opts.typeScriptEnv(); !slices.Equal(env, []string{"PULUMI_NODEJS_TSCONFIG_PATH=tsconfig.build.json"}) {
		t.Errorf("typeScriptEnv (typescript false) = %v", env)
	}
	for _, bad := range []map[string]any{
		{"typescript": "yes"}, {"tsconfig": 1.0}, {"nodeargs": true}, {"nodeargs": `"unterminated`},
		{"packagemanager": "cargo"}, {"packagemanager": 1.0},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("parseOptions(%v): no error", bad)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	cases := map[string][]string{
		"":                             nil,
		"  ":                           nil,
		"--a --b=c":                    {"--a", "--b=c"},
		"  --a\t\n--b  ":               {"--a", "--b"},
		`--title="two words" x`:        {"--title=two words", "x"},
		`'it''s' "" ''`:                {"its", "", ""},
		`a\ b "q\"uote" "back\\slash"`: {"a b", `q"uote`, `back\slash`},
		`"keep\n"`:                     {`keep\n`},
		"a\\\nb":                       {"ab"},
		`'$HOME \x'`:                   {`$HOME \x`},
	}
	for in, want := range cases {
		got, err := splitArgs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"open`, `'open`, `trailing\`} {
		if _, err := splitArgs(bad); err == nil {
			t.Errorf("splitArgs(%q): no error", bad)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	got, err := configJSON(map[string]string{"proj:a": "1", "aws:region": "x", "old:config:b": "2"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"proj:config:a": "1", "aws:config:region": "x", "old:config:b": "2"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("configJSON = %v, want %v", m, want)
	}
	if got, _ := configJSON(nil); got != "{}" {
		t.Errorf("configJSON(nil) = %s, want {}", got)
	}
	for _, bad := range []string{"nonamespace", "a:b:c", ":x", "a:"} {
		if _, err := configJSON(map[string]string{bad: "v"}); err == nil {
			t.Errorf("configJSON(%q): no error", bad)
		}
	}
}

func runRequest(dir string) *pulumirpc.RunRequest {
	return &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1111",
		Project:        "proj",
		Stack:          "dev",
		Organization:   "org",
		Parallel:       8,
		DryRun:         true,
		Args:           []string{"extra1", "extra 2"},
		Config:         map[string]string{"proj:name": "world", "proj:password": "s3cr3t"},
		ConfigSecretKeys: []string{
			"proj:password",
		},
		Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: filepath.Join(dir, "src"), EntryPoint: "main.js"},
	}
}

func TestRunCommandLineAndEnvironment(t *testing.T) {
	logDir := fakeNode(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := runRequest(dir)
	req.Info.Options = mustStruct(t, map[string]any{"nodeargs": "--max-old-space-size=100 --title='x y'", "tsconfig": "tsconfig.x.json"})
	h := newHost("127.0.0.1:2222", "http://127.0.0.1:9411/api/v1/spans")
	resp, err := startHost(t, h).Run(context.Background(), req)
	if err != nil || resp.GetError() != "" || resp.GetBail() {
		t.Fatalf("Run = %v, %v", resp, err)
	}
	wantArgs := []string{
		"--max-old-space-size=100", "--title=x y",
		"/fake/@pulumi/pulumi/cmd/run/index.js",
		"--monitor", "127.0.0.1:1111", "--engine", "127.0.0.1:2222", "--organization", "org",
		"--project", "proj", "--root-directory", dir, "--stack", "dev", "--pwd", filepath.Join(dir, "src"),
		"--dry-run", "--parallel", "8", "--tracing", "http://127.0.0.1:9411/api/v1/spans",
		"main.js", "extra1", "extra 2",
	}
	if got := readLines(t, filepath.Join(logDir, "args")); !slices.Equal(got, wantArgs) {
		t.Errorf("node args:\n got %q\nwant %q", got, wantArgs)
	}
	if got := readLines(t, filepath.Join(logDir, "pwd")); got[0] != filepath.Join(dir, "src") {
		t.Errorf("node ran in %s, want the program directory", got[0])
	}
	env := readLines(t, filepath.Join(logDir, "env"))
	for k, want := range map[string]string{
		"PULUMI_CONFIG":               `{"proj:config:name":"world","proj:config:password":"s3cr3t"}`,
		"PULUMI_CONFIG_SECRET_KEYS":   `["proj:password"]`,
		"PULUMI_NODEJS_TYPESCRIPT":    "true",
		"PULUMI_NODEJS_TSCONFIG_PATH": "tsconfig.x.json",
		"FAKE_NODE_LOG":               logDir, // the host's own environment is passed on
	} {
		if got, ok := envValue(env, k); !ok || got != want {
			t.Errorf("node env %s = %q (set: %v), want %q", k, got, ok, want)
		}
	}

	// Defaults: no nodeargs, no tracing, entry point ".", no dry run, no
	// config (empty JSON values), no organization.
	req = &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1111", Project: "proj", Stack: "dev",
		Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir},
	}
	if resp, err := startHost(t, newHost("127.0.0.1:2222", "")).Run(context.Background(), req); err != nil || resp.GetError() != "" {
		t.Fatalf("Run = %v, %v", resp, err)
	}
	wantArgs = []string{
		"/fake/@pulumi/pulumi/cmd/run/index.js",
		"--monitor", "127.0.0.1:1111", "--engine", "127.0.0.1:2222", "--project", "proj",
		"--root-directory", dir, "--stack", "dev", "--pwd", dir, "--parallel", "0", ".",
	}
	if got := readLines(t, filepath.Join(logDir, "args")); !slices.Equal(got, wantArgs) {
		t.Errorf("node args:\n got %q\nwant %q", got, wantArgs)
	}
	env = readLines(t, filepath.Join(logDir, "env"))
	for k, want := range map[string]string{"PULUMI_CONFIG": "{}", "PULUMI_CONFIG_SECRET_KEYS": "[]", "PULUMI_NODEJS_TYPESCRIPT": "true"} {
		if got, _ := envValue(env, k); got != want {
			t.Errorf("node env %s = %q, want %q", k, got, want)
		}
	}
	if _, ok := envValue(env, "PULUMI_NODEJS_TSCONFIG_PATH"); ok {
		t.Error("PULUMI_NODEJS_TSCONFIG_PATH set without the tsconfig option")
	}

	// PULUMI_LANGUAGE_NODEJS_RUN_PATH replaces the run script, as for the official host.
	t.Setenv(runPathOverride, "my-runner")
	if resp, err := startHost(t, newHost("127.0.0.1:2222", "")).Run(context.Background(), req); err != nil || resp.GetError() != "" {
		t.Fatalf("Run = %v, %v", resp, err)
	}
	if got := readLines(t, filepath.Join(logDir, "args")); got[0] != "/fake/my-runner/index.js" {
		t.Errorf("with %s: node ran %s", runPathOverride, got[0])
	}
}

func TestRunExitMapping(t *testing.T) {
	fakeNode(t)
	dir := t.TempDir()
	c := startHost(t, newHost("127.0.0.1:2222", ""))
	req := &pulumirpc.RunRequest{MonitorAddress: "127.0.0.1:1111", Info: &pulumirpc.ProgramInfo{ProgramDirectory: dir}}
	cases := []struct {
		name, exit, script string
		bail               bool
		errContains        string
	}{
		{"success", "0", "", false, ""},
		{"error already reported by the program", "32", "", true, ""},
		{"crash", "3", "", false, "Program exited with non-zero exit code: 3"},
		{"out of memory", "134", `echo "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory" >&2`,
			false, "Program exited with non-zero exit code: 134. Node.js probably ran out of memory"},
		{"killed", "0", `kill -9 $$`, false, "Program exited unexpectedly: killed by signal killed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FAKE_NODE_EXIT", tc.exit)
			t.Setenv("FAKE_NODE_SCRIPT", tc.script)
			resp, err := c.Run(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetBail() != tc.bail {
				t.Errorf("bail = %v, want %v", resp.GetBail(), tc.bail)
			}
			if tc.errContains == "" && resp.GetError() != "" || !strings.Contains(resp.GetError(), tc.errContains) {
				t.Errorf("error = %q, want %q", resp.GetError(), tc.errContains)
			}
		})
	}
}

func TestRunReportsSetupProblemsAsProgramErrors(t *testing.T) {
	fakeNode(t)
	dir := t.TempDir()
	req := &pulumirpc.RunRequest{MonitorAddress: "127.0.0.1:1111", Info: &pulumirpc.ProgramInfo{ProgramDirectory: dir}}

	// No engine address (neither argument nor Handshake): an RPC error.
	c := startHost(t, newHost("", ""))
	if _, err := c.Run(context.Background(), req); err == nil || !strings.Contains(err.Error(), "Handshake") {
		t.Errorf("Run without engine: %v", err)
	}
	// Handshake provides it.
	if _, err := c.Handshake(context.Background(), &pulumirpc.LanguageHandshakeRequest{EngineAddress: "127.0.0.1:2222"}); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Run(context.Background(), req); err != nil || resp.GetError() != "" {
		t.Errorf("Run after Handshake = %v, %v", resp, err)
	}

	// @pulumi/pulumi not installed: the program error says what to run.
	t.Setenv("FAKE_NODE_MISSING", runModule)
	resp, err := c.Run(context.Background(), req)
	if err != nil || !strings.Contains(resp.GetError(), "pulumi install") {
		t.Errorf("Run without @pulumi/pulumi = %v, %v", resp, err)
	}
	t.Setenv("FAKE_NODE_MISSING", "")

	// Bad runtime options.
	req.Info.Options = mustStruct(t, map[string]any{"typescript": "yes"})
	if resp, err := c.Run(context.Background(), req); err != nil || !strings.Contains(resp.GetError(), "typescript") {
		t.Errorf("Run with bad options = %v, %v", resp, err)
	}
	req.Info.Options = nil

	// Debugger attach is not supported: said so.
	req.AttachDebugger = true
	if resp, err := c.Run(context.Background(), req); err != nil || !strings.Contains(resp.GetError(), "debugger") {
		t.Errorf("Run with AttachDebugger = %v, %v", resp, err)
	}
	req.AttachDebugger = false

	// No node on PATH.
	t.Setenv("PATH", t.TempDir())
	if resp, err := c.Run(context.Background(), req); err != nil || !strings.Contains(resp.GetError(), "could not find node") {
		t.Errorf("Run without node = %v, %v", resp, err)
	}
}

func TestCancelStopsTheProgram(t *testing.T) {
	fakeNode(t)
	t.Setenv("FAKE_NODE_SCRIPT", "exec sleep 60")
	c := startHost(t, newHost("127.0.0.1:2222", ""))
	done := make(chan *pulumirpc.RunResponse, 1)
	go func() {
		resp, err := c.Run(context.Background(), &pulumirpc.RunRequest{Info: &pulumirpc.ProgramInfo{ProgramDirectory: t.TempDir()}})
		if err != nil {
			resp = &pulumirpc.RunResponse{Error: err.Error()}
		}
		done <- resp
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if _, err := c.Cancel(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-done:
		if !strings.Contains(resp.GetError(), "killed by signal interrupt") {
			t.Errorf("Run after Cancel = %v", resp)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Run took %v to stop after Cancel (SIGINT should end sleep at once)", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still running 20s after Cancel")
	}
}

// recv collects a server stream's stdout and stderr until it ends.
func recvAll[T any](t *testing.T, recv func() (*T, error), out func(*T) ([]byte, []byte)) (string, string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return stdout.String(), stderr.String(), nil
		}
		if err != nil {
			return stdout.String(), stderr.String(), err
		}
		o, e := out(msg)
		stdout.Write(o)
		stderr.Write(e)
	}
}

func TestInstallDependencies(t *testing.T) {
	logDir := t.TempDir()
	onPath(t, "npm", `#!/bin/sh
printf '%s\n' "$@" > "$FAKE_NPM_LOG/args"
pwd > "$FAKE_NPM_LOG/pwd"
echo npm-says-hello
echo npm-warns >&2
mkdir -p node_modules
exit "${FAKE_NPM_EXIT:-0}"
`)
	t.Setenv("FAKE_NPM_LOG", logDir)
	t.Setenv("FAKE_NPM_EXIT", "0")
	c := startHost(t, newHost("", ""))
	install := func(dir string, opts map[string]any) (string, string, error) {
		info := &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."}
		if opts != nil {
			info.Options = mustStruct(t, opts)
		}
		stream, err := c.InstallDependencies(context.Background(),
			&pulumirpc.InstallDependenciesRequest{Directory: dir, IsTerminal: true, Info: info})
		if err != nil {
			return "", "", err
		}
		return recvAll(t, stream.Recv, func(m *pulumirpc.InstallDependenciesResponse) ([]byte, []byte) {
			return m.GetStdout(), m.GetStderr()
		})
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"x"}`)
	stdout, stderr, err := install(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "Installing dependencies...") || !strings.Contains(stdout, "npm-says-hello") ||
		!strings.Contains(stdout, "Finished installing dependencies") || !strings.Contains(stderr, "npm-warns") {
		t.Errorf("streamed stdout %q, stderr %q", stdout, stderr)
	}
	if got := readLines(t, filepath.Join(logDir, "args")); !slices.Equal(got, []string{"install", "--loglevel=error", "--no-audit", "--no-fund"}) {
		t.Errorf("without a lock file: npm %q", got)
	}
	if got := readLines(t, filepath.Join(logDir, "pwd")); got[0] != dir {
		t.Errorf("npm ran in %s, want %s", got[0], dir)
	}

	writeFile(t, filepath.Join(dir, "package-lock.json"), `{}`)
	if _, _, err := install(dir, map[string]any{"packagemanager": "npm"}); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, filepath.Join(logDir, "args")); !slices.Equal(got, []string{"ci", "--loglevel=error", "--no-audit", "--no-fund"}) {
		t.Errorf("with package-lock.json: npm %q", got)
	}

	t.Setenv("FAKE_NPM_EXIT", "7")
	if _, _, err := install(dir, nil); err == nil || !strings.Contains(err.Error(), "npm ci") || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("failing npm: %v", err)
	}
	t.Setenv("FAKE_NPM_EXIT", "0")

	writeFile(t, filepath.Join(dir, "yarn.lock"), "")
	if _, _, err := install(dir, nil); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "yarn") {
		t.Errorf("yarn.lock: %v", err)
	}
	if _, _, err := install(dir, map[string]any{"packagemanager": "pnpm"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("packagemanager pnpm: %v", err)
	}
}

func TestRunPlugin(t *testing.T) {
	logDir := fakeNode(t)
	c := startHost(t, newHost("127.0.0.1:2222", ""))
	pluginDir, pwd := t.TempDir(), t.TempDir()
	run := func(kind string) (string, string, error) {
		stream, err := c.RunPlugin(context.Background(), &pulumirpc.RunPluginRequest{
			Pwd:  pwd,
			Args: []string{"127.0.0.1:3333"},
			Env:  []string{"PATH=" + os.Getenv("PATH"), "FAKE_NODE_LOG=" + logDir, "FROM_CLI=yes", "FAKE_NODE_EXIT=" + os.Getenv("FAKE_NODE_EXIT")},
			Kind: kind,
			Info: &pulumirpc.ProgramInfo{
				RootDirectory: pluginDir, ProgramDirectory: pluginDir, EntryPoint: ".",
				Options: mustStruct(t, map[string]any{"nodeargs": "--no-warnings"}),
			},
		})
		if err != nil {
			return "", "", err
		}
		return recvAll(t, stream.Recv, func(m *pulumirpc.RunPluginResponse) ([]byte, []byte) {
			return m.GetStdout(), m.GetStderr()
		})
	}
	stdout, stderr, err := run("resource")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "fake-stdout\n" || stderr != "fake-stderr\n" {
		t.Errorf("streamed stdout %q, stderr %q", stdout, stderr)
	}
	want := []string{"--no-warnings", "/fake/@pulumi/pulumi/cmd/run-plugin/index.js", pluginDir, "127.0.0.1:3333"}
	if got := readLines(t, filepath.Join(logDir, "args")); !slices.Equal(got, want) {
		t.Errorf("node args %q, want %q", got, want)
	}
	if got := readLines(t, filepath.Join(logDir, "pwd")); got[0] != pwd {
		t.Errorf("plugin ran in %s, want the request's pwd %s", got[0], pwd)
	}
	env := readLines(t, filepath.Join(logDir, "env"))
	if v, _ := envValue(env, "FROM_CLI"); v != "yes" {
		t.Error("the request's environment was not used")
	}
	if v, _ := envValue(env, "PULUMI_NODEJS_TYPESCRIPT"); v != "true" {
		t.Error("PULUMI_NODEJS_TYPESCRIPT not set for the plugin")
	}

	t.Setenv("FAKE_NODE_EXIT", "5")
	if _, _, err := run("resource"); err == nil || !strings.Contains(err.Error(), "Program exited with non-zero exit code: 5") {
		t.Errorf("failing plugin: %v", err)
	}
}
