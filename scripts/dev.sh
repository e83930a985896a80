#!/usr/bin/env bash
# The self-contained dev stack (Pulumi.dev.yaml), with its state inside the project (.pulumi/):
#
#   npm run dev:up                deploy it, then print where CalDAV answers
#   npm run dev:down              destroy it, delete its database volume, and stop the Docker
#                                 Engine dev:up started (if it started one)
#   npm run dev:pulumi -- ARGS    any Pulumi command against it, with the tools dev:up chose
#
# What dev:up uses, in order:
# - the Pulumi CLI on PATH; without one, and with Go 1.26+, the project's own, built from Go
#   modules by e2e/toolchain/build.sh (engine, Node.js language host, the three providers;
#   20 to 30 minutes the first time on 2 cores, then a second), kept in the e2e cache and put on
#   PATH for this project's commands only, its providers installed in a PULUMI_HOME of its own;
# - the Docker Engine the docker CLI reaches (DOCKER_HOST or the default socket); without one,
#   as root on Debian, the project's own (e2e/engine/engine.sh, instance `dev`, socket
#   /run/calendars-caldav-dev/docker.sock), which stays up with the stack until dev:down.
# It never installs, upgrades or reconfigures a Pulumi CLI or a Docker Engine you have: a CLI
# that is too old, or an engine that is configured but does not answer, is reported, not replaced.
# What it chose is written to .pulumi/dev-env.sh, read by dev:pulumi and dev:down.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The dev stack's backend and what dev:up chose (CALENDARS_DEV_STATE: elsewhere, for tests).
STATE=${CALENDARS_DEV_STATE:-$ROOT/.pulumi}
ENV_FILE=$STATE/dev-env.sh
ENGINE_MARK=$STATE/dev-engine
ENGINE=$ROOT/e2e/engine/engine.sh
VOLUME=calendars-caldav-dev-pgdata

say() { printf '[dev %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[dev] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

export PULUMI_BACKEND_URL="file://$STATE"
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-calendars-caldav-dev}
export PULUMI_SKIP_UPDATE_CHECK=true
# shellcheck source=/dev/null
[ -f "$ENV_FILE" ] && . "$ENV_FILE"

engine() { CALENDARS_ENGINE_INSTANCE=dev bash "$ENGINE" "$@"; }

# Appends `export NAME="value"` to the env file being written, and exports it here.
choose() {
    printf 'export %s=%q\n' "$1" "$2" >>"$ENV_FILE.new"
    export "$1=$2"
}

