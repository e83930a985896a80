// Package schemagen generates the glue provider's Pulumi schema in memory with
// the bridge's tfgen. It is kept out of package glue so that the provider
// binary does not link tfgen and the language code generators.
package schemagen

import (
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	pschema "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"

	"github.com/terraform-providers/terraform-provider-docker/pulumiglue/glue"
)

// Schema generates the Pulumi package schema in memory (no upstream docs
// checkout: descriptions come from the Terraform schema only).
func Schema(version string) (pschema.PackageSpec, error) {
	sink := diag.DefaultSink(os.Stderr, os.Stderr, diag.FormatOptions{Color: colors.Never})
	res, err := tfgen.GenerateSchemaWithOptions(tfgen.GenerateSchemaOptions{
		ProviderInfo:    glue.Provider(version),
		DiagnosticsSink: sink,
		XInMemoryDocs:   true,
	})
	if err != nil {
		return pschema.PackageSpec{}, err
	}
	return res.PackageSpec, nil
}
