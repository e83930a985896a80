#!/usr/bin/env bash
# Images of the end-to-end suite, made without a registry, on the running e2e engine:
#   calendars-e2e/debian      Debian bookworm minbase (debootstrap + docker import)
#   calendars-e2e/postgres    PostgreSQL 15 standing in for the official postgres image
#   calendars-e2e/php-apache  PHP 8.2 + Apache + Debian's SabreDAV, for the stand-in server
# Each is tagged by a hash of its inputs and built only when that tag is missing,
# so a warm engine data root makes this a no-op. Prints NAME=reference lines on
# stdout (progress goes to stderr).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

export DOCKER_HOST=${DOCKER_HOST:-$E2E_DOCKER_HOST}
command -v docker >/dev/null || die "no docker client on PATH; run: eval \"\$(e2e/engine/engine.sh env)\""
docker info >/dev/null 2>&1 || die "no Docker engine answers at $DOCKER_HOST; run: e2e/engine/engine.sh start"

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

base_image() {
    local ref=calendars-e2e/debian:bookworm-minbase
    if ! has_image "$ref"; then
        need debootstrap debootstrap
        local mirror dir t0
        mirror=$(debian_mirror)
        dir=$(mktemp -d)
        t0=$(now)
        log "debootstrap bookworm minbase from $mirror (about a minute)"
        debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
            { tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; die "debootstrap failed (log above)"; }
        tar -C "$dir" -c . | docker import --change 'CMD ["/bin/bash"]' - "$ref" >/dev/null
        rm -rf "$dir" "$dir.log"
        log "base image $ref made in $(elapsed "$t0") s"
    fi
    echo "$ref"
}

# build NAME DIR BASE: docker build DIR FROM BASE, tagged by a hash of DIR's files and BASE's ID.
build() {
    local name=$1 dir=$2 base=$3 key ref t0
    key=$( (docker image inspect --format '{{.Id}}' "$base"; cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) |
        sha256sum | cut -c1-12)
    ref="calendars-e2e/$name:$key"
    if ! has_image "$ref"; then
        t0=$(now)
        log "building $ref from $dir"
        # The classic builder: the Debian client has no buildx plugin.
        DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" -t "$ref" "$dir" >/dev/null ||
            die "docker build of $name failed; run it by hand to see why: DOCKER_BUILDKIT=0 docker build --build-arg BASE=$base $dir"
        log "built $ref in $(elapsed "$t0") s"
    fi
    echo "$ref"
}

t0=$(now)
base=$(base_image)
postgres=$(build postgres "$E2E_DIR/images/postgres" "$base")
php=$(build php-apache "$E2E_DIR/images/php-apache" "$base")
log "images ready in $(elapsed "$t0") s"
echo "BASE_IMAGE=$base"
echo "POSTGRES_IMAGE=$postgres"
echo "PHP_IMAGE=$php"