provide_pulumi() {
    if [ -z "${CALENDARS_DEV_TOOLCHAIN:-}" ] && command -v pulumi >/dev/null 2>&1; then
        say "Pulumi CLI: $(command -v pulumi) ($(pulumi version 2>/dev/null || echo 'version unknown'))"
        return
    fi
    command -v go >/dev/null 2>&1 ||
        die "no Pulumi CLI on PATH, and no Go to build the project's own: install the Pulumi CLI 3.219 or later (https://www.pulumi.com/docs/install/), or Go 1.26 or later"
    say "no Pulumi CLI on PATH: using the project's own, built from Go modules by e2e/toolchain/build.sh (the first time: 20 to 30 minutes on 2 cores; then a second)"
    local t0 bin
    t0=$(now)
    bin=$(bash "$ROOT/e2e/toolchain/build.sh" | tail -1) || die "building the Pulumi toolchain failed (output above)"
    [ -x "$bin/pulumi" ] || die "e2e/toolchain/build.sh printed no toolchain directory with a pulumi in it ($bin)"
    choose CALENDARS_DEV_TOOLCHAIN "$bin"
    # The CLI and its language host (found next to it) on PATH; the providers it built installed
    # in a PULUMI_HOME of its own, beside it in the cache, as a downloaded plugin is: nothing is
    # downloaded, nothing written to ~/.pulumi, and no warning that plugins came from PATH.
    choose PATH "$bin:$PATH"
    choose PULUMI_HOME "$(dirname "$bin")/home"
    choose PULUMI_IGNORE_AMBIENT_PLUGINS true
    choose PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION true
    local provider name version out
    for provider in "$bin"/pulumi-resource-*; do
        name=${provider##*/pulumi-resource-}
        version=$("$provider" -version) || die "$provider -version failed: rebuild with e2e/toolchain/build.sh"
        [ -x "$PULUMI_HOME/plugins/resource-$name-v$version/pulumi-resource-$name" ] && continue
        out=$(pulumi plugin install resource "$name" "$version" --file "$provider" 2>&1) ||
            die "pulumi plugin install resource $name $version --file $provider failed: $out"
        say "installed the provider $name $version in $PULUMI_HOME"
    done
    say "Pulumi CLI: $bin/pulumi ($(pulumi version)), ready after $(($(now) - t0)) s"
}

provide_docker() {
    if [ ! -f "$ENGINE_MARK" ] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        say "Docker Engine: ${DOCKER_HOST:-the default socket} ($(docker version --format '{{.Server.Version}}'))"
        return
    fi
    if [ ! -f "$ENGINE_MARK" ]; then
        if [ -n "${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ]; then
            die "a Docker Engine is configured (${DOCKER_HOST:-/var/run/docker.sock}) but does not answer: start it; dev:up never starts a second engine next to yours"
        fi
        [ "$(id -u)" = 0 ] ||
            die "no Docker Engine: install Docker Engine 25 or later (https://docs.docker.com/engine/install/), or run as root on Debian so that dev:up starts one of its own"
        say "no Docker Engine: starting the project's own (e2e/engine/engine.sh, instance dev); npm run dev:down stops it and restores the host"
    fi
    # Before it starts: a dev:down after a failed start still stops what was started.
    touch "$ENGINE_MARK"
    local t0
    t0=$(now)
    engine start
    eval "$(engine env)"
    choose DOCKER_HOST "$DOCKER_HOST"
    choose PATH "$PATH"
    say "Docker Engine: $DOCKER_HOST ($(docker version --format '{{.Server.Version}}')), ready after $(($(now) - t0)) s"
}

up() {
    local t0 url
    t0=$(now)
    mkdir -p "$STATE"
    : >"$ENV_FILE.new"
    provide_pulumi
    provide_docker
    mv "$ENV_FILE.new" "$ENV_FILE"
    node "$ROOT/scripts/preflight.mjs"
    cd "$ROOT"
    pulumi stack select dev --create --secrets-provider passphrase
    pulumi up --stack dev --yes
    url=$(pulumi stack output publicUrl --stack dev)
    say "the dev stack is up after $(($(now) - t0)) s; CalDAV answers at $url (health: ${url}healthz)"
    say "more: npm run dev:pulumi -- stack output --show-secrets; tear down: npm run dev:down"
}

down() {
    cd "$ROOT"
    if [ -f "$ENGINE_MARK" ] && ! engine status >/dev/null 2>&1; then
        say "starting the dev engine again, to remove what the stack holds in it"
        engine start
    fi
    # The file backend keeps its stacks in <backend>/.pulumi/stacks.
    if [ -d "$STATE/.pulumi/stacks" ]; then
        pulumi destroy --stack dev --yes
    else
        say "no dev stack in $STATE: nothing to destroy"
    fi
    if docker volume inspect "$VOLUME" >/dev/null 2>&1; then
        docker volume rm --force "$VOLUME" >/dev/null
        say "deleted the volume $VOLUME (the dev database)"
    fi
    if [ -f "$ENGINE_MARK" ]; then
        engine stop
        rm -f "$ENGINE_MARK"
    fi
    rm -f "$ENV_FILE"
}

case "${1:-}" in
up) up ;;
down) down ;;
pulumi)
    shift
    command -v pulumi >/dev/null 2>&1 || die "no Pulumi CLI: run npm run dev:up first, or install the Pulumi CLI"
    cd "$ROOT"
    exec pulumi "$@"
    ;;
*) die "usage: $0 up|down|pulumi [ARGS...]" ;;
esac
