#!/usr/bin/env bash
# Lints the GitHub workflows with actionlint (a real binary, built once from the
# Go module github.com/rhysd/actionlint through the module proxy), shellcheck
# (Debian's package) and zizmor (the security scanner, from PyPI into a
# virtualenv of its own), all installed here when missing. Without shellcheck,
# actionlint silently skips every `run:` script: a missing shellcheck is an
# error here, never a skip.
#
# zizmor runs offline (no GitHub API: its online audits are off) with its
# default "regular" persona. A finding of medium or high severity fails the
# lint; low and informational ones are printed and do not.
#
#   scripts/lint-workflows.sh                  # lint .github/ of this repository (actionlint, zizmor),
#                                              # the project's own scripts (shellcheck), the project's
#                                              # rules (scripts/workflow-policy.ts), then the inputs of
#                                              # the pinned actions (scripts/action-inputs.ts)
#   scripts/lint-workflows.sh FILE...          # actionlint and zizmor only, on these files (their
#                                              # repository's .github/actionlint.yaml applies)
#   scripts/lint-workflows.sh --install-only   # only make sure the tools are there, print the actionlint path
#
# Environment: ACTIONLINT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-lint)
# holds actionlint-v<version> and the virtualenv zizmor-v<version>; GOFLAGS etc.
# apply to the one-time build, PIP_INDEX_URL etc. to the one-time install.
set -euo pipefail

ACTIONLINT_VERSION=1.7.12
ACTIONLINT_MODULE=github.com/rhysd/actionlint
ZIZMOR_VERSION=1.33.1

log() { printf '[lint-workflows] %s\n' "$*" >&2; }
die() { printf '[lint-workflows] error: %s\n' "$*" >&2; exit 1; }

cache=${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-lint}
actionlint="$cache/actionlint-v$ACTIONLINT_VERSION"
zizmor_venv="$cache/zizmor-v$ZIZMOR_VERSION"
zizmor="$zizmor_venv/bin/zizmor"

# Runs apt-get as root, or through passwordless sudo (GitHub-hosted runners).
apt_get() {
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n DEBIAN_FRONTEND=noninteractive apt-get "$@"
    else
        return 1
    fi
}

ensure_shellcheck() {
    if command -v shellcheck >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "shellcheck is missing and this is not a Debian/Ubuntu system: install shellcheck (https://www.shellcheck.net) and run again"
    log "shellcheck is missing: installing the Debian package shellcheck"
    if ! apt_get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1; then
        apt_get update -qq >/dev/null 2>&1 ||
            die "shellcheck is missing and apt-get cannot run (needs root or passwordless sudo): apt-get install shellcheck"
        apt_get install -y -qq --no-install-recommends shellcheck >/dev/null ||
            die "apt-get install shellcheck failed"
    fi
    command -v shellcheck >/dev/null 2>&1 || die "the shellcheck package is installed but shellcheck is not on PATH"
}

ensure_actionlint() {
    if [ -x "$actionlint" ] && "$actionlint" -version 2>/dev/null | head -1 | grep -qx "v$ACTIONLINT_VERSION"; then
        return 0
    fi
    command -v go >/dev/null 2>&1 ||
        die "actionlint v$ACTIONLINT_VERSION is not in $cache and go is missing to build it: install Go >= 1.25 (or put the binary at $actionlint)"
    log "building actionlint v$ACTIONLINT_VERSION from the Go module $ACTIONLINT_MODULE into $cache (once)"
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp -d "$cache/.build.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    GOBIN="$tmp" GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0 \
        go install -ldflags='-s -w' "$ACTIONLINT_MODULE/cmd/actionlint@v$ACTIONLINT_VERSION" ||
        die "go install $ACTIONLINT_MODULE/cmd/actionlint@v$ACTIONLINT_VERSION failed (needs the Go module proxy)"
    mv -f "$tmp/actionlint" "$actionlint"
    rm -rf "$tmp"
    trap - EXIT
    "$actionlint" -version | head -1 | grep -qx "v$ACTIONLINT_VERSION" ||
        die "the built actionlint does not report v$ACTIONLINT_VERSION"
}

# A virtualenv needs Debian's python3-venv (ensurepip), which python3 alone lacks.
ensure_venv_module() {
    local probe
    probe=$(mktemp -d)
    if python3 -m venv --without-pip "$probe/venv" >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1; then
        rm -rf "$probe"
        return 0
    fi
    rm -rf "$probe"
    command -v apt-get >/dev/null 2>&1 ||
        die "python3 cannot create a virtualenv (no venv/ensurepip module) and this is not a Debian/Ubuntu system: install Python's venv module and run again"
    log "python3 cannot create a virtualenv: installing the Debian package python3-venv"
    if ! apt_get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1; then
        apt_get update -qq >/dev/null 2>&1 ||
            die "python3-venv is missing and apt-get cannot run (needs root or passwordless sudo): apt-get install python3-venv"
        apt_get install -y -qq --no-install-recommends python3-venv >/dev/null ||
            die "apt-get install python3-venv failed"
    fi
}

