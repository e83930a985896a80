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

func parseOptions(raw map[string]any) (nodeOptions, error) {
	opts := nodeOptions{typescript: true, packagemanager: "auto"}
	if v, ok := raw["typescript"]; ok {
		b, ok := v.(bool)
		if !ok {
			return opts, fmt.Errorf("runtime option typescript must be a boolean, got %v", v)
		}
		opts.typescript = b
	}
	if v, ok := raw["tsconfig"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, fmt.Errorf("runtime option tsconfig must be a string, got %v", v)
		}
		opts.tsconfig = s
	}
	if v, ok := raw["nodeargs"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, fmt.Errorf("runtime option nodeargs must be a string, got %v", v)
		}
		args, err := splitArgs(s)
		if err != nil {
			return opts, fmt.Errorf("runtime option nodeargs: %w", err)
		}
		opts.nodeargs = args
	}
	if v, ok := raw["packagemanager"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, fmt.Errorf("runtime option packagemanager must be a string, got %v", v)
		}
		switch s {
		case "auto", "npm", "yarn", "pnpm", "bun":
			opts.packagemanager = s
		default:
			return opts, fmt.Errorf("runtime option packagemanager must be one of auto, npm, yarn, pnpm or bun, got %q", s)
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
