#!/usr/bin/env bash
# Builds the e2e toolchain from Go modules only (no GitHub, no plugin
# downloads): the Pulumi CLI, the Node.js language host pulumi-language-nodejs
# (our own, e2e/toolchain/language-host/) and one pulumi-resource-<name> binary
# per directory e2e/toolchain/providers/<name>/, versions from versions.env.
#
# Binaries land in a cache OUTSIDE the repository:
#   ${CALENDARS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-e2e}/toolchain/<key>/bin/
# where <key> hashes the versions, the Go version, the build recipe and every
# file of e2e/toolchain/cli, language-host and providers/<name> (a change
# rebuilds that binary only). The bin dir path is the LAST line of stdout; everything else goes
# to stderr:
#   bin=$(e2e/toolchain/build.sh | tail -1)
#
# Usage: e2e/toolchain/build.sh [--check] [--prune]
#   --check  only report whether the toolchain is up to date (exit 0) or not
#            (exit 1); builds nothing, prints nothing on stdout.
#   --prune  after a successful run, delete other <key> dirs and unused parts.
# Environment: CALENDARS_E2E_CACHE (cache root), CALENDARS_E2E_PROVIDERS
# (subset of TOOLCHAIN_PROVIDERS to build), GO (go command).
#
# Idempotent: a complete cache is reused as is ("toolchain up to date"); each
# binary is built in a temp dir and moved into place with an atomic rename;
# concurrent runs serialise on a lock file. See README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rel=${here#"$repo"/}   # e2e/toolchain

log() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: ERROR: %s\n' "$*" >&2; exit 1; }

check_only=false prune=false
for arg in "$@"; do
  case $arg in
    --check) check_only=true ;;
    --prune) prune=true ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

# ---------------------------------------------------------------- inputs ---
[[ -f $here/versions.env ]] || die "missing $rel/versions.env"
# shellcheck source=versions.env
. "$here/versions.env"
: "${PULUMI_VERSION:?versions.env must set PULUMI_VERSION}"
: "${TOOLCHAIN_PROVIDERS:?versions.env must set TOOLCHAIN_PROVIDERS}"
# CALENDARS_E2E_PROVIDERS="random postgresql" builds a subset (its own <key>).
TOOLCHAIN_PROVIDERS=${CALENDARS_E2E_PROVIDERS:-$TOOLCHAIN_PROVIDERS}

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || die "Go is required (not found: $GO); the toolchain is built from Go modules"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is required"

