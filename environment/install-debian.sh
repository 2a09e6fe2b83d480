#!/usr/bin/env bash
# Installs what cogd needs on Debian 12 (as root, or through sudo): GDAL's command-line tools,
# GDAL's Python bindings (for GDAL's COG validator in the tests), and the toolchain that builds
# better-sqlite3 when no prebuilt binary can be fetched. Node.js 20 comes from the machine.
set -euo pipefail
packages=(gdal-bin python3-gdal python3 make g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
gdal_translate --version
node --version
