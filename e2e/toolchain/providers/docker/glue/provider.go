// Package glue maps the kreuzwerker Terraform Docker provider onto the Pulumi
// names used by the @pulumi/docker 5.2.0 Node SDK, using
// pulumi-terraform-bridge. It is our own glue for the e2e toolchain: it is not
// the upstream pulumi-docker provider (see ../BUILD.md for the differences).
package glue

import (
	"context"
	"os"
	"unicode"

	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	bridgetokens "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"

	// Allowed by Go's internal-package rule because this module's path lies
	// under github.com/terraform-providers/terraform-provider-docker (see go.mod).
	tfdocker "github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

const (
	// SDKVersion is the plugin version the @pulumi/docker npm SDK asks for
	// (package.json "pulumi.version"); the binary reports it by default.
	SDKVersion = "5.2.0"
	// PackageName is the Pulumi package name.
	PackageName = "docker"
	// indexMod is the only module the @pulumi/docker SDK uses for bridged types.
	indexMod = "index"
	// DefaultHost is used when neither docker:host nor DOCKER_HOST is set.
	DefaultHost = "unix:///var/run/docker.sock"
)

// TerraformProvider returns the SDKv2 Terraform provider we wrap. Only the
// SDKv2 half of kreuzwerker's (muxed) provider is exposed: the
// plugin-framework half (docker_compose, data sources docker_containers and
// docker_registry_image_tags) has no counterpart in @pulumi/docker 5.2.0.
func TerraformProvider() *schema.Provider {
	return tfdocker.New("pulumi-e2e-glue")()
}

func lowerFirst(s string) string {
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// resourceTok builds docker:index/<camel>:<Pascal>.
func resourceTok(name string) tokens.Type {
	return tokens.Type(PackageName + ":" + indexMod + "/" + lowerFirst(name) + ":" + name)
}

// functionTok builds docker:index/<fn>:<fn>.
func functionTok(name string) tokens.ModuleMember {
	return tokens.ModuleMember(PackageName + ":" + indexMod + "/" + name + ":" + name)
}

// field is a short helper for a property rename.
func field(name string) *tfbridge.SchemaInfo { return &tfbridge.SchemaInfo{Name: name} }

// Provider returns the bridge configuration. Besides tokens, only four names
// need pinning (container command and networks_advanced, the provider's
// registry_auth, and docker_image name, which must stay required rather than
// auto-named): the bridge's automatic naming yields every other name and shape
// the @pulumi/docker 5.2.0 SDK declares, which glue/schemagen/sdknames_test.go
// verifies. version is reported to Pulumi and must match the SDK's plugin
// version (SDKVersion).
func Provider(version string) tfbridge.ProviderInfo {
	prov := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(TerraformProvider()),
		Name:        PackageName,
		Version:     version,
		Description: "e2e glue: Pulumi bridge over kreuzwerker/terraform-provider-docker",
		Keywords:    []string{"pulumi", "docker"},
		License:     "Apache-2.0",
		GitHubOrg:   "kreuzwerker",
		Repository:  "https://github.com/kreuzwerker/terraform-provider-docker",
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {
				Default: &tfbridge.DefaultInfo{
					EnvVars: []string{"DOCKER_HOST"},
					ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (interface{}, error) {
						if v := os.Getenv("DOCKER_HOST"); v != "" {
							return v, nil
						}
						return DefaultHost, nil
					},
				},
			},
			// The SDK exposes a list named registryAuth (no plural "s").
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_buildx_builder": {Tok: resourceTok("BuildxBuilder")},
			"docker_config":         {Tok: resourceTok("ServiceConfig")},
			"docker_container": {
				Tok: resourceTok("Container"),
				// A container name is unique per engine: replace by
				// delete-then-create, like the real provider.
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					// One command line, not a plural list.
					"command":           field("command"),
					"networks_advanced": field("networksAdvanced"),
				},
			},
			"docker_image": {
				Tok: resourceTok("RemoteImage"),
				Fields: map[string]*tfbridge.SchemaInfo{
					"name": field("name"),
				},
			},
			"docker_network":        {Tok: resourceTok("Network")},
			"docker_plugin":         {Tok: resourceTok("Plugin")},
			"docker_registry_image": {Tok: resourceTok("RegistryImage")},
			"docker_secret":         {Tok: resourceTok("Secret")},
			"docker_service":        {Tok: resourceTok("Service")},
			"docker_tag":            {Tok: resourceTok("Tag")},
			"docker_volume":         {Tok: resourceTok("Volume")},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image":                    {Tok: functionTok("getRemoteImage")},
			"docker_logs":                     {Tok: functionTok("getLogs")},
			"docker_network":                  {Tok: functionTok("getNetwork")},
			"docker_plugin":                   {Tok: functionTok("getPlugin")},
			"docker_registry_image":           {Tok: functionTok("getRegistryImage")},
			"docker_registry_image_manifests": {Tok: functionTok("getRegistryImageManifests")},
		},
	}

	// Anything upstream adds later still gets a token (docker:index/<x>:<X>).
	prov.MustComputeTokens(bridgetokens.SingleModule("docker_", indexMod,
		bridgetokens.MakeStandard(PackageName)))
	// Optional "name" inputs get a random-suffixed default, as in the SDK.
	prov.SetAutonaming(255, "-")
	return prov
}
