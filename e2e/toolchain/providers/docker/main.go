// Command pulumi-resource-docker is the e2e toolchain's own build of a Pulumi
// Docker resource provider: pulumi-terraform-bridge over
// kreuzwerker/terraform-provider-docker, named like @pulumi/docker 5.2.0.
package main

//go:generate go run -tags no_compose ./cmd/schemagen -out schema/schema.json

import (
	"embed"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"github.com/terraform-providers/terraform-provider-docker/pulumiglue/glue"
)

// version is set with -ldflags "-X main.version=..."; it must equal the
// pulumi.version of the @pulumi/docker npm package (the bridge refuses an
// empty one).
var version = glue.SDKVersion

//go:embed schema
var schemaDir embed.FS

func main() {
	pulumiSchema, err := schemaDir.ReadFile("schema/schema.json")
	if err != nil {
		// Still serves every resource; only GetSchema and the bridge's
		// input type-check warnings are lost.
		fmt.Fprintln(os.Stderr, "pulumi-resource-docker: no embedded schema (run `go generate .` before `go build`)")
		pulumiSchema = nil
	}
	tfbridge.Main(glue.PackageName, version, glue.Provider(version), pulumiSchema)
}
