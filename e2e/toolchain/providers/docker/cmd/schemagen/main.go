// Command schemagen writes the Pulumi package schema of the glue provider
// (generated in-process with the bridge's tfgen; docs come only from the
// Terraform schema descriptions).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/terraform-providers/terraform-provider-docker/pulumiglue/glue/schemagen"
)

func main() {
	out := flag.String("out", "-", "output file ('-' for stdout)")
	version := flag.String("version", "5.2.0", "provider version recorded in the schema")
	flag.Parse()

	spec, err := schemagen.Schema(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	data, err := json.MarshalIndent(spec, "", "    ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	data = append(data, '\n')
	if *out == "-" {
		_, err = os.Stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
