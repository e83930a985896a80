#!/usr/bin/env bash
# The end-to-end suite (npm run test:e2e): builds or reuses the toolchain, starts the
# e2e Docker Engine (unless it already runs), builds or reuses the images, runs the
# scenarios in e2e/scenarios one after another, then stops the engine it started and
# restores the host. Extra arguments go to node's test runner (e.g. a scenario file);
# `--bench` runs the benchmark (npm run bench) instead of the scenarios.
#
# The same suite runs on a GitHub-hosted runner against the real upstream:
#   E2E_TOOLCHAIN=external   use the `pulumi` on PATH and let it download its plugins
#   E2E_ENGINE=external      use the Docker Engine at DOCKER_HOST (or the default socket);
#                            only what the scenarios create is removed
#   E2E_FIXTURES=upstream    build E2E_UPSTREAM_REPO (default: the Calendars repository)
#                            at E2E_UPSTREAM_REF, with E2E_POSTGRES_IMAGE (an official
#                            postgres image) and E2E_PHP_IMAGE (default php:8.2-cli)
#   E2E_ARTIFACTS_DIR        on failure, the logs of every container are written there
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

t0=$(now)
# One run at a time on a machine: runs share the engine, and each removes every container at
# its start and end. A second run waits here until the first has ended (the lock is released
# when this shell exits; the engine is started without it, so a dockerd never holds it).
mkdir -p "$E2E_CACHE"
exec 9>>"$E2E_CACHE/run.lock"
if ! flock -n 9; then
    log "another e2e run holds $E2E_CACHE/run.lock (pid $(cat "$E2E_CACHE/run.pid" 2>/dev/null || echo unknown)); waiting for it to end"
    flock 9
    log "the other run ended after $(elapsed "$t0") s"
fi
echo $$ >"$E2E_CACHE/run.pid"
export E2E_TOOLCHAIN=${E2E_TOOLCHAIN:-build} E2E_ENGINE=${E2E_ENGINE:-own} E2E_FIXTURES=${E2E_FIXTURES:-standin}

case $E2E_TOOLCHAIN in
build)
    log "toolchain (e2e/toolchain/build.sh)"
    bin=$("$E2E_DIR/toolchain/build.sh" | tail -1)
    ;;
external) bin=$(dirname "$(command -v pulumi)") || die "E2E_TOOLCHAIN=external but no pulumi on PATH" ;;
*) die "E2E_TOOLCHAIN is build or external, not $E2E_TOOLCHAIN" ;;
esac
[ -x "$bin/pulumi" ] || die "no pulumi in the toolchain directory ($bin)"
export E2E_TOOLCHAIN_BIN=$bin

started_engine=false
case $E2E_ENGINE in
own)
    if ! "$E2E_DIR/engine/engine.sh" status >/dev/null 2>&1; then
        "$E2E_DIR/engine/engine.sh" start 9>&-
        started_engine=true
    fi
    eval "$("$E2E_DIR/engine/engine.sh" env)"
    ;;
external)
    export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
    docker info >/dev/null 2>&1 || die "E2E_ENGINE=external but no Docker Engine answers at $DOCKER_HOST"
    ;;
*) die "E2E_ENGINE is own or external, not $E2E_ENGINE" ;;
esac

# On our own engine (own data root) everything but the cached images belongs to the suite.
clean_engine() {
    [ "$E2E_ENGINE" = own ] || return 0
    docker ps -aq | xargs -r docker rm -f >/dev/null
    docker network prune -f >/dev/null
    docker volume prune -af >/dev/null 2>&1 || docker volume prune -f >/dev/null
}
save_logs() {
    [ -n "${E2E_ARTIFACTS_DIR:-}" ] || return 0
    mkdir -p "$E2E_ARTIFACTS_DIR"
    local name
    for name in $(docker ps -a --format '{{.Names}}'); do
        docker logs --timestamps "$name" >"$E2E_ARTIFACTS_DIR/$name.log" 2>&1 || true
    done
    log "container logs written to $E2E_ARTIFACTS_DIR"
}
finish() {
    local status=$?
    [ "$status" = 0 ] || save_logs || true
    clean_engine || true
    if $started_engine; then "$E2E_DIR/engine/engine.sh" stop || status=1; fi
    log "e2e finished in $(elapsed "$t0") s (exit $status)"
    exit "$status"
}
trap finish EXIT
clean_engine

case $E2E_FIXTURES in
standin)
    images=$("$E2E_DIR/images/build.sh")
    eval "$(printf '%s\n' "$images" | sed -n 's/^\([A-Z_]*_IMAGE\)=\(.*\)$/export E2E_\1=\2/p')"
    ;;
upstream)
    : "${E2E_UPSTREAM_REF:?E2E_FIXTURES=upstream needs E2E_UPSTREAM_REF (e.g. the source.ref of Pulumi.staging.yaml)}"
    : "${E2E_POSTGRES_IMAGE:?E2E_FIXTURES=upstream needs E2E_POSTGRES_IMAGE (an official postgres image)}"
    export E2E_UPSTREAM_REPO=${E2E_UPSTREAM_REPO:-https://github.com/suitenumerique/calendars.git}
    export E2E_PHP_IMAGE=${E2E_PHP_IMAGE:-php:8.2-cli}
    ;;
*) die "E2E_FIXTURES is standin or upstream, not $E2E_FIXTURES" ;;
esac

if [ "${1:-}" = --bench ]; then
    log "benchmark (setup took $(elapsed "$t0") s)"
    node --import tsx e2e/bench/bench.ts
    exit
fi
if [ "$E2E_TOOLCHAIN" = build ]; then
    # The scenarios run every program through our language host: its own tests first. They
    # find the toolchain with build.sh --check (up to date by now) and run real pulumi
    # programs; here a skipped test counts as a failure (everything they need is present).
    log "language host tests (cd e2e/toolchain/language-host && go test -v ./...)"
    t_host=$(now)
    host_status=0
    host_tests=$(cd "$E2E_DIR/toolchain/language-host" &&
        GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=readonly go test -count=1 -v ./... 2>&1) || host_status=$?
    passed=$(grep -c -- '^ *--- PASS' <<<"$host_tests" || true)
    skipped=$(grep -c -- '^ *--- SKIP' <<<"$host_tests" || true)
    failed=$(grep -c -- '^ *--- FAIL' <<<"$host_tests" || true)
    if [ "$host_status" != 0 ] || [ "$skipped" != 0 ]; then
        grep -v -e '^=== ' -e '^ *--- PASS' <<<"$host_tests" >&2 || true
        die "language host tests: $passed passed, $skipped skipped, $failed failed (go test exit $host_status) in $(elapsed "$t_host") s; the scenarios were not run"
    fi
    log "language host tests: $passed passed, 0 skipped, 0 failed in $(elapsed "$t_host") s"
fi
log "scenarios (setup took $(elapsed "$t0") s)"
if [ $# -eq 0 ]; then set -- e2e/scenarios/*.test.ts; fi
node --import tsx --test --test-concurrency=1 "$@"
