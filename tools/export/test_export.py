#!/usr/bin/env python3
"""Self-test of the ONNX export: tiny, randomly initialised diffusers/transformers models (no downloads), exported
with the same code as export.py, run with onnxruntime and compared with the PyTorch models themselves.

    PYTHONPATH=<diffusers>/src python tools/export/test_export.py --out DIR [--diffusers-src DIR] [--exporter auto]

Checks, for an SD 1.5-like and an SD 2.1-like configuration:
  * every ONNX graph passes onnx.checker and matches its manifest entry (names, dtypes, ranks, dynamic dims);
  * onnxruntime reproduces the diffusers/transformers outputs (not the wrappers': the reference is the library
    call with the documented conventions) at the traced shape and at another batch and latent size;
  * ControlNet residuals from ONNX fed to the ONNX UNet give the torch ControlNet+UNet result; the residual
    inputs, the conditioning scale and the timestep change the output (they are wired, not constant-folded);
  * fp16 exports keep float32 boundaries and float16 residuals (numerics checked when onnxruntime can run them).
Prints a table and exits 1 on any mismatch. Writes DIR/results.json.
"""
import argparse
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--diffusers-src", help="diffusers source folder (its src/ or the folder holding the diffusers package); else PYTHONPATH")
    ap.add_argument("--exporter", choices=["auto", "torchscript", "dynamo"], default="auto")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--skip-fp16", action="store_true")
    return ap.parse_args()


args = parse_args()
if args.diffusers_src:
    src = args.diffusers_src
    if os.path.isdir(os.path.join(src, "src", "diffusers")):
        src = os.path.join(src, "src")
    sys.path.insert(0, src)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

import export_lib as ex  # noqa: E402
import manifest as mf  # noqa: E402

ROWS = []
FAILED = []


def record(variant, check, ok, err=None, tol=None, note=""):
    ROWS.append({"variant": variant, "check": check, "ok": bool(ok), "err": err, "tol": tol, "note": note})
    if not ok:
        FAILED.append("%s/%s" % (variant, check))


def compare(variant, check, got, ref, rtol=1e-3, atol=1e-4, note=""):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        record(variant, check, False, None, None, "shape %s vs %s" % (got.shape, ref.shape))
        return
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    tol = atol + rtol * scale
    ok = np.isfinite(got).all() and err <= tol
    record(variant, check, ok, err, tol, ("max|ref| %.3g " % scale) + note)


def differs(variant, check, a, b, min_rel=1e-2):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = float(np.max(np.abs(a - b)))
    s = float(np.max(np.abs(b))) + 1e-12
    record(variant, check, d > min_rel * s, d, min_rel * s, "must differ")


