#!/usr/bin/env bash
# Builds the Linux guest image from Debian packages only (make guest-image; docs/WORKLOADS.md, "Linux guest"):
#   build/guest-image/vmlinuz            Debian's kernel (linux-image-amd64), copied from /boot
#   build/guest-image/initramfs.cpio.gz  busybox-static + /init + our static workload (native/linux-guest/workload.c)
#   build/guest-image/manifest.json      package versions and sha256 of every output
# Installs what it needs with apt (linux-image-amd64 busybox-static gcc libc6-dev cpio qemu-system-x86; QEMU is for
# the boot test), only when something is missing. The output is reproducible: same packages, same bytes.
# Usage: tools/build-guest-image.sh [OUT_DIR]   (default build/guest-image)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/guest-image}
start=$(date +%s.%N)

packages=(linux-image-amd64 busybox-static gcc libc6-dev cpio gzip qemu-system-x86)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-guest-image: need root to apt-get install ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "build-guest-image: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Try without refreshing the package lists first; refresh once if that fails (fresh machine, stale lists).
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The newest installed Debian kernel.
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "build-guest-image: no /boot/vmlinuz-* after installing linux-image-amd64" >&2; exit 1; }
kver=${kernel#/boot/vmlinuz-}

mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kp-guest-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run}

# Our workload: the freestanding guest's workload sources over a Linux process backend, static.
g=native/guest
gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -DKP_HOSTED -ffile-prefix-map="$PWD"=. -Wl,--build-id=none \
  -o "$root/bin/kp-workload" native/linux-guest/workload.c \
  $g/rt.c $g/boot.c $g/content.c $g/fill.c $g/region.c $g/heartbeat.c $g/main.c \
  $g/wl_idle.c $g/wl_text.c $g/wl_audio.c $g/wl_movie.c $g/wl_pattern.c $g/wl_replay.c $g/wl_database.c
strip "$root/bin/kp-workload"

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 native/linux-guest/init "$root/init"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

# Reproducible archive: fixed order, fixed times, no owners from this machine.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
  | gzip -9 -n > "$tmp/initramfs.cpio.gz"

install -m 0644 "$kernel" "$out/vmlinuz"
install -m 0644 "$tmp/initramfs.cpio.gz" "$out/initramfs.cpio.gz"

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
kpkg=$(dpkg -S "$kernel" 2>/dev/null | cut -d: -f1 || echo unknown)
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$out/manifest.json" <<EOF
{
  "kernel": { "file": "vmlinuz", "release": "$kver", "package": "$kpkg", "package_version": "$(ver "$kpkg")", "meta_package_version": "$(ver linux-image-amd64)", "sha256": "$(sha "$out/vmlinuz")" },
  "initramfs": { "file": "initramfs.cpio.gz", "sha256": "$(sha "$out/initramfs.cpio.gz")", "bytes": $(stat -c %s "$out/initramfs.cpio.gz") },
  "workload": { "path": "/bin/kp-workload", "source": "native/linux-guest/workload.c + native/guest/*.c", "sha256": "$(sha "$root/bin/kp-workload")", "gcc_version": "$(ver gcc-12 2>/dev/null || ver gcc)", "libc6_dev_version": "$(ver libc6-dev)" },
  "busybox": { "path": "/bin/busybox", "package_version": "$(ver busybox-static)", "sha256": "$(sha "$root/bin/busybox")" },
  "init": { "path": "/init", "sha256": "$(sha "$root/init")" },
  "kernel_command_line": "console=ttyS0 panic=-1 pti=on kp.workload=text|audio|movie|database|idle kp.seed=N"
}
EOF
printf "build-guest-image: %s (kernel %s, initramfs %s bytes) in %s s\n" "$out" "$kver" \
  "$(stat -c %s "$out/initramfs.cpio.gz")" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
