package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodeOptions are the runtime options of Pulumi.yaml (runtime.options) this
// host understands; they reach it as ProgramInfo.options.
type nodeOptions struct {
	typescript     bool   // typescript (default true): PULUMI_NODEJS_TYPESCRIPT=true, ts-node compiles .ts
	tsconfig       string // tsconfig: PULUMI_NODEJS_TSCONFIG_PATH
	nodeargs       []string
	packagemanager string // packagemanager: auto (default), npm, yarn, pnpm or bun
}

// option reads runtime option name from raw, when present, as a T ("a boolean",
// "a string": what is named in the error when it has another type).
func option[T any](raw map[string]any, name, kind string) (value T, present bool, err error) {
	v, ok := raw[name]
	if !ok {
		return value, false, nil
	}
	value, ok = v.(T)
	if !ok {
		return value, true, fmt.Errorf("runtime option %s must be %s, got %v", name, kind, v)
	}
	return value, true, nil
}

func parseOptions(raw map[string]any) (nodeOptions, error) {
	opts := nodeOptions{typescript: true, packagemanager: "auto"}
	typescript, ok, err := option[bool](raw, "typescript", "a boolean")
	if err != nil {
		return opts, err
	} else if ok {
		opts.typescript = typescript
	}
	if opts.tsconfig, _, err = option[string](raw, "tsconfig", "a string"); err != nil {
		return opts, err
	}
	nodeargs, ok, err := option[string](raw, "nodeargs", "a string")
	if err != nil {
		return opts, err
	} else if ok {
		if opts.nodeargs, err = splitArgs(nodeargs); err != nil {
			return opts, fmt.Errorf("runtime option nodeargs: %w", err)
		}
	}
	pm, ok, err := option[string](raw, "packagemanager", "a string")
	if err != nil {
		return opts, err
	} else if ok {
		switch pm {
		case "auto", "npm", "yarn", "pnpm", "bun":
			opts.packagemanager = pm
		default:
			return opts, fmt.Errorf("runtime option packagemanager must be one of auto, npm, yarn, pnpm or bun, got %q", pm)
		}
	}
	return opts, nil
}

// typeScriptEnv is what @pulumi/pulumi/cmd/run (and run-plugin) read to
// compile TypeScript with ts-node: PULUMI_NODEJS_TYPESCRIPT and
// PULUMI_NODEJS_TSCONFIG_PATH.
func (o nodeOptions) typeScriptEnv() []string {
	var env []string
	if o.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if o.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+o.tsconfig)
	}
	return env
}

// packageManager resolves "auto" from the lock files in dir.
func (o nodeOptions) packageManager(dir string) string {
	if o.packagemanager != "auto" {
		return o.packagemanager
	}
	for _, c := range []struct{ file, pm string }{
		{"yarn.lock", "yarn"},
		{"pnpm-lock.yaml", "pnpm"},
		{"bun.lock", "bun"},
		{"bun.lockb", "bun"},
	} {
		if _, err := os.Stat(filepath.Join(dir, c.file)); err == nil {
			return c.pm
		}
	}
	return "npm"
}

// splitArgs splits a command line the way a POSIX shell splits words, without
// expansions: blanks separate words, '…' is literal, "…" keeps blanks and
// honours \" \\ \$ \`, and a backslash outside quotes escapes the next byte.
func splitArgs(s string) ([]string, error) {
	var (
		args    []string
		word    strings.Builder
		inWord  bool
		quote   byte // 0, '\'' or '"'
		escaped bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
			if c == '\n' { // line continuation
				continue
			}
			if quote == '"' && !strings.ContainsRune("\"\\$`", rune(c)) {
				word.WriteByte('\\')
			}
			word.WriteByte(c)
			inWord = true
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case quote == '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				word.WriteByte(c)
			}
		case c == '\\':
			escaped = true
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if escaped {
		return nil, fmt.Errorf("trailing backslash in %q", s)
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		args = append(args, word.String())
	}
	return args, nil
}
