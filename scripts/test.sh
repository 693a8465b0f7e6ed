#!/usr/bin/env bash
# Runs the whole test suite (unit + integration, as root) on Debian 12 with Node.js 20.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d node_modules ] || npm ci
npm test
