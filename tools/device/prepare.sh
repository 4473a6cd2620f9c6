#!/usr/bin/env bash
# Prepare everything one device call needs to run the GPU suite and the benchmarks on a machine that has a
# GPU but no Node and no network (see tools/device/README.md):
#   .device/node.xz         this machine's node binary, xz-compressed (~24 MB)
#   .device/js/             the GPU tests and benchmarks bundled to plain JS (no node_modules needed)
#   .device/data/           the data the benchmarks read (an imported ICT model, a triangulated mesh)
#   build-device/Release/faceg2e.node   the addon, sm_90 only (fits the 64 MiB transfer limit)
# Then carry [".device", "build-device"] and run tools/device/on-device.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/data
grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
if [ ! -f .device/node.xz ] || [ "$(command -v node)" -nt .device/node.xz ]; then
  xz -T2 -6 -c "$(command -v node)" > .device/node.xz
fi
FACEG2E_CUDA_ARCHS="${FACEG2E_CUDA_ARCHS:-90-real}" npx cmake-js compile -l warn -O build-device -p "${JOBS:-2}"
node tools/device/bundle.mjs
if [ -d ../shared/models/ict-facekit-light ] && [ -f dist/cli/main.js ] && [ ! -f .device/data/ict.safetensors ]; then
  node bin/faceg2e-native.js models import ict ../shared/models/ict-facekit-light -o .device/data/ict.safetensors || echo "prepare: ICT import failed (benchmarks that need it will say so)"
fi
du -sh .device build-device/Release/faceg2e.node
