package schemagen

// This check compares the schema our glue provider generates (in memory, with
// the bridge's tfgen) against the TypeScript declarations of the @pulumi/docker
// npm SDK the project installs. The SDK serialises exactly the property names
// it declares, so every declared name must exist in our schema with the same
// shape (scalar / list / map / nested object), recursively.
//
// SDK directory: $DOCKER_SDK_DIR, else the nearest node_modules/@pulumi/docker
// above the working directory.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	pschema "github.com/pulumi/pulumi/pkg/v3/codegen/schema"

	"github.com/terraform-providers/terraform-provider-docker/pulumiglue/glue"
)

// The types the calendars-caldav program uses: a mismatch in one of these
// (or in a type nested in them) fails the test. Mismatches elsewhere fail too
// unless DOCKER_SDK_CHECK=core.
var coreTokens = map[string]bool{
	"docker:index/container:Container":     true,
	"docker:index/network:Network":         true,
	"docker:index/volume:Volume":           true,
	"docker:index/remoteImage:RemoteImage": true,
	"docker:index/getNetwork:getNetwork":   true,
}

// SDK resources that the bridge cannot provide (implemented natively in Go
// inside pulumi-docker, not in Terraform).
var nativeOnly = map[string]bool{
	"docker:index/image:Image": true,
}

// ---------------------------------------------------------------- d.ts side

type tsProp struct {
	name     string
	optional bool
	typ      string
}

type tsDecl struct {
	kind  string // "interface" or "class"
	props []tsProp
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`(?m)^\s*//.*$`)
	declHead     = regexp.MustCompile(`export\s+(?:declare\s+)?(interface|class)\s+(\w+)[^{]*\{`)
	memberRe     = regexp.MustCompile(`(?s)^(readonly\s+)?([A-Za-z_$][\w$]*)(\?)?\s*:\s*(.*)$`)
)

// splitTop splits s at sep characters that are not nested in (), {}, <>, [].
func splitTop(s string, sep byte) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '(', '{', '<', '[':
			depth++
		case ')', '}', ']':
			depth--
		case '>':
			if i > 0 && s[i-1] == '=' { // arrow, not a generic
				continue
			}
			depth--
		default:
			if c == sep && depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseDTS(src string) map[string]tsDecl {
	src = blockComment.ReplaceAllString(src, "")
	src = lineComment.ReplaceAllString(src, "")
	decls := map[string]tsDecl{}
	for _, m := range declHead.FindAllStringSubmatchIndex(src, -1) {
		kind, name := src[m[2]:m[3]], src[m[4]:m[5]]
		open := m[1] - 1
		depth, end := 0, -1
		for i := open; i < len(src); i++ {
			if src[i] == '{' {
				depth++
			} else if src[i] == '}' {
				depth--
				if depth == 0 {
					end = i
					break
				}
			}
		}
		if end < 0 {
			continue
		}
		d := tsDecl{kind: kind}
		for _, member := range splitTop(src[open+1:end], ';') {
			member = strings.TrimSpace(member)
			if member == "" || strings.HasPrefix(member, "static ") ||
				strings.HasPrefix(member, "constructor") || strings.HasPrefix(member, "private ") {
				continue
			}
			mm := memberRe.FindStringSubmatch(member)
			if mm == nil {
				continue
			}
			if kind == "class" && mm[1] == "" {
				continue
			}
			if strings.HasPrefix(mm[2], "__") {
				continue
			}
			d.props = append(d.props, tsProp{name: mm[2], optional: mm[3] == "?", typ: mm[4]})
		}
		decls[name] = d
	}
	return decls
}

// shape is a structural type common to both sides.
type shape struct {
	kind string // string, number, boolean, any, array, map, object
	elem *shape
	ref  string // object: TS interface name or schema type token
	file string // object, TS side: "input" or "output"
}

