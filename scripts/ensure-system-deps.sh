#!/usr/bin/env bash
# Installs what the tests need from the operating system (Debian packages) when it is missing:
# chromium for the dashboard's browser tests (test/browser, driven by playwright-core).
# CI runs this as root on a fresh machine; on a machine that has everything it does nothing.
set -euo pipefail

# Debian package -> a command it provides.
declare -A needed=(
  [chromium]=/usr/bin/chromium
)

missing=()
for pkg in "${!needed[@]}"; do
  if [[ ! -x "${needed[$pkg]}" ]]; then missing+=("$pkg"); fi
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi

echo "== installing system packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "error: ${missing[*]} missing and this is not root; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists of a fresh image may be stale or empty: update only when the install fails.
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
for pkg in "${missing[@]}"; do
  if [[ ! -x "${needed[$pkg]}" ]]; then
    echo "error: $pkg installed but ${needed[$pkg]} is still missing" >&2
    exit 1
  fi
done
