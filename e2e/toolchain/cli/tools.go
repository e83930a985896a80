//go:build tools

// Package tools pins the Pulumi CLI main package so that go.mod/go.sum of
// this throwaway module cover all of its dependencies. build.sh runs
// `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` from this directory.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