# A fixed, explicit build environment: the key covers it, and the user's
# GOFLAGS (e.g. -mod=mod) must not change what gets built. GOTOOLCHAIN=local:
# never try to download another Go toolchain.
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
goenv=$("$GO" env GOVERSION GOOS GOARCH) || die "'$GO env' failed"
# Each module's go directive is the oldest Go that builds it; GOTOOLCHAIN=local never
# downloads a newer one, so say which module needs which Go before any build starts.
have=$("$GO" env GOVERSION) && have=${have#go}
need=0 needed_by=
for mod in "$here"/cli/go.mod "$here"/language-host/go.mod "$here"/providers/*/go.mod; do
  version=$(awk '$1 == "go" { print $2; exit }' "$mod")
  if [[ -n $version && $(printf '%s\n%s\n' "$version" "$need" | sort -V | tail -1) == "$version" && $version != "$need" ]]; then
    need=$version needed_by=$rel/${mod#"$here"/}
  fi
done
if [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
  die "Go $need or later is required by $needed_by (found Go $have at $(command -v "$GO")); install a newer Go"
fi
recipe="format=1 ${goenv//$'\n'/ } CGO_ENABLED=$CGO_ENABLED GOFLAGS=$GOFLAGS"

# Version the npm side asks for: node_modules/@pulumi/<pkg>/package.json
# (pulumi.version, else version) when installed, else package-lock.json.
npm_version() {
  command -v node >/dev/null 2>&1 || { echo "?"; return; }
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const fs = require("fs"), [repo, pkg] = process.argv.slice(1);
    try {
      const j = JSON.parse(fs.readFileSync(`${repo}/node_modules/${pkg}/package.json`, "utf8"));
      console.log((j.pulumi && j.pulumi.version) || j.version); process.exit(0);
    } catch (e) {}
    try {
      const l = JSON.parse(fs.readFileSync(`${repo}/package-lock.json`, "utf8"));
      console.log(l.packages[`node_modules/${pkg}`].version); process.exit(0);
    } catch (e) {}
    console.log("?");' "$repo" "$1"
}

check_npm() { # <npm package> <version in versions.env> <versions.env variable>
  local got; got=$(npm_version "$1")
  if [[ $got == "?" ]]; then
    log "warning: cannot read the version of $1 from node_modules or package-lock.json; trusting versions.env ($2)"
  elif [[ $got != "$2" ]]; then
    die "versions.env has $3=$2 but the project uses $1 $got: update $rel/versions.env (and the glue under $rel if needed)"
  fi
}

# Source files of a glue directory, NUL-separated, relative, sorted: what git
# would commit (tracked + untracked, minus .gitignore'd files such as
# generated output), or every file when git is unavailable.
glue_files() {
  if git -C "$1" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$1" && git ls-files -z --cached --others --exclude-standard -- . |
      while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done)
  else
    (cd "$1" && find . -type f ! -name '*~' ! -name '.#*' -printf '%P\0')
  fi | LC_ALL=C sort -z
}

# Hash of the glue sources (paths + contents), minus the files matching the
# globs of "hash_exclude" in its toolchain.conf (files that are not build
# inputs, e.g. the language host's tests: editing them rebuilds nothing).
hash_dir() {
  glue_files "$1" | without_excluded "$1" | (cd "$1" && xargs -0 -r sha256sum) | sha256sum | cut -c1-64
}

without_excluded() { # <dir>; NUL-separated paths on stdin and stdout
  local f pat pats
  read -ra pats <<<"$(glue_conf "$1" hash_exclude)"
  while IFS= read -r -d '' f; do
    for pat in "${pats[@]}"; do
      # shellcheck disable=SC2053 # $pat is a glob on purpose
      [[ $f == $pat ]] && continue 2
    done
    printf '%s\0' "$f"
  done
}

# Optional settings of a glue directory: <dir>/toolchain.conf, lines
# "key = value" ("#" comments). Keys: build_tags (for go generate and go
# build), unsupported (SDK tokens the glue deliberately does not serve; read
# by check-sdk-names.js), hash_exclude (globs of files left out of the part
# hash). Prints the values of <key>, space-separated.
glue_conf() { # <dir> <key>
  [[ -f $1/toolchain.conf ]] || return 0
  sed -nE "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1/toolchain.conf" | sed 's/[[:space:]]*#.*//' | paste -sd' '
}

