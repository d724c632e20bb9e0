#!/usr/bin/env bash
# The kernels the boot tests run, cached outside the clone.
#
#   scripts/kernels.sh NAME     NAME: a kernel of scripts/machines.py (`machines.py kernel-names`)
#   scripts/kernels.sh --plan   one line per kernel that is not cached yet and must be built
#
# Prints the path of a bootable kernel image on stdout and exits 0. When no kernel can be had
# (no registry and nothing cached, no linux-source), prints one line `SKIP: <reason>` and exits
# 77; any other failure exits 1. Progress goes to stderr.
#
# Which kernels there are is scripts/machines.py's table (`machines.py kernels`): the boot
# machines' table, which says of each kernel where it comes from.
#
# A Debian kernel: found through its metapackage every
# time (security updates rename the versioned package), fetched with `apt-get download` and
# unpacked with `dpkg -x`. Every arch, the host's own included, gets an apt state of its own
# under the cache (APT::Architecture, lists, archives, an empty dpkg status), so the system's
# dpkg architectures and lists are never touched.
#
# A built kernel (Debian ships no big-endian ppc64 kernel and no arm64 kernel with 64K base
# pages; a small x86_64 one is the mutants' twin): built from Debian's linux-source with
# boot/<FAMILY>.config over allnoconfig and the family's compiler (a cross gcc, or the host's),
# one at a time; the image is cached under the source version and a hash of the config and
# this recipe. A family may have variants, each the same configuration with one patch of
# boot/ applied to the source (the mutants: boot/hugetlb-mutant.patch, -narrow.patch). Asking
# for any member builds every member not cached yet, in one object tree (the plain kernel
# first, then each variant: apply its patch, rebuild what it touches, cache the image, reverse
# the patch), so a variant costs a recompile of mm/hugetlb.c and a relink. A variant's key adds
# the hash of its patch.
#
# Cache: $HUGERACE_CACHE (default /var/cache/hugerace):
#   apt/<arch>/                  that arch's apt lists and package cache
#   kernels/<arch>/<pkg>_<ver>/   the unpacked Debian kernel package (the .deb is not kept)
#   src/linux-source-<ver>/       the unpacked kernel source (shared)     } removed after a build
#   build/<arch>-<ver>/           the object tree (O=)                     } unless
#                                 HUGERACE_KEEP_KERNEL_TREE=1 (incremental rebuilds when the config changes)
#   kernels/ppc64be/<key>/vmlinux the built kernels, and their .config
#   kernels/arm64-64k/<key>/Image
#   kernels/x86_64/<key>/bzImage  (and kernels/<variant>/<key>/ likewise)
# A new kernel version (or config) prunes the entries it supersedes.
set -euo pipefail

CACHE=${HUGERACE_CACHE:-/var/cache/hugerace}
HERE=$(cd "$(dirname "$0")/.." && pwd)
# The table: `debian NAME APT_ARCH METAPACKAGE` and `built NAME MAKE_ARCH CROSS_COMPILE TARGET
# IMAGE COLD_MIN [VARIANT=PATCH...]` lines. FAMILIES: one line per family of built kernels,
# NAME MAKE_ARCH CROSS_COMPILE TARGET IMAGE, then its variants; NAME's config is boot/NAME.config.
ARCH=${1:?usage: kernels.sh NAME|--plan, NAME one of: $(python3 "$HERE/scripts/machines.py" kernel-names)}
# (scripts/boot.py passes the table in HUGERACE_KERNEL_TABLE: one Python start per lookup
# spared, ~0.1 s each behind a version manager's shim.)
TABLE=${HUGERACE_KERNEL_TABLE:-$(python3 "$HERE/scripts/machines.py" kernels)}
FAMILIES=()
declare -A DEBIAN COLD_MIN
while read -r kind name f1 f2 f3 f4 f5 variants; do
    case $kind in
        debian) DEBIAN[$name]="$f1 $f2" ;;
        built)
            COLD_MIN[$name]=$f5
            FAMILIES+=("$name $f1 $f2 $f3 $f4${variants:+ $variants}") ;;
    esac
done <<<"$TABLE"

log() { printf 'kernels[%s]: %s\n' "$ARCH" "$*" >&2; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }

