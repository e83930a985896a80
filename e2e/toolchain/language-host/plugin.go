package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// RunPlugin runs a plugin written in Node.js: a directory with
// PulumiPlugin.yaml (resource provider, e.g. a TypeScript component
// provider; converter; tool) or PulumiPolicy.yaml (policy pack, kind
// "analyzer") and runtime nodejs, which the CLI starts through this host
// instead of executing a binary. node runs the plugin directory's
// @pulumi/pulumi/cmd/run-plugin <plugin dir> <args…> in req.pwd, or, for a
// policy pack, @pulumi/pulumi/cmd/run-policy-pack <args…> <pack dir> in the
// pack directory, with req.env (the CLI's environment) and the TypeScript
// settings. Its stdout and stderr are streamed back (the CLI reads the
// plugin's port from that stdout). A policy pack first gets the stack's
// configuration through sdk.PolicyProxy, as with the official host. A
// non-zero exit ends the stream with an error naming the exit code.
func (h *host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	info, err := programInfo("RunPlugin", req.GetInfo())
	if err != nil {
		return err
	}
	if req.GetAttachDebugger() {
		return status.Error(codes.Unimplemented, "this language host (e2e toolchain) does not support attaching a debugger")
	}
	opts, err := parseOptions(info.GetOptions().AsMap())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	nodeBin, err := lookPathNode()
	if err != nil {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	dir := info.GetProgramDirectory()
	isPolicyPack := req.GetKind() == analyzerKind
	module := runPolicyModule
	if !isPolicyPack {
		if module = os.Getenv(runPathOverride); module == "" {
			module = runPluginModule
		}
	}
	ctx, stop := h.commandContext(server.Context())
	defer stop()
	script, err := resolveModule(ctx, nodeBin, dir, module, fmt.Sprintf(pluginInstallFmt, dir))
	if err != nil {
		return status.Error(codes.FailedPrecondition, err.Error())
	}

	mu := &sync.Mutex{}
	stdout := streamWriter{mu, func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	}}
	stderr := streamWriter{mu, func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	}}

	env := append([]string{}, req.GetEnv()...)
	if len(env) == 0 {
		env = os.Environ()
	}
	env = append(env, opts.typeScriptEnv()...)
	args := append(append([]string{}, opts.nodeargs...), script)
	if isPolicyPack {
		args = append(append(args, req.GetArgs()...), dir)
	} else {
		args = append(append(args, dir), req.GetArgs()...)
	}

	cmd := interruptible(ctx, nodeBin, args...)
	cmd.Stderr = stderr
	if !isPolicyPack {
		cmd.Dir = req.GetPwd()
		cmd.Stdout = stdout
		cmd.Env = env
		logging.V(5).Infof("RunPlugin: %s %q in %s", nodeBin, args, cmd.Dir)
		return pluginExit(cmd.Run())
	}

	// Policy packs of @pulumi/policy read the stack (organization, project,
	// stack, dry run, config) from the environment at start-up, but the engine
	// only sends it through the Analyzer protocol once the plugin answers:
	// the proxy answers first, then starts the pack with that environment
	// and forwards everything to it.
	proxy, packStdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return fmt.Errorf("could not start the policy pack proxy: %w", err)
	}
	stack, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return fmt.Errorf("could not get the stack configuration for the policy pack: %w", err)
	}
	if stack != nil {
		add := func(k, v string) {
			if v != "" {
				env = append(env, k+"="+v)
			}
		}
		add("PULUMI_NODEJS_ORGANIZATION", stack.GetOrganization())
		add("PULUMI_NODEJS_PROJECT", stack.GetProject())
		add("PULUMI_NODEJS_STACK", stack.GetStack())
		add("PULUMI_NODEJS_DRY_RUN", strconv.FormatBool(stack.GetDryRun()))
		if stack.GetConfig() != nil {
			b, err := json.Marshal(stack.GetConfig())
			if err != nil {
				return fmt.Errorf("could not serialize the stack configuration: %w", err)
			}
			add("PULUMI_CONFIG", string(b))
		}
	}
	cmd.Dir = dir // policy packs always ran in their own directory
	cmd.Stdout = packStdout
	cmd.Env = env
	logging.V(5).Infof("RunPlugin (policy pack): %s %q in %s", nodeBin, args, cmd.Dir)
	if err := cmd.Start(); err != nil {
		return pluginExit(err)
	}
	return pluginExit(proxy.Attach(ctx, cmd))
}

func pluginExit(err error) error {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return fmt.Errorf("Problem executing plugin program (could not run language executor): %w", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("Program exited unexpectedly: killed by signal %v", ws.Signal())
	}
	return fmt.Errorf("Program exited with non-zero exit code: %d", exitErr.ExitCode())
}
