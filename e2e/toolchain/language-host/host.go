package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	// Scripts of @pulumi/pulumi started with `node`, resolved from the
	// program directory (the program's own node_modules).
	runModule        = "@pulumi/pulumi/cmd/run"
	runPluginModule  = "@pulumi/pulumi/cmd/run-plugin"
	runPolicyModule  = "@pulumi/pulumi/cmd/run-policy-pack"
	runPathOverride  = "PULUMI_LANGUAGE_NODEJS_RUN_PATH" // replaces runModule/runPluginModule, as for the official host
	stopGracePeriod  = 5 * time.Second                   // SIGINT, then SIGKILL after this long
	analyzerKind     = "analyzer"                        // apitype.AnalyzerPlugin
	nodeExecutable   = "node"
	installHint      = "pulumi install"
	pluginInstallFmt = "npm install in %s"
)

// host implements pulumirpc.LanguageRuntimeServer for Node.js. Methods it
// does not implement answer codes.Unimplemented ("method X not implemented")
// through the embedded UnimplementedLanguageRuntimeServer.
type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	tracing string

	mu            sync.Mutex
	engineAddress string

	// cancelled by the Cancel RPC: stops every node process this host runs.
	cancelCtx context.Context
	cancel    context.CancelFunc
}

func newHost(engineAddress, tracing string) *host {
	ctx, cancel := context.WithCancel(context.Background())
	return &host{engineAddress: engineAddress, tracing: tracing, cancelCtx: ctx, cancel: cancel}
}

func (h *host) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

// Handshake is only called by the CLI when it attaches to a host that is
// already running (PULUMI_DEBUG_LANGUAGES); a host it starts itself gets the
// engine address as its argument instead.
func (h *host) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "Handshake: engine_address is required")
	}
	h.mu.Lock()
	h.engineAddress = req.GetEngineAddress()
	h.mu.Unlock()
	// When that engine goes away, stop the node processes (a host started
	// with the address as its argument stops serving instead).
	if err := rpcutil.Healthcheck(h.cancelCtx, req.GetEngineAddress(), engineHealthInterval, h.cancel); err != nil {
		return nil, fmt.Errorf("could not watch the engine at %s: %w", req.GetEngineAddress(), err)
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetPluginInfo reports the version stamped at build time
// (-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v<PULUMI_VERSION>),
// the CLI's version, as the official host does.
func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// Cancel stops the node processes of running Run/RunPlugin calls (SIGINT,
// then SIGKILL after stopGracePeriod). The engine calls it when the user
// interrupts an operation.
func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancel()
	return &emptypb.Empty{}, nil
}

// programInfo returns req's ProgramInfo, which every CLI of the 3.x line
// that this host serves sends.
func programInfo(method string, info *pulumirpc.ProgramInfo) (*pulumirpc.ProgramInfo, error) {
	if info == nil || info.GetProgramDirectory() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "%s: the request has no program info (program directory)", method)
	}
	return info, nil
}

// commandContext returns a context for a node process: done when the RPC's
// context is done or the host is cancelled.
func (h *host) commandContext(rpcCtx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(h.cancelCtx)
	stopAfter := context.AfterFunc(rpcCtx, cancel)
	return ctx, func() { stopAfter(); cancel() }
}

// interruptible makes cmd get SIGINT when ctx is done (node runs its exit
// handlers), then SIGKILL after stopGracePeriod.
func interruptible(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = stopGracePeriod
	return cmd
}

// lookPathNode finds `node` on PATH.
func lookPathNode() (string, error) {
	bin, err := exec.LookPath(nodeExecutable)
	if err != nil {
		return "", fmt.Errorf("could not find %s on the $PATH: %w", nodeExecutable, err)
	}
	return bin, nil
}

// resolveModule asks node where `module` resolves from dir (the program's
// own node_modules, with Node's own resolution rules).
func resolveModule(ctx context.Context, nodeBin, dir, module, installCommand string) (string, error) {
	// module is passed as an argument, not spliced into the script.
	script := `const m = process.argv[1];
try { console.log(require.resolve(m)); }
catch (e) {
  if (e && e.code === "MODULE_NOT_FOUND") {
    console.error("could not find " + m + " from " + process.cwd() + ": it looks like the Pulumi SDK is not installed; run " + process.argv[2]);
  } else { console.error(String(e && e.message || e)); }
  process.exit(1);
}`
	cmd := exec.CommandContext(ctx, nodeBin, "-e", script, module, installCommand)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", errors.New(msg)
		}
		return "", fmt.Errorf("resolving %s from %s with %s: %w", module, dir, nodeBin, err)
	}
	path := strings.TrimSpace(stdout.String())
	if path == "" {
		return "", fmt.Errorf("resolving %s from %s: node printed nothing", module, dir)
	}
	logging.V(5).Infof("resolved %s from %s to %s", module, dir, path)
	return path, nil
}