mkdir -p "$CACHE"
# One run per arch (or family of built kernels) at a time: two `make test` runs must not
# unpack into the same place.
# family_of MEMBER: the family's line (its NAME first) if MEMBER is a built kernel.
family_of() {
    local f m
    for f in "${FAMILIES[@]}"; do
        [ "${f%% *}" = "$1" ] && { echo "$f"; return 0; }
        for m in $f; do
            case $m in "$1"=*) echo "$f"; return 0 ;; esac
        done
    done
    return 1
}
LOCKNAME=$ARCH
FAMILY=$(family_of "$ARCH") && LOCKNAME=${FAMILY%% *}
if [ "$ARCH" != --plan ]; then
    exec 9>"$CACHE/.lock-$LOCKNAME"
    flock 9
fi

# Remove every entry of a cache directory (whose name starts with PREFIX, if given) but the one
# just made current (superseded kernel versions, object trees and sources of older
# linux-source releases).
prune() {
    local parent=$1 keep=$2 prefix=${3:-} d
    for d in "$parent/$prefix"*; do
        [ -e "$d" ] && [ "$d" != "$keep" ] && { log "pruning $d"; rm -rf "$d"; }
    done
    return 0
}

# ---- Debian kernels ----

apt_opts() {
    local a=$1 d="$CACHE/apt/$1"
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state"
    [ -e "$d/status" ] || : >"$d/status"
    printf '%s\n' \
        -o "APT::Architecture=$a" -o "APT::Architectures=$a" \
        -o "Dir::State=$d/state" -o "Dir::State::Lists=$d/lists" \
        -o "Dir::State::status=$d/status" -o "Dir::Cache=$d/cache" \
        -o "APT::Sandbox::User=root" -o "Acquire::Retries=2" -o "Debug::NoLocking=1" \
        -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
}

# The newest kernel image already unpacked under this name, if any.
cached_debian() {
    local a=$1
    { ls -1d "$CACHE/kernels/$a"/linux-image-*/boot/vmlinu[xz]-* 2>/dev/null || true; } | sort -V | tail -n1
}

