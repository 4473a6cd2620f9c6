#!/usr/bin/env bash
# ONNX export self-test on the GPU machine (tiny random diffusers models; no downloads, no installs).
# Run from the repository root with a diffusers source tree carried along (never committed), e.g.:
#   bash tools/device/export-test.sh [.third_party/diffusers]          (or DIFFUSERS_SRC=... )
# It needs python3 with torch, onnx, onnxruntime and transformers (the device image has them).
# Writes $OUT/export-test.log, $OUT/results.json and the tiny manifests ($OUT/manifests/<variant>/faceg2e-engines.json).
set -euo pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
SRC="${1:-${DIFFUSERS_SRC:-.third_party/diffusers}}"
if [ -d "$SRC/src/diffusers" ]; then SRC="$SRC/src"; fi
if [ ! -f "$SRC/diffusers/__init__.py" ]; then
  echo "export-test: no diffusers sources at '$SRC' (expected SRC/src/diffusers or SRC/diffusers); carry them and pass the folder" >&2
  exit 2
fi
SRC="$(cd "$SRC" && pwd)"
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
WORK="$(mktemp -d /tmp/fg-export-test.XXXXXX)"
{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
  python3 - <<'PY'
import sys, importlib
print("python", sys.version.split()[0], sys.executable)
for m in ("torch", "onnx", "onnxruntime", "transformers", "diffusers", "numpy", "safetensors", "huggingface_hub"):
    try:
        mod = importlib.import_module(m)
        print("%-16s %s  %s" % (m, getattr(mod, "__version__", "?"), getattr(mod, "__file__", "")))
    except Exception as e:
        print("%-16s MISSING (%s: %s)" % (m, type(e).__name__, e))
import torch
print("cuda available:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
} 2>&1 | tee "$OUT/export-test.log"

rc=0
python3 tools/export/test_export.py --out "$WORK" "${@:2}" 2>&1 | tee -a "$OUT/export-test.log" || rc=$?
cp "$WORK/results.json" "$OUT/" 2>/dev/null || true
for v in sd15 sd21; do
  if [ -f "$WORK/$v/faceg2e-engines.json" ]; then mkdir -p "$OUT/manifests/$v" && cp "$WORK/$v/faceg2e-engines.json" "$OUT/manifests/$v/"; fi
done
# Validate the manifests with the library's reader where Node and tsx are available.
if command -v node >/dev/null 2>&1 && [ -d node_modules/tsx ]; then
  node --import tsx tools/export/check-manifest.ts "$WORK/sd15" "$WORK/sd21" 2>&1 | tee -a "$OUT/export-test.log" || rc=1
else
  echo "manifest check with lib/engines.ts skipped here (no node/tsx); run: node --import tsx tools/export/check-manifest.ts --no-files <OUT>/manifests/*" | tee -a "$OUT/export-test.log"
fi
rm -rf "$WORK"
echo "export-test: exit $rc" | tee -a "$OUT/export-test.log"
exit $rc
