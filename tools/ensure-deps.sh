#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine: gcc/make/binutils for native/ and the
# .NET SDK check. Idempotent; runs apt-get only when something is missing.
set -euo pipefail
missing=()
for tool in gcc make objcopy ld; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing build tools (missing: ${missing[*]})" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: need root to apt-get install gcc make binutils; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make binutils libc6-dev >/dev/null
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "ensure-deps: the .NET 10 SDK (dotnet) is not on PATH; install it (https://learn.microsoft.com/dotnet/core/install/linux-debian)" >&2
  exit 1
fi
