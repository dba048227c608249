#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine: gcc/make/binutils for native/, libvirt-dev (its headers
# for the layout table in native/shim/layout.c; it brings libvirt0, which KvmPresync.Libvirt binds), a TrueType font
# for the repro plots, and checks the .NET SDK. The libvirt daemon and QEMU, which only tests need, are installed by
# tools/ensure-test-deps.sh. Idempotent; runs apt-get only when something is missing.
set -euo pipefail
missing=()
packages=(gcc make binutils libc6-dev libvirt-dev)
for tool in gcc make objcopy ld; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -f /usr/include/libvirt/libvirt.h ] || missing+=("libvirt-dev")
# repro plots (ScottPlot/SkiaSharp) read TrueType fonts from /usr/share/fonts
if ! find /usr/share/fonts -name '*.ttf' -print -quit 2>/dev/null | grep -q .; then
  missing+=("fonts")
  packages+=(fonts-dejavu-core)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing build tools (missing: ${missing[*]})" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: need root to apt-get install ${packages[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "ensure-deps: the .NET 10 SDK (dotnet) is not on PATH; install it (https://learn.microsoft.com/dotnet/core/install/linux-debian)" >&2
  exit 1
fi