func (s *shape) String() string {
	switch s.kind {
	case "array":
		return s.elem.String() + "[]"
	case "map":
		return "map<" + s.elem.String() + ">"
	case "object":
		return "object(" + s.ref + ")"
	}
	return s.kind
}

var collapseWS = regexp.MustCompile(`\s+`)

func tsShape(t string) *shape {
	t = strings.TrimSpace(collapseWS.ReplaceAllString(t, " "))
	for {
		changed := false
		for _, w := range []string{"pulumi.Input<", "pulumi.Output<"} {
			if strings.HasPrefix(t, w) && strings.HasSuffix(t, ">") {
				t = strings.TrimSpace(t[len(w) : len(t)-1])
				changed = true
			}
		}
		// drop "| undefined" and other unions (keep the first real member)
		if alts := splitTop(t, '|'); len(alts) > 1 {
			var keep []string
			for _, a := range alts {
				if a = strings.TrimSpace(a); a != "undefined" && a != "null" {
					keep = append(keep, a)
				}
			}
			if len(keep) > 0 {
				t = keep[0]
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	switch {
	case strings.HasSuffix(t, "[]"):
		return &shape{kind: "array", elem: tsShape(t[:len(t)-2])}
	case strings.HasPrefix(t, "{") && strings.Contains(t, "[key: string]:"):
		inner := t[strings.Index(t, "[key: string]:")+len("[key: string]:") : strings.LastIndex(t, "}")]
		inner = strings.TrimSuffix(strings.TrimSpace(inner), ";")
		return &shape{kind: "map", elem: tsShape(inner)}
	case strings.HasPrefix(t, "inputs.") || strings.HasPrefix(t, "outputs."):
		file, name, _ := strings.Cut(t, ".")
		return &shape{kind: "object", ref: name, file: strings.TrimSuffix(file, "s")}
	case t == "string" || t == "number" || t == "boolean" || t == "any":
		return &shape{kind: t}
	case strings.HasPrefix(t, "enums."):
		return &shape{kind: "string"}
	}
	return &shape{kind: "unknown:" + t}
}

// ------------------------------------------------------------- schema side

func specShape(t pschema.TypeSpec) *shape {
	switch {
	case t.Ref == "pulumi.json#/Any":
		return &shape{kind: "any"}
	case strings.HasPrefix(t.Ref, "#/types/"):
		return &shape{kind: "object", ref: strings.TrimPrefix(t.Ref, "#/types/")}
	case t.Ref != "":
		return &shape{kind: "unknown:" + t.Ref}
	case t.Type == "array":
		return &shape{kind: "array", elem: specShape(*t.Items)}
	case t.Type == "object" && t.AdditionalProperties != nil:
		return &shape{kind: "map", elem: specShape(*t.AdditionalProperties)}
	case t.Type == "object":
		return &shape{kind: "map", elem: &shape{kind: "any"}}
	case t.Type == "integer" || t.Type == "number":
		return &shape{kind: "number"}
	case len(t.OneOf) > 0:
		return specShape(t.OneOf[0])
	}
	return &shape{kind: t.Type}
}

// ----------------------------------------------------------------- compare

type checker struct {
	spec    pschema.PackageSpec
	inputs  map[string]tsDecl
	outputs map[string]tsDecl
	seen    map[string]bool
	// problems per top-level token
	problems map[string][]string
	extras   map[string][]string
	tok      string
	compared int // properties compared (sanity: the parser found something)
}

func (c *checker) fail(format string, a ...any) {
	c.problems[c.tok] = append(c.problems[c.tok], fmt.Sprintf(format, a...))
}

// compareProps compares declared TS members with schema properties.
// required: schema's required list, checked against TS optionality when
// checkRequired is set (inputs only: an extra required input would make the
// provider reject programs the SDK accepts).
func (c *checker) compareProps(where string, ts []tsProp, props map[string]pschema.PropertySpec,
	required []string, checkRequired bool,
) {
	req := map[string]bool{}
	for _, r := range required {
		req[r] = true
	}
	declared := map[string]bool{}
	for _, p := range ts {
		declared[p.name] = true
		c.compared++
		sp, ok := props[p.name]
		if !ok {
			c.fail("%s.%s: declared by the SDK, missing from our schema", where, p.name)
			continue
		}
		if checkRequired && p.optional == req[p.name] {
			c.fail("%s.%s: SDK optional=%v, our schema required=%v", where, p.name, p.optional, req[p.name])
		}
		c.compareShape(where+"."+p.name, tsShape(p.typ), specShape(sp.TypeSpec))
	}
	var extra []string
	for name := range props {
		if !declared[name] {
			extra = append(extra, where+"."+name)
		}
	}
	sort.Strings(extra)
	c.extras[c.tok] = append(c.extras[c.tok], extra...)
}

func (c *checker) compareShape(where string, ts, sp *shape) {
	if ts.kind != sp.kind {
		c.fail("%s: SDK shape %s, our schema %s", where, ts, sp)
		return
	}
	switch ts.kind {
	case "array", "map":
		c.compareShape(where+"[]", ts.elem, sp.elem)
	case "object":
		key := ts.file + ":" + ts.ref + "=" + sp.ref
		if c.seen[key] {
			return
		}
		c.seen[key] = true
		decls := c.inputs
		if ts.file == "output" {
			decls = c.outputs
		}
		d, ok := decls[ts.ref]
		if !ok {
			c.fail("%s: SDK type %s.%s not found", where, ts.file, ts.ref)
			return
		}
		typ, ok := c.spec.Types[sp.ref]
		if !ok {
			c.fail("%s: schema type %s not found", where, sp.ref)
			return
		}
		c.compareProps(where+"{"+ts.ref+"}", d.props, typ.Properties, typ.Required, ts.file == "input")
	}
}

// ------------------------------------------------------------------- test

func sdkDir(t *testing.T) string {
	if d := os.Getenv("DOCKER_SDK_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "node_modules", "@pulumi", "docker")
		if _, err := os.Stat(filepath.Join(cand, "package.json")); err == nil {
			return cand
		}
		if filepath.Dir(d) == d {
			t.Fatalf("node_modules/@pulumi/docker not found above %s (run npm ci, or set DOCKER_SDK_DIR)", wd)
		}
	}
}

var (
	schemaOnce sync.Once
	schemaSpec pschema.PackageSpec
	schemaErr  error
)

func testSchema(t *testing.T) pschema.PackageSpec {
	schemaOnce.Do(func() { schemaSpec, schemaErr = Schema(glue.SDKVersion) })
	if schemaErr != nil {
		t.Fatalf("generating schema: %v", schemaErr)
	}
	return schemaSpec
}

func readDTS(t *testing.T, path string) map[string]tsDecl {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseDTS(string(b))
}

func TestSDKVersionMatches(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sdkDir(t), "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Pulumi struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"pulumi"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Pulumi.Name != glue.PackageName || pkg.Pulumi.Version != glue.SDKVersion {
		t.Fatalf("SDK declares plugin %s %s; glue builds %s %s (update SDKVersion and BUILD.md)",
			pkg.Pulumi.Name, pkg.Pulumi.Version, glue.PackageName, glue.SDKVersion)
	}
}

var (
	classRe      = regexp.MustCompile(`export declare class (\w+) extends pulumi\.(CustomResource|ProviderResource)`)
	funcNoArgsRe = regexp.MustCompile(`export declare function (get\w+)\(`)
)

func TestNamesMatchSDK(t *testing.T) {
	dir := sdkDir(t)
	spec := testSchema(t)
	c := &checker{
		spec:     spec,
		inputs:   readDTS(t, filepath.Join(dir, "types", "input.d.ts")),
		outputs:  readDTS(t, filepath.Join(dir, "types", "output.d.ts")),
		seen:     map[string]bool{},
		problems: map[string][]string{},
		extras:   map[string][]string{},
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	sdkTokens := map[string]bool{}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".d.ts")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(raw)
		decls := parseDTS(src)
		if m := classRe.FindStringSubmatch(src); m != nil {
			cls := m[1]
			if m[2] == "ProviderResource" {
				c.tok = "provider"
				sdkTokens[c.tok] = true
				c.compareProps("Provider", decls["ProviderArgs"].props, spec.Provider.InputProperties,
					spec.Provider.RequiredInputs, true)
				continue
			}
			tok := "docker:index/" + base + ":" + cls
			sdkTokens[tok] = true
			c.tok = tok
			if nativeOnly[tok] {
				continue
			}
			res, ok := spec.Resources[tok]
			if !ok {
				c.fail("resource %s: missing from our schema", tok)
				continue
			}
			c.compareProps(cls+"Args", decls[cls+"Args"].props, res.InputProperties, res.RequiredInputs, true)
			c.compareProps(cls, decls[cls].props, res.Properties, nil, false)
			if res.StateInputs != nil {
				c.compareProps(cls+"State", decls[cls+"State"].props, res.StateInputs.Properties, nil, false)
			}
			continue
		}
		if m := funcNoArgsRe.FindStringSubmatch(src); m != nil && m[1] == base {
			fn := m[1]
			tok := "docker:index/" + fn + ":" + fn
			sdkTokens[tok] = true
			c.tok = tok
			f, ok := spec.Functions[tok]
			if !ok {
				c.fail("function %s: missing from our schema", tok)
				continue
			}
			up := strings.ToUpper(fn[:1]) + fn[1:]
			if args, ok := decls[up+"Args"]; ok && f.Inputs != nil {
				c.compareProps(up+"Args", args.props, f.Inputs.Properties, f.Inputs.Required, true)
			} else if ok {
				c.fail("%sArgs declared by the SDK, our function takes no inputs", up)
			}
			if f.Outputs != nil {
				c.compareProps(up+"Result", decls[up+"Result"].props, f.Outputs.Properties, nil, false)
			}
		}
	}

	// every token of ours should be one the SDK knows (informational)
	var ours []string
	for tok := range spec.Resources {
		if !sdkTokens[tok] {
			ours = append(ours, tok)
		}
	}
	for tok := range spec.Functions {
		if !sdkTokens[tok] {
			ours = append(ours, tok)
		}
	}
	sort.Strings(ours)
	for _, tok := range ours {
		t.Logf("info: %s exists in our provider but not in the SDK", tok)
	}

	coreOnly := os.Getenv("DOCKER_SDK_CHECK") == "core"
	var toks []string
	for tok := range sdkTokens {
		toks = append(toks, tok)
	}
	sort.Strings(toks)
	checked, failed := 0, 0
	for _, tok := range toks {
		if nativeOnly[tok] {
			t.Logf("skip: %s is native-only in pulumi-docker (not bridged)", tok)
			continue
		}
		checked++
		for _, e := range c.extras[tok] {
			t.Logf("info: %s: %s exists in our schema but not in the SDK", tok, e)
		}
		probs := c.problems[tok]
		if len(probs) == 0 {
			continue
		}
		failed++
		for _, p := range probs {
			if coreTokens[tok] || !coreOnly {
				t.Errorf("%s: %s", tok, p)
			} else {
				t.Logf("non-core: %s: %s", tok, p)
			}
		}
	}
	for tok := range coreTokens {
		if !sdkTokens[tok] {
			t.Errorf("core token %s not found in the SDK d.ts files", tok)
		}
	}
	t.Logf("checked %d SDK resources/functions (+provider config), %d properties compared; %d with mismatches",
		checked, c.compared, failed)
	if c.compared < 500 {
		t.Errorf("only %d properties compared: the .d.ts parser is probably broken", c.compared)
	}
}