ensure_zizmor() {
    if [ -x "$zizmor" ] && [ "$("$zizmor" --version 2>/dev/null)" = "zizmor $ZIZMOR_VERSION" ]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 ||
        die "zizmor $ZIZMOR_VERSION is not in $cache and python3 is missing to install it from PyPI: install python3 (Debian: python3 python3-venv)"
    ensure_venv_module
    log "installing zizmor $ZIZMOR_VERSION from PyPI into the virtualenv $zizmor_venv (once)"
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp -d "$cache/.zizmor.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    python3 -m venv "$tmp" || die "python3 -m venv $tmp failed"
    "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "zizmor==$ZIZMOR_VERSION" ||
        die "pip install zizmor==$ZIZMOR_VERSION failed (needs PyPI)"
    # zizmor is a native binary, so the virtualenv may move into place. A run
    # that installed it meanwhile (the unit suite lints too) keeps its copy.
    if [ "$("$zizmor" --version 2>/dev/null)" = "zizmor $ZIZMOR_VERSION" ]; then
        rm -rf "$tmp"
    else
        rm -rf "$zizmor_venv"
        mv -T "$tmp" "$zizmor_venv"
    fi
    trap - EXIT
    [ "$("$zizmor" --version 2>/dev/null)" = "zizmor $ZIZMOR_VERSION" ] ||
        die "the installed zizmor does not report zizmor $ZIZMOR_VERSION"
}

# zizmor on its inputs, offline. Exit codes of zizmor: 0 nothing found, 10-12
# the highest finding is unknown/informational/low, 13 medium, 14 high.
run_zizmor() {
    local status=0
    "$zizmor" --offline --no-progress --color=never --format=plain "$@" || status=$?
    case $status in
    0 | 10 | 11 | 12) return 0 ;;
    13 | 14)
        log "zizmor: findings of medium or high severity (above); fix them, or, for a false positive, add a \`# zizmor: ignore[<audit>]\` comment that says why"
        return 1
        ;;
    *) die "zizmor $ZIZMOR_VERSION failed to run (exit $status)" ;;
    esac
}

ensure_shellcheck
ensure_actionlint
ensure_zizmor

if [ "${1-}" = --install-only ]; then
    echo "$actionlint"
    exit 0
fi

log "actionlint v$ACTIONLINT_VERSION with $(shellcheck --version | sed -n 's/^version: /shellcheck /p'), zizmor $ZIZMOR_VERSION (offline)"
if [ $# -gt 0 ]; then
    status=0
    # -shellcheck names the binary: actionlint must never fall back to skipping scripts.
    "$actionlint" -shellcheck "$(command -v shellcheck)" "$@" || status=$?
    run_zizmor "$@" || status=1
    exit "$status"
fi

cd "$(dirname "$0")/.."
"$actionlint" -shellcheck "$(command -v shellcheck)"
# The workflows and .github/dependabot.yml: template injection, unpinned
# actions, credentials left to later steps, excessive permissions, dangerous
# triggers, inherited secrets, Dependabot cooldowns...
run_zizmor .
# The project's own shell scripts, e2e included (infos such as unfollowed sources aside).
shellcheck --external-sources --severity=warning scripts/*.sh e2e/*.sh e2e/engine/*.sh e2e/images/*.sh \
    e2e/toolchain/*.sh e2e/images/postgres/docker-entrypoint.sh e2e/images/php-apache/apache2-foreground \
    e2e/fixtures/caldav-standin/src/caldav/init-database.sh
# The backup scripts run as lib.sh followed by each one (components/backup.ts).
for script in components/backup-scripts/*.sh; do
    [ "$script" = components/backup-scripts/lib.sh ] && continue
    cat components/backup-scripts/lib.sh "$script" | shellcheck --shell=sh --severity=info - ||
        die "shellcheck: $script (with lib.sh before it)"
done
# What the workflows must guarantee (prod out of reach of pull requests, ...).
node --import tsx scripts/workflow-policy.ts
# actionlint checks inputs only of the action tags it knows, never of actions
# pinned by commit SHA: scripts/action-inputs.ts reads their action.yml.
node --import tsx scripts/action-inputs.ts
