#!/usr/bin/env bash
# Lints the GitHub workflows with actionlint (a real binary, built once from the
# Go module github.com/rhysd/actionlint through the module proxy) and shellcheck
# (Debian's package), both installed here when missing. Without shellcheck,
# actionlint silently skips every `run:` script: a missing shellcheck is an
# error here, never a skip.
#
#   scripts/lint-workflows.sh                  # lint .github/workflows of this repository, then
#                                              # the inputs of the pinned actions (scripts/action-inputs.ts)
#   scripts/lint-workflows.sh FILE...          # actionlint only, on these files (their repository's
#                                              # .github/actionlint.yaml applies)
#   scripts/lint-workflows.sh --install-only   # only make sure both tools are there, print the actionlint path
#
# Environment: ACTIONLINT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-lint)
# holds actionlint-v<version>; GOFLAGS etc. apply to the one-time build.
set -euo pipefail

ACTIONLINT_VERSION=1.7.12
ACTIONLINT_MODULE=github.com/rhysd/actionlint

log() { printf '[lint-workflows] %s\n' "$*" >&2; }
die() { printf '[lint-workflows] error: %s\n' "$*" >&2; exit 1; }

cache=${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-lint}
actionlint="$cache/actionlint-v$ACTIONLINT_VERSION"

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

ensure_shellcheck
ensure_actionlint

if [ "${1-}" = --install-only ]; then
    echo "$actionlint"
    exit 0
fi

log "actionlint v$ACTIONLINT_VERSION with $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
if [ $# -gt 0 ]; then
    # -shellcheck names the binary: actionlint must never fall back to skipping scripts.
    exec "$actionlint" -shellcheck "$(command -v shellcheck)" "$@"
fi

cd "$(dirname "$0")/.."
"$actionlint" -shellcheck "$(command -v shellcheck)"
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
