// Command pulumi-resource-random (built by e2e/toolchain/build.sh) serves the
// Terraform provider hashicorp/terraform-provider-random as a Pulumi resource
// provider through pulumi-terraform-bridge, so the e2e suite can run the
// @pulumi/random npm SDK without downloading a plugin.
//
// Resource tokens follow the npm SDK: random_<x> -> random:index/random<X>:Random<X>.
// The Pulumi schema is generated in-process by the bridge on GetSchema (there
// is no tfgen step and no generated file).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"

	"github.com/terraform-providers/terraform-provider-random/shim"
)

// version is the version this plugin reports to the Pulumi engine. build.sh
// sets it with -ldflags "-X main.version=<npm @pulumi/random pulumi.version>".
var version string

func providerInfo() tfbridge.ProviderInfo {
	prov := tfbridge.ProviderInfo{
		P:       pftfbridge.ShimProvider(shim.NewProvider()),
		Name:    "random",
		Version: version,
		// Required by the plugin-framework bridge; empty because this glue has
		// no tfgen step (the bridge then derives everything at start-up).
		MetadataInfo: tfbridge.NewProviderMetadata(nil),
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes has no "id" attribute; use its base64 value.
			"random_bytes": {ComputeID: idFromProperty("base64")},
		},
		EnableAccurateBridgePreview: true,
		EnableRawStateDelta:         true,
	}
	// random_password -> random:index/randomPassword:RandomPassword, etc.
	prov.MustComputeTokens(tokens.SingleModule("random_", "index",
		func(module, name string) (string, error) {
			return tokens.MakeStandard("random")(module, "Random"+name)
		}))
	return prov
}

func idFromProperty(key resource.PropertyKey) tfbridge.ComputeID {
	return func(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
		v, ok := state[key]
		if !ok {
			return "", fmt.Errorf("state has no %q property to derive the ID from", key)
		}
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsString() {
			return "", fmt.Errorf("property %q is not a string", key)
		}
		return resource.ID(v.StringValue()), nil
	}
}

// schema generates the Pulumi package schema from the provider info.
func schema(context.Context, plugin.GetSchemaRequest) ([]byte, error) {
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	res, err := tfgen.GenerateSchemaWithOptions(tfgen.GenerateSchemaOptions{
		ProviderInfo:    providerInfo(),
		DiagnosticsSink: sink,
		XInMemoryDocs:   true,
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(res.PackageSpec)
}

func main() {
	if version == "" {
		panic("pulumi-resource-random: built without -X main.version=...")
	}
	pftfbridge.Main(context.Background(), "random", providerInfo(),
		pftfbridge.ProviderMetadata{XGetSchema: schema})
}
