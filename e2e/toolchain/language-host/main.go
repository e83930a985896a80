// pulumi-language-nodejs for the e2e toolchain: a Node.js language host for
// the Pulumi CLI, written for this project because the official one
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not
// served by the Go module proxy here. It serves the pulumirpc LanguageRuntime
// service of github.com/pulumi/pulumi/sdk/v3 (same version as the CLI) and
// runs programs with the program's own node_modules/@pulumi/pulumi/cmd/run,
// as the official host does. What it implements and what it does not:
// ../README.md, "Node.js language host".
//
// Start-up protocol (sdk/v3 go/common/resource/plugin, newPlugin and
// NewLanguageRuntime): the CLI runs
//
//	pulumi-language-nodejs [--logtostderr] [-v=N] [--tracing URL] <engine address>
//
// in the program directory and reads the first line of stdout, which must be
// the port of the gRPC server (on 127.0.0.1). Everything the host writes to
// stdout/stderr afterwards is shown by the CLI as diagnostics, which is how the
// output of `node` reaches the user. When the CLI attaches to an already
// running host (PULUMI_DEBUG_LANGUAGES=nodejs:<port>) there is no engine
// argument and the CLI calls Handshake with the engine address instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"google.golang.org/grpc"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// engineHealthInterval is how often the host checks that the engine that
// started it is still alive; it stops serving when the engine is gone.
const engineHealthInterval = 5 * time.Minute

func main() {
	// -v and -logtostderr are registered on flag.CommandLine by glog, which
	// the sdk's logging package imports; the CLI passes them when its own
	// logs flow to plugins (--logflow).
	tracing := flag.String("tracing", "", "Zipkin-compatible tracing endpoint, passed on to the Node.js program")
	runtimeName := flag.String("runtime", "nodejs", "JavaScript runtime; only nodejs is supported by this host")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()

	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	logging.InitLogging(false, 0, false)

	if *runtimeName != "nodejs" {
		fatalf("unsupported runtime %q: this language host only runs nodejs", *runtimeName)
	}
	engineAddress := flag.Arg(0) // the CLI 3.248 passes only this (none when attaching)
	if flag.NArg() > 1 {
		logging.V(3).Infof("ignoring extra arguments %q", flag.Args()[1:])
	}

	// The CLI starts plugins in their own process group and interrupts the
	// group (this host and its node) when it shuts them down: on SIGINT stop
	// taking requests, let running ones finish (node got the signal too).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	h := newHost(engineAddress, *tracing)
	if engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, engineAddress, engineHealthInterval, stop); err != nil {
			fatalf("could not watch the engine at %s: %v", engineAddress, err)
		}
	}

	stopServing := make(chan bool)
	go func() {
		<-ctx.Done()
		close(stopServing)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stopServing,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
	})
	if err != nil {
		fatalf("could not start the language host gRPC server: %v", err)
	}

	// The first line of stdout is the port: the CLI reads it byte by byte.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fatalf("language host gRPC server stopped: %v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: error: "+format+"\n", args...)
	os.Exit(1)
}
