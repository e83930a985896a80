#!/usr/bin/env bash
# The Docker Engine of the end-to-end suite.
#
#   engine.sh start    install what is missing, start our own dockerd, wait until it answers
#   engine.sh stop     stop it and restore the host as it was before `start`
#   engine.sh status   say whether it runs
#   engine.sh env      print `export DOCKER_HOST=...` for the running engine
#
# The program needs Docker Engine API 1.44 or later (Engine 25+: the health check's
# start interval). Debian bookworm ships 20.10 (API 1.41), so the engine is Debian
# trixie's docker.io, unpacked into the cache (no host package changes, no libc
# upgrade); containerd and runc are bookworm's (trixie's runc needs glibc 2.38).
#
# dockerd gets its own socket, exec root and data root; the data root lives in the
# cache so that images built once are reused by later runs. Before it starts, the
# host state that dockerd changes is recorded (iptables tables, ip_forward, network
# links); `stop` puts it back. Both commands are idempotent.
#
# CALENDARS_ENGINE_INSTANCE=dev (npm run dev:up on a machine without Docker) runs the
# same engine under other paths: socket /run/calendars-caldav-dev/docker.sock, its own
# data root and log, so that the suite's cleaning never reaches the dev stack. Only one
# dockerd runs on a host at a time: `start` refuses while another one runs.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

INSTANCE=${CALENDARS_ENGINE_INSTANCE:-e2e}
[[ $INSTANCE =~ ^[a-z0-9]+$ ]] || die "CALENDARS_ENGINE_INSTANCE must be lower-case letters and digits, not '$INSTANCE'"
DOCKER_VERSION=26.1.5+dfsg1-9+deb13u1+b1
DOCKER_DIR="$E2E_CACHE/engine/docker-$DOCKER_VERSION"
if [ "$INSTANCE" = e2e ]; then
    DATA_ROOT="$E2E_CACHE/engine/data-root"
    # Kept in the cache after stop, for a post-mortem; /run is left as it was found.
    LOG="$E2E_CACHE/engine/dockerd.log"
else
    E2E_RUN=/run/calendars-caldav-$INSTANCE
    E2E_DOCKER_HOST="unix://$E2E_RUN/docker.sock"
    DATA_ROOT="$E2E_CACHE/engine/data-root-$INSTANCE"
    LOG="$E2E_CACHE/engine/dockerd-$INSTANCE.log"
fi
SAVED="$E2E_RUN/host-before"
PIDFILE="$E2E_RUN/dockerd.pid"
TABLES=(filter nat mangle raw)

docker_cli() { DOCKER_HOST=$E2E_DOCKER_HOST "$DOCKER_DIR/usr/bin/docker" "$@"; }
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# Trixie's docker.io (engine) and docker-cli (client of the same version), downloaded
# with a private apt configuration and unpacked, not installed.
fetch_docker() {
    [ -x "$DOCKER_DIR/usr/sbin/dockerd" ] && [ -x "$DOCKER_DIR/usr/bin/docker" ] && return 0
    local t0 apt tmp mirror
    t0=$(now)
    mirror=$(debian_mirror)
    log "fetching Debian trixie docker.io $DOCKER_VERSION into $DOCKER_DIR"
    apt=$(mktemp -d)
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null
        -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update -qq >/dev/null || die "apt-get update of the trixie suite failed (Debian mirror unreachable?)"
    (cd "$apt" && apt-get "${opts[@]}" download "docker.io=$DOCKER_VERSION" "docker-cli=$DOCKER_VERSION" >/dev/null) ||
        die "Debian trixie does not serve docker.io/docker-cli $DOCKER_VERSION; update DOCKER_VERSION in $0 (apt-cache policy docker.io with the trixie suite)"
    tmp="$DOCKER_DIR.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    for deb in "$apt"/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
    rm -rf "$DOCKER_DIR" "$apt" && mv "$tmp" "$DOCKER_DIR"
    log "docker.io unpacked in $(elapsed "$t0") s: $("$DOCKER_DIR/usr/sbin/dockerd" --version)"
}

save_host_state() {
    [ -d "$SAVED" ] && return 0 # an earlier `start` recorded it; keep the oldest record
    mkdir -p "$SAVED.tmp"
    sysctl -n net.ipv4.ip_forward >"$SAVED.tmp/ip_forward"
    ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort >"$SAVED.tmp/links"
    for t in "${TABLES[@]}"; do iptables-save -t "$t" >"$SAVED.tmp/iptables.$t" 2>/dev/null || true; done
    mv "$SAVED.tmp" "$SAVED"
}

