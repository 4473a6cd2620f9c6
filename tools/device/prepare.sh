#!/usr/bin/env bash
# Prepare everything one device call needs to run the GPU suite and the benchmarks on a machine that has a
# GPU but no Node and no network (see tools/device/README.md):
#   .device/node.xz         this machine's node binary, xz-compressed (~24 MB)
#   .device/js/             the GPU tests and benchmarks bundled to plain JS (no node_modules needed)
#   .device/data/           the data the benchmarks read (an imported ICT model, a triangulated mesh)
#   build-device/Release/faceg2e.node   the addon, sm_90 only (fits the 64 MiB transfer limit)
# Then carry [".device", "build-device/Release/faceg2e.node"] (not the whole build folder: 64 MiB per call) and run
# tools/device/on-device.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/data
grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
if [ ! -f .device/node.xz ] || [ "$(command -v node)" -nt .device/node.xz ]; then
  xz -T2 -6 -c "$(command -v node)" > .device/node.xz
fi
FACEG2E_CUDA_ARCHS="${FACEG2E_CUDA_ARCHS:-90-real}" npx cmake-js compile -l warn -O build-device -p "${JOBS:-2}"
node tools/device/bundle.mjs
ICT=../shared/models/ict-facekit-light
if [ -d "$ICT" ] && [ -f dist/cli/main.js ]; then
  # the benchmark mesh: ICT-FaceKit face + head and neck, triangulated, with UVs
  if [ ! -f .device/data/ict-head.obj ]; then
    node bin/faceg2e-native.js models import ict "$ICT" --parts face,head_neck -o .device/data/ict-head.safetensors
    node -e "
      const m = require('./dist/models/index.js'), o = require('./dist/io/obj.js');
      m.loadModel('.device/data/ict-head.safetensors').then((h) => o.writeObj('.device/data/ict-head.obj',
        { positions: h.template, tri: h.tri, uvs: h.uv, uvTri: h.uvTri })).catch((e) => { console.error(e); process.exit(1); });"
    rm -f .device/data/ict-head.safetensors
  fi
  # what the GPU tests read from ../shared (FACEG2E_SHARED_DIR there)
  [ -f .device/shared.tar.xz ] || tar -C .. -cf - shared/models/ict-facekit-light/generic_neutral_mesh.obj \
    shared/models/ict-facekit-light/identity_deltas.npy shared/models/ict-facekit-light/expression_deltas.npy \
    shared/models/ict-facekit-light/mode_names.json shared/models/ict-facekit-light/vertex_indices.json | xz -T2 -6 > .device/shared.tar.xz
fi
du -sh .device build-device/Release/faceg2e.node
