#!/usr/bin/env bash
# Compile-check the TensorRT code (native/engines/trt/) against the headers in INCLUDE_DIR, without linking
# libnvinfer (it need not be installed): `bash tools/check-tensorrt.sh .third_party/trt10/include`.
# Uses nvcc's host compiler (or g++) with the CUDA include dir. Exits 0 when everything compiles.
#   CXX=...        compiler (default: g++)
#   CUDA_HOME=...  CUDA toolkit (default: /usr/local/cuda)
set -euo pipefail
INC="${1:-}"
if [ -z "$INC" ] || [ ! -f "$INC/NvInfer.h" ]; then
  echo "usage: tools/check-tensorrt.sh INCLUDE_DIR   (a folder with NvInfer.h, NvOnnxParser.h, NvInferVersion.h)" >&2
  [ -n "$INC" ] && echo "check-tensorrt: $INC/NvInfer.h not found" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
CXX="${CXX:-g++}"
if [ ! -f "$CUDA_HOME/include/cuda_runtime_api.h" ]; then
  echo "check-tensorrt: $CUDA_HOME/include/cuda_runtime_api.h not found (set CUDA_HOME)" >&2
  exit 2
fi
ver=$(awk '/define TRT_(MAJOR|MINOR|PATCH)_ENTERPRISE|define NV_TENSORRT_(MAJOR|MINOR|PATCH) [0-9]/ {print $3}' "$INC/NvInferVersion.h" | head -3 | paste -sd. -)
echo "check-tensorrt: TensorRT headers $ver in $INC; $($CXX --version | head -1)"
status=0
for src in "$ROOT"/native/engines/trt/*.cpp; do
  if "$CXX" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -Wno-unused-parameter \
      -isystem "$INC" -isystem "$CUDA_HOME/include" -I"$ROOT/native" "$src"; then
    echo "  ok   ${src#$ROOT/}"
  else
    echo "  FAIL ${src#$ROOT/}"
    status=1
  fi
done
exit $status
