// Package shim re-exports the plugin-framework provider of
// terraform-provider-random, whose implementation lives in an internal
// package. Go allows importing an internal package only from a package whose
// import path shares the parent of "internal", so this module's path is
// github.com/terraform-providers/terraform-provider-random/shim and the glue
// module wires it in with a local replace directive.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns a fresh instance of the upstream Terraform provider.
func NewProvider() provider.Provider { return upstream.New() }