# What go.mod requires for a module (the version actually built).
gomod_require() { # <dir> <module path>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}

# Parts: one per binary. Fields: name|version|glue dir|package to build|ldflags|npm package|versions.env var
parts=()
check_npm @pulumi/pulumi "$PULUMI_VERSION" PULUMI_VERSION
cli_pkg_version=$(gomod_require "$here/cli" github.com/pulumi/pulumi/pkg/v3)
[[ $cli_pkg_version == "v$PULUMI_VERSION" ]] ||
  die "$rel/cli/go.mod requires github.com/pulumi/pulumi/pkg/v3 ${cli_pkg_version:-<none>} but versions.env has PULUMI_VERSION=$PULUMI_VERSION: regenerate it (README.md, 'Bumping versions')"
parts+=("pulumi|$PULUMI_VERSION|$here/cli|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION|@pulumi/pulumi|PULUMI_VERSION")
# The Node.js language host (`pulumi up` in a project directory runs
# programs through it): our own module on sdk/v3 at the CLI's version,
# reporting the CLI's version like the official one.
if [[ -f $here/language-host/go.mod ]]; then
  host_sdk_version=$(gomod_require "$here/language-host" github.com/pulumi/pulumi/sdk/v3)
  [[ $host_sdk_version == "v$PULUMI_VERSION" ]] ||
    die "$rel/language-host/go.mod requires github.com/pulumi/pulumi/sdk/v3 ${host_sdk_version:-<none>} but versions.env has PULUMI_VERSION=$PULUMI_VERSION: update it (README.md, 'Bumping versions')"
fi
parts+=("pulumi-language-nodejs|$PULUMI_VERSION|$here/language-host|.|-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION|@pulumi/pulumi|PULUMI_VERSION")
for name in $TOOLCHAIN_PROVIDERS; do
  var=PROVIDER_VERSION_$(tr 'a-z-' 'A-Z_' <<<"$name")
  version=${!var:-}
  [[ -n $version ]] || die "versions.env lists provider '$name' in TOOLCHAIN_PROVIDERS but does not set $var"
  check_npm "@pulumi/$name" "$version" "$var"
  parts+=("pulumi-resource-$name|$version|$here/providers/$name|.|-s -w -X main.version=$version|@pulumi/$name|$var")
done

# ------------------------------------------------------------------- keys ---
part_keys=()
for p in "${parts[@]}"; do
  IFS='|' read -r bin version dir pkg ldflags _ _ <<<"$p"
  if [[ -f $dir/go.mod ]]; then src=$(hash_dir "$dir"); else src=missing; fi
  k=$(printf '%s\n' "$recipe" "$bin" "$version" "$pkg" "$ldflags" "$src" | sha256sum | cut -c1-16)
  part_keys+=("$bin-$version-$k")
done
key=$(printf '%s\n' "${part_keys[@]}" | sha256sum | cut -c1-12)

cache=${CALENDARS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-e2e}
root=$cache/toolchain
bindir=$root/$key/bin

complete() {
  local p bin
  [[ -d $bindir ]] || return 1
  for p in "${parts[@]}"; do
    bin=${p%%|*}
    [[ -x $bindir/$bin ]] || return 1
  done
}

if complete; then
  log "toolchain up to date: $bindir"
  $check_only || echo "$bindir"
  exit 0
fi
if $check_only; then
  log "toolchain out of date: $bindir does not exist (run $rel/build.sh)"
  exit 1
fi

case $root in "$repo"/*) die "the cache ($root) must be outside the repository ($repo)" ;; esac
mkdir -p "$root/parts"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/.lock"
  flock -n 9 || { log "another build.sh holds $root/.lock; waiting"; flock 9; }
else
  log "warning: flock not found; concurrent runs are not serialised"
fi
if complete; then # built by the run we waited for
  log "toolchain up to date: $bindir"
  echo "$bindir"
  exit 0
fi

# ------------------------------------------------------------------ build ---
# Explain a failed go build: proxy refusals name the module and version.
explain_failure() { # <log> <bin> <version> <dir> <npm package>
  local logf=$1 bin=$2 version=$3 dir=$4 npm=$5 refused
  refused=$(grep -E '@v[^ :]+: .*(403 Forbidden|404 Not Found|410 Gone)' "$logf" |
    sed -E 's/.*[[:space:]]([A-Za-z0-9._~/+-]+@v[A-Za-z0-9._+-]+): .*(403 Forbidden|404 Not Found|410 Gone).*/\1 (\2)/' |
    sort -u || true)
  failure_reason="go build failed in ${dir#"$repo"/} (log: $logf)"
  if [[ -n $refused ]]; then
    failure_reason="the Go module proxy refused $(cut -d' ' -f1 <<<"$refused" | paste -sd' ') (log: $logf)"
    while read -r r; do
      log "ERROR: the Go module proxy refused $r, needed to build $bin $version from ${dir#"$repo"/}"
    done <<<"$refused"
    log "       pin the nearest served version of that module in ${dir#"$repo"/}/go.mod (README.md, 'Refused module versions')"
  elif grep -q 'missing go.sum entry\|updates to go.mod needed\|go.mod file indicates replacement\|no required module provides' "$logf"; then
    log "ERROR: ${dir#"$repo"/}/go.mod or go.sum is incomplete for $bin $version: run 'go mod tidy' there"
  else
    log "ERROR: building $bin $version ($npm) from ${dir#"$repo"/} failed"
  fi
  log "------- last lines of $logf"
  tail -n 25 "$logf" | sed 's/^/  | /' >&2
}

