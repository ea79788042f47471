# Sourced by the scripts that boot a QEMU guest (scripts/vivid-test,
# scripts/powercut-test): the host tools, Debian's generic kernel (the
# cloud flavour has no media drivers) and the modules a guest loads.
#
#   guest_host_tools [PACKAGE...]   installs qemu-system-x86, busybox-static,
#                                   cpio, file and the packages named, when
#                                   missing (apt)
#   guest_kernel W DIR...           downloads the kernel package into W/debs
#                                   (reused between runs; KPKG=linux-image-…
#                                   pins it) and extracts vmlinuz and the
#                                   modules under kernel/DIR...; sets KVER
#                                   and VMLINUZ
#   guest_modules W OUT MODULE...   writes MODULE... and what they depend
#                                   on, decompressed, in load order, as
#                                   OUT/NN-name.ko (built-in ones skipped)
#
# Needs `log` defined by the caller.

guest_host_tools() {
    local need=("$@")
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    { [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static; } || need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    command -v file >/dev/null || need+=(file)
    local missing=() package
    for package in "${need[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        log "installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

guest_kernel() {
    local w=$1 dir
    shift
    mkdir -p "$w/debs"
    KPKG=${KPKG:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')}
    log "kernel package $KPKG"
    ls "$w"/debs/"${KPKG}"_*.deb >/dev/null 2>&1 || (cd "$w/debs" && apt-get download "$KPKG" 2>/dev/null)
    local deb
    deb=$(ls "$w"/debs/"${KPKG}"_*.deb | head -1)
    rm -rf "$w/kernel"
    mkdir -p "$w/kernel"
    local patterns=('./boot/vmlinuz-*' './lib/modules/*/modules.builtin')
    for dir in "$@"; do patterns+=("./lib/modules/*/kernel/$dir/*"); done
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$w/kernel" --wildcards "${patterns[@]}"
    KVER=$(ls "$w/kernel/lib/modules" | head -1)
    VMLINUZ=$w/kernel/boot/vmlinuz-$KVER
}

guest_modules() {
    local w=$1 out=$2 f b name i=0
    shift 2
    local modules=$w/kernel/lib/modules/$KVER
    declare -A ko seen builtin
    while read -r f; do
        b=${f##*/}
        b=${b%%.ko*}
        ko[$b]=$f
        ko[${b//-/_}]=$f
    done < <(find "$modules" -name '*.ko*')
    while read -r f; do
        b=${f##*/}
        b=${b%.ko}
        builtin[$b]=1
        builtin[${b//-/_}]=1
    done < <(cat "$modules/modules.builtin" 2>/dev/null)
    local order=()
    depends_of() {
        case $1 in
            *.xz) xz -dc "$1" ;;
            *.zst) zstd -dcq "$1" ;;
            *) cat "$1" ;;
        esac | tr '\0' '\n' | grep -m1 '^depends=' | cut -d= -f2 || true
    }
    resolve() {
        local name=$1 dep
        [ -n "${seen[$name]:-}" ] && return
        seen[$name]=1
        [ -n "${builtin[$name]:-}" ] && return
        [ -n "${ko[$name]:-}" ] || { log "module $name missing from $KPKG"; exit 1; }
        for dep in $(depends_of "${ko[$name]}" | tr ',' ' '); do resolve "$dep"; done
        order+=("$name")
    }
    for name in "$@"; do resolve "$name"; done
    log "modules: ${order[*]}"
    mkdir -p "$out"
    for name in "${order[@]}"; do
        f=${ko[$name]}
        local dest=$out/$(printf %02d $i)-$name.ko
        case $f in
            *.xz) xz -dc "$f" >"$dest" ;;
            *.zst) zstd -dcq "$f" -o "$dest" ;;
            *) cp "$f" "$dest" ;;
        esac
        i=$((i + 1))
    done
}