restore_host_state() {
    [ -d "$SAVED" ] || return 0
    local t link
    for t in "${TABLES[@]}"; do
        if grep -q '^\*' "$SAVED/iptables.$t" 2>/dev/null; then
            iptables-restore -T "$t" <"$SAVED/iptables.$t"
        elif iptables-save -t "$t" 2>/dev/null | grep -q '^\*'; then
            # The table did not exist before: empty it, drop its chains, open its policies.
            iptables -t "$t" -F && iptables -t "$t" -X
            iptables -t "$t" -S | awk '$1 == "-P" { print $2 }' | while read -r chain; do iptables -t "$t" -P "$chain" ACCEPT; done
            # With the nf_tables backend the empty table itself remains; remove it too.
            if command -v nft >/dev/null 2>&1; then nft delete table ip "$t" 2>/dev/null || true; fi
        fi
    done
    sysctl -qw "net.ipv4.ip_forward=$(cat "$SAVED/ip_forward")"
    ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | comm -13 "$SAVED/links" - |
        { grep -E '^(docker0|br-|veth)' || true; } | while read -r link; do ip link delete "$link" 2>/dev/null || true; done
    rm -rf "$SAVED"
}

start() {
    if running && docker_cli info >/dev/null 2>&1; then
        log "engine already running (pid $(cat "$PIDFILE")), $E2E_DOCKER_HOST"
        return 0
    fi
    local other
    other=$(pgrep -x dockerd || true)
    if [ -n "$other" ]; then
        local pidfile owner=""
        for pidfile in /run/calendars-caldav-*/dockerd.pid; do
            [ -f "$pidfile" ] && [ "$(cat "$pidfile")" = "$other" ] && owner=${pidfile#/run/calendars-caldav-} && owner=${owner%/dockerd.pid}
        done
        case $owner in
        dev) die "the dev stack's engine (npm run dev:up, pid $other) runs on this host: stop it first with npm run dev:down (two engines would fight over bridges and iptables)" ;;
        "") die "another dockerd (pid $other) runs on this host; stop it first: two engines would fight over bridges and iptables" ;;
        *) die "the engine instance $owner (pid $other) runs on this host: stop it first (CALENDARS_ENGINE_INSTANCE=$owner $0 stop); two engines would fight over bridges and iptables" ;;
        esac
    fi
    [ "$(id -u)" = 0 ] || die "starting dockerd needs root"
    need iptables iptables
    need containerd containerd
    need runc runc
    fetch_docker
    mkdir -p "$E2E_RUN" "$DATA_ROOT"
    save_host_state
    local t0
    t0=$(now)
    log "starting dockerd (data root $DATA_ROOT, log $LOG)"
    PATH="$DOCKER_DIR/usr/sbin:$DOCKER_DIR/usr/bin:$DOCKER_DIR/usr/libexec/docker/cli-plugins:$PATH" \
        setsid "$DOCKER_DIR/usr/sbin/dockerd" \
        --host "$E2E_DOCKER_HOST" --pidfile "$PIDFILE" \
        --data-root "$DATA_ROOT" --exec-root "$E2E_RUN/exec" \
        --userland-proxy-path "$DOCKER_DIR/usr/sbin/docker-proxy" \
        >"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 600); do
        docker_cli info >/dev/null 2>&1 && break
        kill -0 $! 2>/dev/null || { tail -20 "$LOG" >&2; stop; die "dockerd exited at start (log above, $LOG)"; }
        sleep 0.1
    done
    docker_cli info >/dev/null 2>&1 || { tail -20 "$LOG" >&2; stop; die "dockerd did not answer within 60 s ($LOG)"; }
    log "engine $(docker_cli version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') answers after $(elapsed "$t0") s"
}

stop() {
    if running; then
        local pid
        pid=$(cat "$PIDFILE")
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then log "dockerd ignored TERM for 30 s; killing it"; kill -KILL "$pid"; fi
    fi
    # Mounts of the exec root (netns, overlay) go with dockerd; anything left is unmounted.
    { grep -o " $E2E_RUN/exec[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    restore_host_state
    rm -rf "$E2E_RUN/exec" "$PIDFILE" "$E2E_RUN/docker.sock"
    rmdir "$E2E_RUN" 2>/dev/null || true
    log "engine stopped; host state restored (engine log: $LOG)"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if running; then echo "running (pid $(cat "$PIDFILE")), DOCKER_HOST=$E2E_DOCKER_HOST"; else echo "stopped"; exit 1; fi ;;
env) running || die "engine not running; run $0 start"; echo "export DOCKER_HOST=$E2E_DOCKER_HOST"; echo "export PATH=$DOCKER_DIR/usr/bin:\$PATH" ;;
*) die "usage: $0 start|stop|status|env" ;;
esac
