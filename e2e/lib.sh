# shellcheck shell=bash disable=SC2034
# Shared helpers of the e2e scripts; source it, do not run it. (SC2034: the
# variables are for the scripts that source this file.)
# Every script says what it does on stderr and fails with a message naming
# what is missing. Paths live outside the repository (CALENDARS_E2E_CACHE).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$E2E_DIR/.." && pwd)
# Built once per machine and reused: toolchain binaries, Docker binaries, the engine's data root (images).
E2E_CACHE=${CALENDARS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/calendars-caldav-e2e}
# Runtime state of the engine we start (socket, pid, the host state to restore).
E2E_RUN=${CALENDARS_E2E_RUN:-/run/calendars-caldav-e2e}
E2E_DOCKER_HOST="unix://$E2E_RUN/docker.sock"

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[e2e] error: %s\n' "$*" >&2; exit 1; }

# need CMD PACKAGE: install the Debian package that provides CMD when it is absent.
need() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "$cmd is missing; install the Debian package $pkg (needs root)"
    log "installing Debian package $pkg (for $cmd)"
    if ! apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed; cannot install $pkg"
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null || die "apt-get install $pkg failed"
    fi
    command -v "$cmd" >/dev/null 2>&1 || die "$pkg installed but $cmd is still not on PATH"
}

# Seconds since the epoch with millisecond precision, for progress lines.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The Debian mirror apt uses on this host (debootstrap, the trixie engine download).
debian_mirror() {
    local uri
    uri=$(grep -rhoE 'https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
        grep -v security | head -1 | tr -d ' ')
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list*"
    echo "$uri"
}
