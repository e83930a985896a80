#!/usr/bin/env bash
# Regenerates e2e/toolchain/cli/go.mod and go.sum for PULUMI_VERSION of
# versions.env: the throwaway module build.sh builds the Pulumi CLI from.
# Run it after bumping PULUMI_VERSION (and @pulumi/pulumi), then review the
# diff and run build.sh. Needs Go and the Go module proxy.
#
# `go install github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@vX` cannot work:
# pkg/v3's go.mod has replace directives (sdk/v3 => ../sdk, a clipboard fork)
# and only a main module's replaces apply. So this module copies pkg/v3's
# non-local replace directives and requires pkg/v3 and sdk/v3 at vX.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
: "${PULUMI_VERSION:?versions.env must set PULUMI_VERSION}"
v=v$PULUMI_VERSION
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
command -v go >/dev/null 2>&1 || { echo "update-cli-module: Go is required" >&2; exit 1; }

echo "update-cli-module: reading github.com/pulumi/pulumi/pkg/v3@$v's go.mod" >&2
gomod=$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@$v" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[[ -f $gomod ]] || { echo "update-cli-module: cannot download github.com/pulumi/pulumi/pkg/v3@$v (refused by the proxy?)" >&2; exit 1; }
goline=$(awk '$1 == "go" { print; exit }' "$gomod")
# Replace directives of pkg/v3 whose target is a module (not a ../ path).
replaces=$(awk '
  /^replace \(/ { block = 1; next }
  block && /^\)/ { block = 0; next }
  block { print "replace " $0; next }
  /^replace / { print }' "$gomod" | awk '$0 !~ /=> *\.\.?\//')

cd "$here/cli"
{
  echo "module calendars-caldav/e2e/toolchain/cli"
  echo
  echo "$goline"
  echo
  echo "// Copied from github.com/pulumi/pulumi/pkg/v3@$v's go.mod by update-cli-module.sh:"
  echo "// only the main module's replace directives apply (the reason this module exists)."
  # shellcheck disable=SC2001 # multi-line
  sed 's/^replace[[:space:]]*/replace /' <<<"$replaces"
} >go.mod
rm -f go.sum
go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$v" "github.com/pulumi/pulumi/sdk/v3@$v" 2>&1 | grep -v '^go: \(downloading\|added\)' >&2 || true
go mod tidy 2>&1 | grep -v '^go: downloading' >&2 || true
grep -q "github.com/pulumi/pulumi/pkg/v3 $v" go.mod ||
  { echo "update-cli-module: go.mod does not require github.com/pulumi/pulumi/pkg/v3 $v; see the errors above" >&2; exit 1; }
echo "update-cli-module: wrote $here/cli/go.mod and go.sum for $v" >&2
