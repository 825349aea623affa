#!/usr/bin/env bash
# Runs a command (the npm scripts that start node) under Node >= 22: when the node on PATH is older,
# .ci/node-runtime.sh fetches Node 24 LTS into .parity/runtime once, says so, and puts it first on PATH.
# Usage: bash .ci/with-node.sh node <script> [args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-runtime.sh"
exec "$@"
