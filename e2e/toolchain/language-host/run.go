package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// exitAfterReportedError is the exit code of @pulumi/pulumi/cmd/run when the
// program failed and the error was already reported to the engine
// (nodeJSProcessExitedAfterLoggingUserActionableMessage): the CLI must stop
// without adding a message of its own (RunResponse.bail).
const exitAfterReportedError = 32

// Run runs the program: `node [nodeargs] <program's @pulumi/pulumi/cmd/run>
// --monitor … --engine … [--organization …] --project … --root-directory …
// --stack … --pwd <program dir> [--dry-run] --parallel N [--tracing …]
// <entry point> [args…]`, with the configuration in PULUMI_CONFIG and
// PULUMI_CONFIG_SECRET_KEYS and the TypeScript settings in
// PULUMI_NODEJS_TYPESCRIPT / PULUMI_NODEJS_TSCONFIG_PATH. node's stdout and
// stderr go to this host's stdout and stderr, which the CLI shows as they
// come. Its exit status becomes the response: 0 → success; 32 (the program
// failed and said so through the engine) → bail; anything else → an error
// naming the exit code.
//
// Problems with the request or the environment (options, node not found,
// @pulumi/pulumi not installed) are answered in RunResponse.error, as the
// official host does, so that the CLI shows them as the program's error.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	engine := h.engine()
	if engine == "" {
		return nil, errors.New("Run: no engine address: start the host with the engine address as its argument, or call Handshake first")
	}
	info, err := programInfo("Run", req.GetInfo())
	if err != nil {
		return nil, err
	}
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "this language host (e2e toolchain) does not support attaching a debugger"}, nil
	}
	if req.GetQueryMode() {
		// @pulumi/pulumi 3.248's run script has no query mode either; the
		// official host passes nothing for it.
		logging.V(5).Infof("Run: query mode requested; ignored (not supported by @pulumi/pulumi/cmd/run)")
	}
	opts, err := parseOptions(info.GetOptions().AsMap())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	nodeBin, err := lookPathNode()
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	module := os.Getenv(runPathOverride)
	if module == "" {
		module = runModule
	}
	runScript, err := resolveModule(ctx, nodeBin, info.GetProgramDirectory(), module, installHint)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	env, err := runEnv(req, opts)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	args := append(append([]string{}, opts.nodeargs...), runScript)
	args = append(args, h.runArgs(req, info, engine)...)

	cmdCtx, stop := h.commandContext(ctx)
	defer stop()
	cmd := interruptible(cmdCtx, nodeBin, args...)
	cmd.Dir = info.GetProgramDirectory()
	cmd.Env = env
	// Not os.Stdout itself: node may switch the descriptors it is given to
	// non-blocking mode, which must not happen to the host's own stdout and
	// stderr (the CLI reads them). exec copies through pipes instead.
	cmd.Stdout = struct{ io.Writer }{os.Stdout}
	oom := &oomDetector{}
	cmd.Stderr = io.MultiWriter(struct{ io.Writer }{os.Stderr}, oom)
	logging.V(5).Infof("Run: %s %q in %s", nodeBin, args, cmd.Dir)

	return runResponse(cmd.Run(), oom), nil
}

// runArgs are the arguments of @pulumi/pulumi/cmd/run after the script path
// (its index.js parses them with minimist).
func (h *host) runArgs(req *pulumirpc.RunRequest, info *pulumirpc.ProgramInfo, engine string) []string {
	var args []string
	flag := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flag("monitor", req.GetMonitorAddress())
	flag("engine", engine)
	flag("organization", req.GetOrganization())
	flag("project", req.GetProject())
	flag("root-directory", info.GetRootDirectory())
	flag("stack", req.GetStack())
	flag("pwd", info.GetProgramDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	flag("parallel", strconv.Itoa(int(req.GetParallel())))
	flag("tracing", h.tracing)
	// The entry point: a file relative to pwd (Pulumi.yaml's main), or "."
	// (then run.js takes package.json's exports/main, else the directory).
	entry := info.GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

// runEnv is the environment of the program: the host's own (the CLI's),
// plus the stack configuration and the TypeScript settings.
func runEnv(req *pulumirpc.RunRequest, opts nodeOptions) ([]string, error) {
	config, err := configJSON(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration secret keys: %w", err)
	}
	env := append(os.Environ(), "PULUMI_CONFIG="+config, "PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON))
	return append(env, opts.typeScriptEnv()...), nil
}

// configJSON serialises the stack configuration for PULUMI_CONFIG with keys
// in the old "<namespace>:config:<name>" form, which every @pulumi/pulumi
// version reads (newer ones strip ":config:"); the official host does the
// same. Secret values arrive decrypted: the program marks them secret using
// PULUMI_CONFIG_SECRET_KEYS (keys in "<namespace>:<name>" form).
func configJSON(config map[string]string) (string, error) {
	out := make(map[string]string, len(config))
	for k, v := range config {
		ns, name, err := splitConfigKey(k)
		if err != nil {
			return "", err
		}
		out[ns+":config:"+name] = v
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// splitConfigKey accepts "<namespace>:<name>" and "<namespace>:config:<name>"
// (neither part containing ':').
func splitConfigKey(k string) (string, string, error) {
	parts := strings.Split(k, ":")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return parts[0], parts[1], nil
	case len(parts) == 3 && parts[0] != "" && parts[1] == "config" && parts[2] != "":
		return parts[0], parts[2], nil
	}
	return "", "", fmt.Errorf("could not parse %q as a configuration key (expected <namespace>:<name>)", k)
}

// runResponse maps the end of the node process to the RunResponse the CLI
// expects.
func runResponse(err error, oom *oomDetector) *pulumirpc.RunResponse {
	if err == nil {
		return &pulumirpc.RunResponse{}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// node exited 0, but something it started kept its stdout or
		// stderr open for stopGracePeriod: the program itself succeeded.
		logging.V(3).Infof("Run: the program exited successfully; its output pipes were closed after %v", stopGracePeriod)
		return &pulumirpc.RunResponse{}
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		// node did not even start, or its output could not be copied.
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited unexpectedly: killed by signal %v", ws.Signal()) + oom.hint()}
	}
	switch code := exitErr.ExitCode(); code {
	case exitAfterReportedError:
		return &pulumirpc.RunResponse{Bail: true}
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", code) + oom.hint()}
	}
}

// oomDetector watches node's stderr for V8's out-of-memory report.
type oomDetector struct {
	mu       sync.Mutex
	tail     []byte // end of the previous writes, so that a marker split across writes is seen
	detected bool
}

var oomMarkers = [][]byte{[]byte("<--- Last few GCs --->"), []byte("JavaScript heap out of memory")}

func (o *oomDetector) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.detected {
		return len(p), nil
	}
	window := append(o.tail, p...)
	for _, m := range oomMarkers {
		if bytes.Contains(window, m) {
			o.detected = true
			o.tail = nil
			return len(p), nil
		}
	}
	const keep = 64 // longer than every marker
	if len(window) > keep {
		window = window[len(window)-keep:]
	}
	o.tail = append(o.tail[:0:0], window...)
	return len(p), nil
}

func (o *oomDetector) hint() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.detected {
		return ""
	}
	return ". Node.js probably ran out of memory: raise its heap limit with the runtime option " +
		"`nodeargs: --max-old-space-size=<megabytes>` in Pulumi.yaml"
}
