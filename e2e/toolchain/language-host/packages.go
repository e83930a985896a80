package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// GetRequiredPackages lists the resource plugins the program needs: every
// package.json under a node_modules directory below the program directory
// whose "pulumi" field has "resource": true (e.g. @pulumi/random asks for
// random 4.21.2). The engine makes sure those plugins are available and uses
// the versions for default providers.
func (h *host) GetRequiredPackages(
	_ context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	info, err := programInfo("GetRequiredPackages", req.GetInfo())
	if err != nil {
		return nil, err
	}
	found := findPulumiPackages(info.GetProgramDirectory())
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range found {
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Name:             p.name,
			Kind:             "resource",
			Version:          p.version,
			Server:           p.server,
			Parameterization: p.parameterization,
		})
	}
	return resp, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages (no
// parameterization); CLIs only call it when GetRequiredPackages is
// unimplemented. (The official host 3.248 answers Unimplemented here.)
func (h *host) GetRequiredPlugins(
	_ context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetPwd()
	}
	if dir == "" {
		return nil, fmt.Errorf("GetRequiredPlugins: the request has no program directory")
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, p := range findPulumiPackages(dir) {
		if p.parameterization != nil {
			continue // cannot be expressed as a plain plugin
		}
		resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
			Name: p.name, Kind: "resource", Version: p.version, Server: p.server,
		})
	}
	return resp, nil
}

// packageJSON holds the fields of a package.json this host reads.
type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource         bool   `json:"resource"`
		Name             string `json:"name"`
		Version          string `json:"version"`
		Server           string `json:"server"`
		Parameterization *struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Value   []byte `json:"value"` // base64 in JSON
		} `json:"parameterization"`
	} `json:"pulumi"`
}

type pulumiPackage struct {
	name, version, server string
	parameterization      *pulumirpc.PackageParameterization
	path                  string // the package.json it came from
}

// findPulumiPackages walks dir (following symbolic links, each directory
// once) and returns the plugin packages found in node_modules, deduplicated
// by name, version, server and parameterization, sorted by name. Nested
// policy packs (a directory with PulumiPolicy.yaml) are not entered: their
// plugins are not the program's. Errors (unreadable directories, malformed
// package.json) are logged and skipped, as the official host does; a
// resource package whose plugin name or version cannot be derived is reported
// on stderr, which the CLI shows.
func findPulumiPackages(dir string) []pulumiPackage {
	w := walker{visited: map[string]bool{}, seen: map[string]bool{}, sdkVersions: map[string]string{}}
	w.walk(dir, false)
	sort.SliceStable(w.found, func(i, j int) bool {
		if w.found[i].name != w.found[j].name {
			return w.found[i].name < w.found[j].name
		}
		return w.found[i].version < w.found[j].version
	})
	w.warnIncompatibleSDKs()
	return w.found
}

type walker struct {
	visited     map[string]bool // real paths of directories already walked
	seen        map[string]bool // dedup key of packages already found
	found       []pulumiPackage
	sdkVersions map[string]string // package.json path -> version of each @pulumi/pulumi
}

func (w *walker) walk(dir string, inNodeModules bool) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		logging.V(3).Infof("GetRequiredPackages: %v", err)
		return
	}
	if real, err = filepath.Abs(real); err != nil || w.visited[real] {
		return
	}
	w.visited[real] = true

	entries, err := os.ReadDir(dir)
	if err != nil {
		logging.V(3).Infof("GetRequiredPackages: %v", err)
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(path)
			if err != nil {
				logging.V(3).Infof("GetRequiredPackages: %v", err)
				continue
			}
			isDir = st.IsDir()
		}
		switch {
		case isDir:
			if e.Name() == ".git" || isPolicyPack(path) {
				continue
			}
			w.walk(path, inNodeModules || filepath.Base(dir) == "node_modules")
		case inNodeModules && e.Name() == "package.json":
			w.readPackage(path)
		}
	}
}

func isPolicyPack(dir string) bool {
	for _, name := range []string{"PulumiPolicy.yaml", "PulumiPolicy.yml", "PulumiPolicy.json"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

func (w *walker) readPackage(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		logging.V(3).Infof("GetRequiredPackages: %v", err)
		return
	}
	var pj packageJSON
	if err := json.Unmarshal(b, &pj); err != nil {
		// Test fixtures of some npm packages are not valid package.json
		// files: skipped, logged only (as the official host does).
		logging.V(3).Infof("GetRequiredPackages: skipping %s: %v", path, err)
		return
	}
	if pj.Name == "@pulumi/pulumi" {
		w.sdkVersions[path] = pj.Version
	}
	if !pj.Pulumi.Resource {
		return
	}
	p, err := pluginOf(pj)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: skipping plugin package %s: %v\n", path, err)
		return
	}
	p.path = path
	key := strings.Join([]string{p.name, p.version, p.server}, "\x00")
	if p.parameterization != nil {
		key += "\x00" + p.parameterization.Name + "\x00" + p.parameterization.Version + "\x00" + string(p.parameterization.Value)
	}
	if !w.seen[key] {
		w.seen[key] = true
		w.found = append(w.found, p)
	}
}

// pluginOf derives the plugin of a resource package: pulumi.name, else the
// npm name without the @pulumi/ scope (other scopes must set pulumi.name);
// pulumi.version, else the package version, with a "v" prefix.
func pluginOf(pj packageJSON) (pulumiPackage, error) {
	name := pj.Pulumi.Name
	if name == "" {
		switch {
		case pj.Name == "":
			return pulumiPackage{}, errors.New(`missing "name"`)
		case strings.HasPrefix(pj.Name, "@pulumi/"):
			name = strings.TrimPrefix(pj.Name, "@pulumi/")
		default:
			return pulumiPackage{}, fmt.Errorf(`third-party plugin package %s must set "pulumi": {"name": ...}`, pj.Name)
		}
	}
	version := pj.Pulumi.Version
	if version == "" {
		version = pj.Version
	}
	if version == "" {
		return pulumiPackage{}, errors.New(`missing "version"`)
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	p := pulumiPackage{name: name, version: version, server: pj.Pulumi.Server}
	if pp := pj.Pulumi.Parameterization; pp != nil {
		p.parameterization = &pulumirpc.PackageParameterization{Name: pp.Name, Version: pp.Version, Value: pp.Value}
	}
	return p, nil
}

// warnIncompatibleSDKs reports, on stderr (shown by the CLI), copies of
// @pulumi/pulumi whose major versions differ: they would not share state.
func (w *walker) warnIncompatibleSDKs() {
	paths := make([]string, 0, len(w.sdkVersions))
	for p := range w.sdkVersions {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths[min(1, len(paths)):] {
		first, v := w.sdkVersions[paths[0]], w.sdkVersions[p]
		if major(first) != major(v) {
			fmt.Fprintf(os.Stderr, "Found incompatible versions of @pulumi/pulumi: %s at %s and %s at %s\n",
				first, paths[0], v, p)
			return
		}
	}
}

func major(v string) string {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexByte(v, '.'); i >= 0 {
		return v[:i]
	}
	return v
}
