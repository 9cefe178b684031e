#!/usr/bin/env bash
# Installs the Debian packages kiln builds and tests with, skipping what is already there.
# Why each one: see README.md, "Dependencies".
set -euo pipefail
pkgs=(cmake make gcc pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata
      libstb-dev libcjson-dev libcmocka-dev python3-onnx python3-numpy fonts-dejavu-core nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian (e.g. nvm); accept any working node + npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done; missing=("${tmp[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# ONNX Runtime (the CPU anchor and the reference checker in tests), from npm without its install scripts.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$root/bench/node_modules/onnxruntime-node/package.json" ]; then
  echo "setup: installing onnxruntime-node into bench/node_modules"
  (cd "$root/bench" && npm install --silent --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) \
    || echo "setup: warning: npm install of onnxruntime-node failed; ORT-based tests will skip"
fi
