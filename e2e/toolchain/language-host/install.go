package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// streamWriter turns writes into messages of a server stream; the two
// writers of one stream share a mutex (gRPC streams do not allow
// concurrent Send calls).
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// InstallDependencies (`pulumi install`, `pulumi new`, and before a policy
// pack or plugin runs) installs the program's npm dependencies in its
// program directory, streaming npm's stdout and stderr: `npm ci` when a
// package-lock.json or npm-shrinkwrap.json pins them (reproducible, leaves the
// lock file alone), else `npm install`; always with --loglevel=error (as the
// official host) and --no-audit --no-fund (no registry calls beyond the
// packages). Only npm: the packagemanager runtime option (or, with "auto", a
// yarn/pnpm/bun lock file) selecting another one is refused. No pseudo
// terminal even when the CLI has one (npm prints no progress bar), and
// UseLanguageVersionTools (fnm) is ignored.
func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetDirectory()
	}
	if dir == "" {
		return status.Error(codes.InvalidArgument, "InstallDependencies: the request has no program directory")
	}
	opts, err := parseOptions(req.GetInfo().GetOptions().AsMap())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if pm := opts.packageManager(dir); pm != "npm" {
		return status.Errorf(codes.FailedPrecondition,
			"package manager %s is not supported by this language host (e2e toolchain): it installs with npm only", pm)
	}
	npmBin, err := exec.LookPath("npm")
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "could not find npm on the $PATH: %v", err)
	}

	mu := &sync.Mutex{}
	stdout := streamWriter{mu, func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stdout: b})
	}}
	stderr := streamWriter{mu, func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stderr: b})
	}}

	args := []string{"install"}
	for _, lock := range []string{"package-lock.json", "npm-shrinkwrap.json"} {
		if _, err := os.Stat(filepath.Join(dir, lock)); err == nil {
			args = []string{"ci"}
			break
		}
	}
	args = append(args, "--loglevel=error", "--no-audit", "--no-fund")

	if _, err := fmt.Fprintf(stdout, "Installing dependencies...\n\n"); err != nil {
		return err
	}
	ctx, stop := h.commandContext(server.Context())
	defer stop()
	cmd := interruptible(ctx, npmBin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm %s in %s failed: %w", strings.Join(args, " "), dir, err)
	}
	if !hasNodeModules(dir) {
		return fmt.Errorf("npm %s reported success, but there is no node_modules in %s or above", args[0], dir)
	}
	_, err = fmt.Fprintf(stdout, "Finished installing dependencies\n\n")
	return err
}

// hasNodeModules tells whether dir or one of its parents has node_modules
// (npm workspaces install at the workspace root).
func hasNodeModules(dir string) bool {
	for {
		if st, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil && st.IsDir() {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}