# The names a provider serves (tokens, properties, secrets) must be those the
# npm SDK sends: check-sdk-names.js compares its schema with node_modules.
check_names() { # <name> <provider binary> <log>
  local name=$1 provbin=$2 out=$3 cli=$root/parts/${part_keys[0]}/pulumi d rc=0
  if ! command -v node >/dev/null 2>&1 || [[ ! -d $repo/node_modules/@pulumi/$name ]] || [[ ! -x $cli ]]; then
    log "      skipping the SDK name check of pulumi-resource-$name (needs node, node_modules/@pulumi/$name and the pulumi CLI)"
    names_note=", names NOT checked"
    return 0
  fi
  d=$(mktemp -d "$root/.tmp.XXXXXX")
  ln -s "$cli" "$d/pulumi"
  ln -s "$provbin" "$d/pulumi-resource-$name"
  node "$here/check-sdk-names.js" "$d" "$name" >"$out" 2>&1 || rc=$?
  rm -rf "$d"
  names_note=", names match node_modules/@pulumi/$name"
  return "$rc"
}

# Leftovers of an interrupted run (we hold the lock, so nobody else's).
rm -rf "$root"/.tmp.* 2>/dev/null || true
failures=()
tmp=
staging=$(mktemp -d "$root/.tmp.XXXXXX")
trap 'rm -rf "$staging" ${tmp:+"$tmp"}' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
total=${#parts[@]} i=0 t_all=$SECONDS
for idx in "${!parts[@]}"; do
  i=$((i + 1))
  IFS='|' read -r bin version dir pkg ldflags npm var <<<"${parts[$idx]}"
  partdir=$root/parts/${part_keys[$idx]}
  reldir=${dir#"$repo"/}
  if [[ -x $partdir/$bin ]]; then
    log "[$i/$total] $bin $version: cached"
    continue
  fi
  if [[ ! -f $dir/go.mod ]]; then
    log "ERROR: [$i/$total] cannot build $bin $version ($npm, $var in versions.env): $reldir/ does not exist (no go.mod); see README.md, 'Provider glue'"
    failures+=("$bin $version: missing glue $reldir/go.mod")
    continue
  fi
  mod=$(awk '$1 == "module" { print $2; exit }' "$dir/go.mod")
  what="module $mod"
  [[ $pkg == . ]] || what="$pkg@$(gomod_require "$dir" github.com/pulumi/pulumi/pkg/v3)"
  log "[$i/$total] building $bin $version from $reldir ($what)..."
  t0=$SECONDS
  tmp=$(mktemp -d "$root/.tmp.XXXXXX")
  # Build from a copy of the glue sources outside the repository, so that
  # `go generate` output (if the glue has //go:generate directives) never
  # lands in the work tree and a stale generated file there is never used.
  mkdir -p "$tmp/src"
  glue_files "$dir" | (cd "$dir" && xargs -0 -r cp --parents -t "$tmp/src")
  tags=$(glue_conf "$dir" build_tags | tr ' ' ',')
  if (cd "$tmp/src" &&
    if grep -rqs --include='*.go' '^//go:generate ' .; then
      echo "+ go generate -tags '$tags' ./..." && "$GO" generate -tags "$tags" ./...
    fi &&
    echo "+ go build -tags '$tags' -ldflags '$ldflags' -o $bin $pkg" &&
    "$GO" build -tags "$tags" -ldflags "$ldflags" -o "$tmp/$bin" "$pkg") >"$staging/$bin.log" 2>&1; then
    rm -rf "$tmp/src"
    # The binary must report exactly the version the npm SDK asks for.
    case $bin in
      pulumi)
        got=$(PULUMI_HOME=$tmp/home PULUMI_SKIP_UPDATE_CHECK=true "$tmp/$bin" version 2>/dev/null || true)
        want=v$version ;;
      pulumi-language-*)
        got=$("$tmp/$bin" -version 2>/dev/null || true)
        want=v$version ;;
      *)
        got=$("$tmp/$bin" -version 2>/dev/null || true)
        want=$version ;;
    esac
    rm -rf "${tmp:?}/home"
    if [[ $got != "$want" ]]; then
      log "ERROR: [$i/$total] $bin built from $reldir reports version '$got', expected '$want' (it must take its version from the -X ldflag: $ldflags)"
      failures+=("$bin $version: reports version '$got'")
      rm -rf "$tmp"
      continue
    fi
    names_note=""
    if [[ $bin == pulumi-resource-* ]] && ! check_names "${bin#pulumi-resource-}" "$tmp/$bin" "$staging/$bin.names"; then
      log "ERROR: [$i/$total] $bin built from $reldir serves names that differ from $npm (node_modules):"
      grep -v '^==' "$staging/$bin.names" | sed 's/^/  | /' >&2
      failures+=("$bin $version: names differ from $npm (fix the ProviderInfo in $reldir, or list deliberate gaps as 'unsupported = <token>' in $reldir/toolchain.conf)")
      rm -rf "$tmp"
      continue
    fi
    { echo "binary:  $bin"; echo "version: $version ($npm, $var)"; echo "source:  $reldir ($what)"
      echo "recipe:  $recipe"; echo "ldflags: $ldflags"; echo "built:   $(date -u +%FT%TZ) in $((SECONDS - t0))s"
    } >"$tmp/part.txt"
    cp "$staging/$bin.log" "$tmp/build.log"
    rm -rf "$partdir" 2>/dev/null || true
    chmod 755 "$tmp"
    mv -T "$tmp" "$partdir"
    log "[$i/$total] $bin $version built in $((SECONDS - t0))s (reports $got$names_note)"
  else
    rm -rf "$tmp"
    cp "$staging/$bin.log" "$root/last-failure-$bin.log"
    explain_failure "$root/last-failure-$bin.log" "$bin" "$version" "$dir" "$npm"
    failures+=("$bin $version: $failure_reason")
    log "[$i/$total] $bin $version FAILED after $((SECONDS - t0))s"
  fi