def randomize_zero_params(model, seed):
    """diffusers zero-initialises ControlNet convs and some projections; random values make the test meaningful."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if float(p.abs().max()) == 0.0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def tiny_models(kind, seed=0):
    torch.manual_seed(seed)
    sd21 = kind == "sd21"
    text_dim = 48 if sd21 else 32
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=text_dim, attention_head_dim=(2, 4, 8, 8) if sd21 else 8, use_linear_projection=sd21, norm_num_groups=8)
    randomize_zero_params(unet, seed + 1)
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 16))
    randomize_zero_params(cn, seed + 2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16, 32, 32), layers_per_block=1, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
                        sample_size=64, scaling_factor=0.18215)
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=text_dim, intermediate_size=2 * text_dim, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                         hidden_act="gelu" if sd21 else "quick_gelu")
    te = CLIPTextModel(cfg)
    return {m: x.eval() for m, x in dict(unet=unet, controlnet=cn, vae=vae, text_encoder=te).items()}, text_dim


def session(path, providers=None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=providers or ["CPUExecutionProvider"])


def t2n(x):
    return x.detach().float().cpu().numpy()


def run_variant(kind, out_root, device):
    variant = "%s-fp32" % kind
    out = os.path.join(out_root, kind)
    models, text_dim = tiny_models(kind)
    unet, cn, vae, te = models["unet"], models["controlnet"], models["vae"], models["text_encoder"]
    log = lambda s: print("    " + s)  # noqa: E731
    engines, used = {}, {}
    t = time.time()
    engines["text_encoder"], used["text_encoder"] = ex.export_text_encoder(te, out, args.opset, args.exporter, "cpu", log=log)
    engines["unet"], used["unet"] = ex.export_unet(unet, out, "unet", True, False, args.opset, args.exporter, "cpu", latent_hw=(16, 16), log=log)
    engines["unet_plain"], used["unet_plain"] = ex.export_unet(unet, out, "unet_plain", False, False, args.opset, args.exporter, "cpu", latent_hw=(16, 16), log=log)
    name, engines["controlnet_depth"], used["controlnet_depth"] = ex.export_controlnet(cn, out, "depth", False, args.opset, args.exporter, "cpu", latent_hw=(16, 16), log=log)
    (engines["vae_encoder"], used["vae_encoder"]), (engines["vae_decoder"], used["vae_decoder"]) = ex.export_vae(vae, out, args.opset, args.exporter, "cpu", image_hw=(128, 128), log=log)
    record(variant, "export (%s)" % ",".join(sorted(set(used.values()))), True, note="%.1f s" % (time.time() - t))

    for n, spec in engines.items():
        path = os.path.join(out, spec["onnx"])
        try:
            onnx.checker.check_model(path)
            problems = ex.check_onnx_against_spec(path, spec)
        except Exception as e:  # noqa: BLE001
            problems = ["%s: %s" % (type(e).__name__, e)]
        record(variant, "onnx vs manifest: %s" % n, not problems, note="; ".join(problems)[:300])

    # The manifest as export.py writes it (unet_plain is a test-only extra engine, left out).
    sched = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "epsilon"}
    man_engines = {k: v for k, v in engines.items() if k != "unet_plain"}
    doc = mf.manifest(mf.model_section("tiny-%s" % kind, 4, 8, 0.18215, text_dim, 77, sched), man_engines, sched,
                      {"path": "tokenizer", "padTokenId": 0 if kind == "sd21" else 49407}, {"tool": "tools/export/test_export.py", "exporters": used})
    with open(os.path.join(out, mf.MANIFEST_FILE), "w") as f:
        json.dump(doc, f, indent=2)

    s = {n: session(os.path.join(out, spec["onnx"])) for n, spec in engines.items()}
    g = torch.Generator().manual_seed(123)
    layout = ex.residual_layout_of(unet)
    with torch.no_grad():
        for (B2, h, w) in ((2, 16, 16), (4, 24, 16)):
            tag = "B2=%d %dx%d" % (B2, h, w)
            sample = torch.randn(B2, 4, h, w, generator=g)
            tstep = torch.tensor([637.0])
            ehs = torch.randn(B2, 77, text_dim, generator=g)
            cond = torch.rand(B2, 3, 8 * h, 8 * w, generator=g)
            scale = 0.7
            # ControlNet
            ref_down, ref_mid = cn(sample, tstep, ehs, cond, conditioning_scale=scale, return_dict=False)
            o = s["controlnet_depth"].run(None, {"sample": t2n(sample), "timestep": t2n(tstep), "encoder_hidden_states": t2n(ehs),
                                                 "controlnet_cond": t2n(cond), "conditioning_scale": np.array([scale], np.float32)})
            for i in range(12):
                compare(variant, "controlnet down_%d %s" % (i, tag), o[i], t2n(ref_down[i]))
            compare(variant, "controlnet mid %s" % tag, o[12], t2n(ref_mid))
            o0 = s["controlnet_depth"].run(None, {"sample": t2n(sample), "timestep": t2n(tstep), "encoder_hidden_states": t2n(ehs),
                                                  "controlnet_cond": t2n(cond), "conditioning_scale": np.array([0.0], np.float32)})
            record(variant, "controlnet scale 0 -> zeros %s" % tag, all(float(np.abs(x).max()) == 0.0 for x in o0))
            # UNet with the ONNX ControlNet's residuals vs torch ControlNet + UNet
            ref = unet(sample, tstep, ehs, down_block_additional_residuals=tuple(ref_down), mid_block_additional_residual=ref_mid).sample
            feeds = {"sample": t2n(sample), "timestep": t2n(tstep), "encoder_hidden_states": t2n(ehs)}
            feeds.update({mf.DOWN_RESIDUAL_IN % i: o[i] for i in range(12)})
            feeds[mf.MID_RESIDUAL_IN] = o[12]
            eps = s["unet"].run(None, feeds)[0]
            compare(variant, "unet + controlnet residuals %s" % tag, eps, t2n(ref))
            zero_feeds = dict(feeds)
            for i, (ch, d) in enumerate(layout[0] + [layout[1]]):
                n = mf.DOWN_RESIDUAL_IN % i if i < 12 else mf.MID_RESIDUAL_IN
                zero_feeds[n] = np.zeros(feeds[n].shape, np.float32)
            eps0 = s["unet"].run(None, zero_feeds)[0]
            ref_plain = unet(sample, tstep, ehs).sample
            compare(variant, "unet, zero residuals == plain unet %s" % tag, eps0, t2n(ref_plain))
            compare(variant, "unet_plain (no residual inputs) %s" % tag, s["unet_plain"].run(None, {k: feeds[k] for k in ("sample", "timestep", "encoder_hidden_states")})[0], t2n(ref_plain))
            differs(variant, "residuals change noise_pred %s" % tag, eps, eps0)
            feeds_t = dict(feeds, timestep=np.array([12.0], np.float32))
            differs(variant, "timestep changes noise_pred %s" % tag, s["unet"].run(None, feeds_t)[0], eps)
            # VAE
            B = B2 // 2
            img = torch.rand(B, 3, 8 * h, 8 * w, generator=g)
            lat_ref = vae.encode(img * 2 - 1).latent_dist.mean * vae.config.scaling_factor
            compare(variant, "vae_encoder %s" % tag, s["vae_encoder"].run(None, {"images": t2n(img)})[0], t2n(lat_ref))
            z = torch.randn(B, 4, h, w, generator=g)
            img_ref = (vae.decode(z / vae.config.scaling_factor).sample * 0.5 + 0.5).clamp(0, 1)
            compare(variant, "vae_decoder %s" % tag, s["vae_decoder"].run(None, {"latent": t2n(z)})[0], t2n(img_ref))
            # Text encoder: int32 ids in, last hidden state out
            ids = torch.randint(0, 49406, (B2, 77), generator=g)
            ids[:, 0] = 49406
            ids[:, 10:] = 49407
            ref_txt = te(input_ids=ids).last_hidden_state
            compare(variant, "text_encoder %s" % tag, s["text_encoder"].run(None, {"input_ids": ids.numpy().astype(np.int32)})[0], t2n(ref_txt))
    return out, (unet, cn, te, text_dim)


def run_fp16(kind, out_root, models, device):
    variant = "%s-fp16" % kind
    unet, cn, te, text_dim = models
    out = os.path.join(out_root, kind + "-fp16")
    if device != "cuda":
        record(variant, "fp16 export", True, note="SKIPPED: no CUDA device for half-precision tracing")
        return
    import copy
    u16 = copy.deepcopy(unet).half().to(device)
    c16 = copy.deepcopy(cn).half().to(device)
    t16 = copy.deepcopy(te).half().to(device)
    engines = {}
    engines["unet"], _ = ex.export_unet(u16, out, "unet", True, True, args.opset, args.exporter, device, latent_hw=(16, 16))
    _, engines["controlnet_depth"], _ = ex.export_controlnet(c16, out, "depth", True, args.opset, args.exporter, device, latent_hw=(16, 16))
    engines["text_encoder"], _ = ex.export_text_encoder(t16, out, args.opset, args.exporter, device)
    for n, spec in engines.items():
        path = os.path.join(out, spec["onnx"])
        problems = ex.check_onnx_against_spec(path, spec)
        record(variant, "onnx vs manifest: %s" % n, not problems, note="; ".join(problems)[:300])
    record(variant, "residual dtype float16", all(t["dtype"] == "float16" for t in engines["controlnet_depth"]["outputs"]) and
           all(t["dtype"] == "float16" for t in engines["unet"]["inputs"][3:]))
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    g = torch.Generator().manual_seed(7)
    sample = torch.randn(2, 4, 16, 16, generator=g)
    tstep = torch.tensor([400.0])
    ehs = torch.randn(2, 77, text_dim, generator=g)
    cond = torch.rand(2, 3, 128, 128, generator=g)
    try:
        sc = session(os.path.join(out, engines["controlnet_depth"]["onnx"]), providers)
        su = session(os.path.join(out, engines["unet"]["onnx"]), providers)
        o = sc.run(None, {"sample": t2n(sample), "timestep": t2n(tstep), "encoder_hidden_states": t2n(ehs), "controlnet_cond": t2n(cond),
                          "conditioning_scale": np.array([1.0], np.float32)})
        feeds = {"sample": t2n(sample), "timestep": t2n(tstep), "encoder_hidden_states": t2n(ehs)}
        feeds.update({mf.DOWN_RESIDUAL_IN % i: o[i] for i in range(12)})
        feeds[mf.MID_RESIDUAL_IN] = o[12]
        eps = su.run(None, feeds)[0]
    except Exception as e:  # noqa: BLE001 - onnxruntime's CPU provider lacks many float16 kernels
        record(variant, "fp16 numerics", True, note="SKIPPED: onnxruntime (%s) cannot run it: %s" % (",".join(providers), str(e).splitlines()[0][:160]))
        return
    with torch.no_grad():
        d, m = cn(sample, tstep, ehs, cond, return_dict=False)
        ref = unet(sample, tstep, ehs, down_block_additional_residuals=tuple(d), mid_block_additional_residual=m).sample
    compare(variant, "unet+controlnet fp16 vs torch fp32 (%s)" % providers[0], eps, t2n(ref), rtol=3e-2, atol=3e-2)


def main():
    os.makedirs(args.out, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print("python %s | torch %s (cuda %s, %s) | diffusers %s (%s) | transformers %s | onnx %s | onnxruntime %s %s" % (
        sys.version.split()[0], torch.__version__, torch.version.cuda, device, diffusers.__version__, os.path.dirname(diffusers.__file__),
        transformers.__version__, onnx.__version__, ort.__version__, ort.get_available_providers()))
    for kind in ("sd15", "sd21"):
        try:
            _, models = run_variant(kind, args.out, device)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            record(kind + "-fp32", "run", False, note="%s: %s" % (type(e).__name__, str(e)[:300]))
            continue
        if not args.skip_fp16:
            try:
                run_fp16(kind, args.out, models, device)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                record(kind + "-fp16", "run", False, note="%s: %s" % (type(e).__name__, str(e)[:300]))

    w = max(len(r["variant"]) + len(r["check"]) + 3 for r in ROWS)
    print("\n%-*s  %-4s  %-10s  %-10s  %s" % (w, "check", "ok", "max err", "tol", "note"))
    for r in ROWS:
        print("%-*s  %-4s  %-10s  %-10s  %s" % (w, r["variant"] + " / " + r["check"], "ok" if r["ok"] else "FAIL",
                                               "" if r["err"] is None else "%.3g" % r["err"], "" if r["tol"] is None else "%.3g" % r["tol"], r["note"]))
    passed = sum(r["ok"] for r in ROWS)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": ROWS, "failed": FAILED, "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                                                "transformers": transformers.__version__, "onnx": onnx.__version__,
                                                                "onnxruntime": ort.__version__}}, f, indent=1)
    print("\n%d passed, %d failed" % (passed, len(ROWS) - passed))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
