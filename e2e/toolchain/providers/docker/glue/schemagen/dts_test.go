package schemagen

import "testing"

// The .d.ts reader must see through the SDK's wrappers; a regression here
// would make TestNamesMatchSDK vacuous.
func TestTSShapes(t *testing.T) {
	cases := map[string]string{
		"pulumi.Input<string | undefined>":                                      "string",
		"pulumi.Input<pulumi.Input<string>[] | undefined>":                      "string[]",
		"pulumi.Input<pulumi.Input<inputs.ContainerPort>[] | undefined>":        "object(ContainerPort)[]",
		"pulumi.Input<inputs.ContainerHealthcheck | undefined>":                 "object(ContainerHealthcheck)",
		"pulumi.Output<outputs.NetworkIpamConfig[]>":                            "object(NetworkIpamConfig)[]",
		"pulumi.Input<{\n [key: string]: pulumi.Input<string>;\n} | undefined>": "map<string>",
		"{ [key: string]: string; }":                                            "map<string>",
		"number":                                                                "number",
	}
	for in, want := range cases {
		if got := tsShape(in).String(); got != want {
			t.Errorf("tsShape(%q) = %s, want %s", in, got, want)
		}
	}

	decls := parseDTS(`
export declare class Foo extends pulumi.CustomResource {
    static get(name: string, id: pulumi.Input<pulumi.ID>, state?: FooState): Foo;
    /** doc */
    readonly bar: pulumi.Output<string>;
    readonly baz: pulumi.Output<{
        [key: string]: string;
    } | undefined>;
    constructor(name: string, args: FooArgs, opts?: pulumi.CustomResourceOptions);
}
export interface FooArgs {
    bar: pulumi.Input<string>;
    qux?: pulumi.Input<pulumi.Input<inputs.FooQux>[] | undefined>;
}`)
	if n := len(decls["Foo"].props); n != 2 {
		t.Errorf("class Foo: %d props, want 2: %+v", n, decls["Foo"].props)
	}
	args := decls["FooArgs"].props
	if len(args) != 2 || args[0].name != "bar" || args[0].optional || args[1].name != "qux" || !args[1].optional {
		t.Errorf("FooArgs parsed as %+v", args)
	}
}
