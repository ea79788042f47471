# Sourced by scripts/build-firmware and scripts/arm-test, not run:
# `cross_setup TARGET` installs what a build for the Rust target TARGET
# needs on a Debian/Ubuntu machine (scripts/setup's packages, the rustup
# target, the cross gcc and the target's libc and kernel headers, through
# sudo when not root) and exports the cross linker, C compiler (onig_sys
# and other -sys crates build C code) and bindgen sysroot (v4l2-sys-mit)
# for cargo. Nothing to install or set for the host's own target.

cross_setup() {
    local target=$1 host gnu pkgs=()
    scripts/setup
    host=$(rustc -vV | awk '/^host:/ { print $2 }')
    [ "$target" = "$host" ] && return 0
    case "$target" in
        aarch64-unknown-linux-gnu)
            gnu=aarch64-linux-gnu
            pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
        armv7-unknown-linux-gnueabihf)
            gnu=arm-linux-gnueabihf
            pkgs=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
        *)
            echo "cross: no cross toolchain known for target $target" >&2
            return 1 ;;
    esac
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    local missing=() pkg
    for pkg in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "cross: installing ${missing[*]} with apt-get" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # CARGO_TARGET_<TRIPLE>_LINKER, CC_<triple>, AR_<triple>, ... as cargo,
    # the cc crate and bindgen read them.
    local upper=${target//-/_} lower
    upper=${upper^^}
    lower=${target//-/_}
    export "CARGO_TARGET_${upper}_LINKER=$gnu-gcc"
    export "CC_${lower}=$gnu-gcc"
    export "AR_${lower}=$gnu-ar"
    export "BINDGEN_EXTRA_CLANG_ARGS_${lower}=--sysroot=/usr/$gnu"
    # qemu-user's -L: where the target's dynamic loader and libc live.
    CROSS_SYSROOT=/usr/$gnu
    export CROSS_SYSROOT
}