# debian_kernel ARCH METAPACKAGE [NAME]: NAME (default ARCH) keys the kernel's cache, so that
# two kernels of one arch (Debian 12's 6.1 and its 6.12) never prune each other.
debian_kernel() {
    local a=$1 meta=$2 name=${3:-$1} opts pkg ver dir img
    mapfile -t opts < <(apt_opts "$a")
    log "apt-get update (own lists for $a)"
    if ! apt-get "${opts[@]}" -qq update >"$CACHE/apt/$a/update.log" 2>&1; then
        log "apt-get update failed: $(tail -n1 "$CACHE/apt/$a/update.log")"
    fi
    pkg=$(apt-cache "${opts[@]}" depends "$meta" 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1) || true
    if [ -z "$pkg" ]; then
        img=$(cached_debian "$name")
        if [ -n "$img" ]; then
            log "cannot resolve $meta (no registry?); using the cached $img"
            echo "$img"; return 0
        fi
        skip "cannot resolve $meta through apt for $a and nothing is cached"
    fi
    ver=$(apt-cache "${opts[@]}" show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
    dir="$CACHE/kernels/$name/${pkg}_$ver"
    if [ ! -e "$dir/.done" ]; then
        log "$meta -> $pkg $ver: downloading"
        rm -rf "$dir" "$dir.deb.d"
        mkdir -p "$dir.deb.d"
        if ! (cd "$dir.deb.d" && apt-get "${opts[@]}" -qq download "$pkg:$a") >&2; then
            rm -rf "$dir.deb.d"
            img=$(cached_debian "$name")
            [ -n "$img" ] && { log "download failed; using the cached $img"; echo "$img"; return 0; }
            skip "apt-get download $pkg:$a failed and nothing is cached"
        fi
        dpkg -x "$dir.deb.d"/*.deb "$dir"
        rm -rf "$dir.deb.d"
        # Only the image boots here (the initramfs loads no modules): drop the ~400M of the rest.
        find "$dir" -mindepth 1 -maxdepth 1 ! -name boot -exec rm -rf {} +
        touch "$dir/.done"
        prune "$CACHE/kernels/$name" "$dir"
    else
        log "$meta -> $pkg $ver (cached)"
    fi
    img=$(ls -1 "$dir"/boot/vmlinu[xz]-* 2>/dev/null | head -n1)
    [ -n "$img" ] || { log "no kernel image in $pkg"; exit 1; }
    echo "$img"
}

# ---- kernels built here: big-endian ppc64, arm64 with 64K pages, x86_64; their mutants ----

# The source package (linux-source-6.1) and its version, or nothing if not installed.
source_version() {
    srcpkg=$(dpkg-query -W -f='${Depends}' linux-source 2>/dev/null | grep -o 'linux-source-[0-9.]*' | head -n1) || true
    ver=$( [ -n "$srcpkg" ] && dpkg-query -W -f='${Version}' "$srcpkg" 2>/dev/null) || true
}

# member_hash NAME [PATCH]: the cache key's hash for one member of the family NAME: its config
# and the recipe, and for a variant its patch.
member_hash() {
    local name=$1 patch=${2:-}
    # Bump when the build recipe below changes in a way that changes the kernel.
    local recipe="allnoconfig+KCONFIG_ALLCONFIG v1"
    { cat "$HERE/boot/$name.config"; echo "$recipe"; [ -z "$patch" ] || cat "$HERE/boot/$patch"; } |
        sha256sum | cut -c1-12
}

# built_kernel WANT NAME KARCH CROSS_COMPILE TARGET IMAGE [VARIANT=PATCH...]: make sure every
# member of the family NAME is cached (building `make TARGET` for ARCH=KARCH from Debian's
# linux-source with boot/NAME.config over allnoconfig, and each VARIANT with boot/PATCH
# applied), then print the path of member WANT's image. IMAGE is a path in the object tree,
# cached as kernels/<member>/<key>/<its basename>. CROSS_COMPILE "-" is the host gcc.
built_kernel() {
    local want=$1 name=$2 karch=$3 cc=$4 target=$5 image=$6
    shift 6
    local frag="$HERE/boot/$name.config" file=${image##*/} srcpkg ver tarball
    local src obj out m member patch
    [ "$cc" = - ] && cc=""
    # The members: the plain kernel (no patch) and each variant.
    local -a members=("$name=") todo=()
    members+=("$@")
    source_version
    if [ -z "$ver" ]; then
        patch=""
        for m in "${members[@]}"; do if [ "${m%%=*}" = "$want" ]; then patch=${m#*=}; fi; done
        out=$({ ls -1d "$CACHE/kernels/$want"/*-"$(member_hash "$name" "$patch")/$file" 2>/dev/null || true; } | sort -V | tail -n1)
        [ -n "$out" ] && { log "linux-source not installed; using the cached $out"; echo "$out"; return 0; }
        skip "linux-source is not installed (make boot-deps) and no $want kernel is cached"
    fi
    for m in "${members[@]}"; do
        member=${m%%=*} patch=${m#*=}
        out="$CACHE/kernels/$member/$ver-$(member_hash "$name" "$patch")"
        if [ -e "$out/$file" ]; then
            if [ "$member" = "$want" ]; then log "$srcpkg $ver, $member ${patch:+($patch) }(cached)"; fi
        else
            todo+=("$m")
        fi
    done
    if [ ${#todo[@]} -gt 0 ]; then
        command -v "${cc}gcc" >/dev/null || skip "${cc}gcc is missing (make boot-deps)"
        command -v patch >/dev/null || skip "patch is missing (make boot-deps)"
        tarball=/usr/src/$srcpkg.tar.xz
        [ -r "$tarball" ] || skip "$tarball is missing"
        log "building ${todo[*]%%=*} in one object tree"
        # The unpacked source is shared by every kernel built here (and removed after a build).
        exec 7>"$CACHE/.lock-src"
        flock 7
        src="$CACHE/src/$srcpkg-$ver"
        # A run killed with a patch applied leaves .patched: that source is not pristine.
        if [ ! -e "$src/.done" ] || [ -e "$src/.patched" ]; then
            log "unpacking $tarball"
            # A fresh source keeps the tarball's old mtimes: an object tree kept from a
            # variant would look up to date with its patched objects. Start those afresh.
            rm -rf "$src" "$src.tmp" "$CACHE/build/"*-"$ver"
            mkdir -p "$src.tmp"
            tar -xf "$tarball" -C "$src.tmp" --strip-components=1
            mv "$src.tmp" "$src"
            touch "$src/.done"
        fi
        # Keyed by the source version only: a changed config rebuilds incrementally.
        obj="$CACHE/build/$name-$ver"
        mkdir -p "$obj"
        local mk=(make -s -C "$src" O="$obj" ARCH="$karch" CROSS_COMPILE="$cc")
        log "configuring (allnoconfig + boot/$name.config)"
        "${mk[@]}" KCONFIG_ALLCONFIG="$frag" allnoconfig >&2
        # Every symbol the fragment asks for must have survived Kconfig's dependencies.
        local missing="" line
        while IFS= read -r line; do
            case $line in CONFIG_*=*) grep -qx "$line" "$obj/.config" || missing+=" $line";; esac
        done <"$frag"
        [ -z "$missing" ] || { log "config lost:$missing"; exit 1; }
        for m in "${todo[@]}"; do
            member=${m%%=*} patch=${m#*=}
            if [ -n "$patch" ]; then
                log "$member: applying boot/$patch"
                echo "$patch" >"$src/.patched"
                patch -s -p1 -d "$src" <"$HERE/boot/$patch" >&2 || { log "boot/$patch does not apply to $srcpkg $ver"; exit 1; }
            fi
            log "$member: building $target ($(nproc) jobs, niced)"
            local t0=$SECONDS
            nice -n 10 "${mk[@]}" -j"$(nproc)" "$target" >&2
            log "$member: built in $((SECONDS - t0))s"
            if [ -n "$patch" ]; then
                patch -s -R -p1 -d "$src" <"$HERE/boot/$patch" >&2 || { log "boot/$patch does not reverse"; exit 1; }
                rm -f "$src/.patched"
            fi
            out="$CACHE/kernels/$member/$ver-$(member_hash "$name" "$patch")"
            mkdir -p "$out"
            cp "$obj/$image" "$out/$file.tmp"
            cp "$obj/.config" "$out/config"
            [ -z "$patch" ] || cp "$HERE/boot/$patch" "$out/"
            mv "$out/$file.tmp" "$out/$file"
            prune "$CACHE/kernels/$member" "$out"
        done
        if [ -n "${HUGERACE_KEEP_KERNEL_TREE:-}" ]; then
            prune "$CACHE/build" "$obj" "$name-"
            prune "$CACHE/src" "$src"
        else
            # 1.6G of source and objects: unpacked again (~15s) the next time a build is needed.
            rm -rf "$CACHE/build" "$CACHE/src"
        fi
    fi
    for m in "${members[@]}"; do
        member=${m%%=*} patch=${m#*=}
        if [ "$member" = "$want" ]; then echo "$CACHE/kernels/$member/$ver-$(member_hash "$name" "$patch")/$file"; fi
    done
    return 0
}

# --plan: the built kernels a boot run would have to build first, and about how long.
plan() {
    local f name m member patch file srcpkg ver total=0 n
    source_version
    [ -n "$ver" ] || { echo "kernels: linux-source is not installed: the built kernels are SKIPs unless cached"; return 0; }
    for f in "${FAMILIES[@]}"; do
        set -- $f
        name=$1 file=${5##*/}
        shift 5
        local -a miss=()
        for m in "$name=" "$@"; do
            member=${m%%=*} patch=${m#*=}
            [ -e "$CACHE/kernels/$member/$ver-$(member_hash "$name" "$patch")/$file" ] || miss+=("$member")
        done
        [ ${#miss[@]} -gt 0 ] || continue
        # A cold tree costs the full build, each further member well under a minute; a kept
        # tree (HUGERACE_KEEP_KERNEL_TREE) rebuilds only what changed.
        if [ -d "$CACHE/build/$name-$ver" ]; then
            n=${#miss[@]}
        else
            n=$(( ${COLD_MIN[$name]} + ${#miss[@]} - 1 ))
        fi
        total=$((total + n))
        echo "kernels: will build ${miss[*]} from $srcpkg $ver (one object tree, about $n min on 2 cores)"
    done
    [ "$total" -eq 0 ] && echo "kernels: every built kernel is cached" ||
        echo "kernels: about $total min of kernel builds before those boots"
    return 0
}

case $ARCH in
    --plan) plan ;;
    *)
        if [ -n "${DEBIAN[$ARCH]+set}" ]; then
            # shellcheck disable=SC2086
            set -- ${DEBIAN[$ARCH]}
            debian_kernel "$1" "$2" "$ARCH"
        else
            [ -n "$FAMILY" ] || { echo "unknown kernel $ARCH (scripts/machines.py kernel-names)" >&2; exit 1; }
            # shellcheck disable=SC2086
            built_kernel "$ARCH" $FAMILY
        fi ;;
esac