done

if ((${#failures[@]})); then
  log "toolchain NOT built (${#failures[@]} of $total binaries missing); built binaries are cached for the next run:"
  for f in "${failures[@]}"; do log "  - $f"; done
  exit 1
fi

# Assemble <key>/bin from the parts (hard links, else copies), then rename
# it into place atomically.
mkdir -p "$staging/key/bin"
for idx in "${!parts[@]}"; do
  bin=${parts[$idx]%%|*}
  partdir=$root/parts/${part_keys[$idx]}
  ln "$partdir/$bin" "$staging/key/bin/$bin" 2>/dev/null || cp -p "$partdir/$bin" "$staging/key/bin/$bin"
  { cat "$partdir/part.txt"; echo; } >>"$staging/key/manifest.txt"
done
if ! mv -T "$staging/key" "$root/$key" 2>/dev/null; then
  complete || die "could not move the toolchain into $root/$key"
fi
log "toolchain ready in $((SECONDS - t_all))s: $bindir"

if $prune; then
  keep=" $key ${part_keys[*]} "
  for d in "$root"/* "$root"/parts/*; do
    b=$(basename "$d")
    [[ -d $d && $b != parts && $keep != *" $b "* ]] || continue
    log "pruning $d"
    rm -rf "$d"
  done
fi
echo "$bindir"
