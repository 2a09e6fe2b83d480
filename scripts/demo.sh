#!/usr/bin/env bash
# One command from a fresh clone to a converted manifest: installs GDAL (Debian) and the npm
# dependencies, builds, and runs the demo (see scripts/demo.mjs; extra arguments go to it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash environment/install-debian.sh >/dev/null
npm ci --no-audit --no-fund --loglevel=error
npm run --silent demo -- "$@"
