// Command pulumi-resource-postgresql (built by e2e/toolchain/build.sh) serves
// the Terraform provider cyrilgdn/terraform-provider-postgresql as a Pulumi
// resource provider through pulumi-terraform-bridge, so the e2e suite can run
// the @pulumi/postgresql npm SDK without downloading a plugin.
//
// Tokens follow the npm SDK: postgresql_<x> -> postgresql:index/<x>:<X>,
// data sources postgresql_<x> -> postgresql:index/get<X>:get<X>. The Pulumi
// schema is generated in-process by the bridge at start-up (no tfgen step, no
// generated file).
package main

import (
	"encoding/json"
	"io"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	ptokens "github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/contract"

	// The upstream module declares this path in its go.mod; go.mod replaces it
	// with github.com/cyrilgdn/terraform-provider-postgresql (served by the proxy).
	"github.com/terraform-providers/terraform-provider-postgresql/postgresql"
)

// version is the version this plugin reports to the Pulumi engine. build.sh
// sets it with -ldflags "-X main.version=<npm @pulumi/postgresql pulumi.version>".
var version string

func providerInfo() tfbridge.ProviderInfo {
	token := tokens.MakeStandard("postgresql")
	mustToken := func(name string) string {
		tok, err := token("index", name)
		contract.AssertNoErrorf(err, "token for %s", name)
		return tok
	}

	prov := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(postgresql.Provider()),
		Name:    "postgresql",
		Version: version,
		Config: map[string]*tfbridge.SchemaInfo{
			// Same defaults the npm SDK applies client-side (provider.js).
			"sslmode": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"PGSSLMODE"}}},
			"connect_timeout": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"PGCONNECT_TIMEOUT"}, Value: 180,
			}},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			// A grant cannot coexist with its replacement (same key).
			"postgresql_grant": {DeleteBeforeReplace: true},
		},
		EnableZeroDefaultSchemaVersion: true,
		EnableAccurateBridgePreview:    true,
	}

	// The npm SDK has both DefaultPrivileges and the legacy DefaultPrivileg
	// (an alias of the former) for postgresql_default_privileges.
	prov.RenameResourceWithAlias("postgresql_default_privileges",
		ptokens.Type(mustToken("DefaultPrivileg")), ptokens.Type(mustToken("DefaultPrivileges")),
		"index", "index", nil)

	prov.MustComputeTokens(tokens.SingleModule("postgresql_", "index", token))

	// name of Role, Database, Schema, ... is optional in the npm SDK: the
	// engine auto-names it (max 255 chars, "-" separator).
	prov.SetAutonaming(255, "-")
	return prov
}

func main() {
	if version == "" {
		panic("pulumi-resource-postgresql: built without -X main.version=...")
	}
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	res, err := tfgen.GenerateSchemaWithOptions(tfgen.GenerateSchemaOptions{
		ProviderInfo:    providerInfo(),
		DiagnosticsSink: sink,
		XInMemoryDocs:   true,
	})
	contract.AssertNoErrorf(err, "generating the Pulumi schema")
	schema, err := json.Marshal(res.PackageSpec)
	contract.AssertNoErrorf(err, "encoding the Pulumi schema")

	tfbridge.Main("postgresql", version, providerInfo(), schema)
}
