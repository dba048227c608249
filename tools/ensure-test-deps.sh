#!/usr/bin/env bash
# Installs what the tests need beyond the build (tools/ensure-deps.sh): a libvirt daemon and QEMU for the libvirt
# binding tests (tests/KvmPresync.Tests/Libvirt/, docs/LIBVIRT.md). Idempotent and quick when all is there: it asks
# dpkg, and runs apt-get only when a package is missing. The daemons are not started here (no systemd): the tests'
# LibvirtDaemon fixture starts its own in a private mount namespace and stops it again.
# Measured on a fresh Debian 12 machine of the CI kind: about 35 s (238 packages) from a warm mirror.
set -euo pipefail
packages=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-test-deps: installing ${missing[*]} (for the libvirt tests)" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-test-deps: need root to apt-get install ${missing[*]}; the libvirt tests will skip without them" >&2
  exit 0
fi
start=$(date +%s)
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "ensure-test-deps: installed in $(( $(date +%s) - start )) s" >&2
