#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, after tools/device/prepare.sh here:
#   bash tools/device/on-device.sh [tests|bench|all] [filter]
# Writes logs under $OUT (or ./device-out).
set -uo pipefail
OUT="${OUT:-$PWD/device-out}"; mkdir -p "$OUT"
what="${1:-all}"; filter="${2:-}"
mkdir -p /tmp/fgnode && xz -d -c .device/node.xz > /tmp/fgnode/node && chmod +x /tmp/fgnode/node
export PATH="/tmp/fgnode:$PATH" FACEG2E_ADDON_PATH="$PWD/build-device/Release/faceg2e.node" FACEG2E_DEVICE_DATA="$PWD/.device/data"
if [ -f .device/shared.tar.xz ]; then mkdir -p /tmp/fgshared && xz -d -c .device/shared.tar.xz | tar -x -C /tmp/fgshared && export FACEG2E_SHARED_DIR=/tmp/fgshared/shared; fi
[ -f .device/data/ict-head.obj ] && export FACEG2E_BENCH_MESH="$PWD/.device/data/ict-head.obj"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; node --version; date -u; } | tee "$OUT/env.txt"
rc=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  files=$(ls .device/js/test/gpu/*.test.js | grep -- "$filter" || true)
  node --test --test-reporter=spec --test-concurrency=1 $files 2>&1 | tee "$OUT/gpu-tests.log"; rc=${PIPESTATUS[0]}
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for b in $(ls .device/js/bench/*.js 2>/dev/null | grep -- "$filter" || true); do
    echo "=== $b" | tee -a "$OUT/bench.log"
    timeout 240 node "$b" 2>&1 | tee -a "$OUT/bench.log"
  done
fi
exit $rc
