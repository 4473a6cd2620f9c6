#!/usr/bin/env python3
"""Export a Stable Diffusion 1.x / 2.x model (and ControlNets) to ONNX for faceg2e-native.

    python tools/export/export.py --model stable-diffusion-v1-5/stable-diffusion-v1-5 \\
        --controlnet-depth lllyasviel/control_v11f1p_sd15_depth --controlnet-canny lllyasviel/control_v11p_sd15_canny \\
        --out engines/sd15 [--fp16] [--opset 17]

Writes OUT/faceg2e-engines.json (the manifest that `faceg2e-native engines build --onnx OUT` reads), one folder
per engine with model.onnx (+ model.onnx.data for weights over 1.5 GiB) and OUT/tokenizer/ (vocab.json,
merges.txt) when the model has one. Needs torch, diffusers, transformers and onnx; see tools/export/README.md.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import manifest as mf  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="diffusers model folder or hub id (SD 1.x / 2.x, epsilon prediction)")
    ap.add_argument("--controlnet-depth", help="depth ControlNet (folder or hub id) -> engine controlnet_depth")
    ap.add_argument("--controlnet-canny", help="canny ControlNet (folder or hub id) -> engine controlnet_canny")
    ap.add_argument("--controlnet-texture", help="texture-prior ControlNet (UV texture) -> engine controlnet_texture")
    ap.add_argument("--controlnet", action="append", default=[], metavar="NAME=PATH", help="any other ControlNet -> engine controlnet_NAME (repeatable)")
    ap.add_argument("--texture-unet", metavar="PATH[:SUBFOLDER]", help="a texture-tuned UNet (diffusers UNet folder, or model folder/hub id with :unet) -> engine unet_texture")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--fp16", action="store_true", help="UNet, ControlNets and text encoder in float16 (boundary tensors stay float32; residuals become float16)")
    ap.add_argument("--fp16-vae", action="store_true", help="also the VAE in float16 (SD 1.x VAEs may overflow; default keeps it float32)")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--exporter", choices=["auto", "torchscript", "dynamo"], default="auto", help="torch ONNX exporter (auto: TorchScript, then dynamo)")
    ap.add_argument("--components", default="text_encoder,unet,controlnets,vae", help="comma list of text_encoder, unet, controlnets, vae")
    ap.add_argument("--no-residuals", action="store_true", help="export the UNet without ControlNet residual inputs")
    ap.add_argument("--resolution", type=int, default=512, help="image size used for tracing (shapes stay dynamic)")
    ap.add_argument("--device", default=None, help="torch device for tracing (default: cuda if available, else cpu)")
    ap.add_argument("--allow-non-epsilon", action="store_true", help="export a v-prediction model anyway (the manifest will record it; faceg2e-native rejects it today)")
    return ap.parse_args(argv)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def scheduler_config(model):
    """The model's scheduler_config.json (local folder or hub)."""
    p = os.path.join(model, "scheduler", "scheduler_config.json")
    if os.path.isfile(p):
        return load_json(p)
    try:
        from huggingface_hub import hf_hub_download
        return load_json(hf_hub_download(model, "scheduler_config.json", subfolder="scheduler"))
    except Exception as e:  # noqa: BLE001
        print("warning: no scheduler config for %s (%s); assuming SD defaults" % (model, e))
        return {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "epsilon"}


def local_model_dir(model):
    if os.path.isdir(model):
        return model
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(model, allow_patterns=["tokenizer/*", "scheduler/*", "model_index.json"])
    except Exception:  # noqa: BLE001
        return None


def main(argv=None):
    args = parse_args(argv)
    import torch
    import diffusers
    import transformers
    import onnx
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextModel

    import export_lib as ex

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if args.fp16 else torch.float32
    comps = set(c.strip() for c in args.components.split(",") if c.strip())
    unknown = comps - {"text_encoder", "unet", "controlnets", "vae"}
    if unknown:
        sys.exit("--components: unknown %s" % ", ".join(sorted(unknown)))
    os.makedirs(args.out, exist_ok=True)
    print("torch %s, diffusers %s, transformers %s, onnx %s; tracing on %s, %s, opset %d" % (
        torch.__version__, diffusers.__version__, transformers.__version__, onnx.__version__, device, "fp16" if args.fp16 else "fp32", args.opset))

    sched = scheduler_config(args.model)
    if sched.get("prediction_type", "epsilon") != "epsilon" and not args.allow_non_epsilon:
        sys.exit("%s predicts %s; faceg2e-native supports epsilon-prediction models (SD 1.x, SD 2.x-base). Pass --allow-non-epsilon to export anyway."
                 % (args.model, sched.get("prediction_type")))
    latent_hw = (args.resolution // 8, args.resolution // 8)
    engines, used = {}, {}
    t0 = time.time()

    def step(name, fn):
        t = time.time()
        print("[%s] exporting ..." % name, flush=True)
        r = fn()
        print("[%s] done in %.1f s" % (name, time.time() - t), flush=True)
        return r

    text_dim = None
    if "text_encoder" in comps:
        te = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder", torch_dtype=dtype).to(device).eval()
        spec, used["text_encoder"] = step("text_encoder", lambda: ex.export_text_encoder(te, args.out, args.opset, args.exporter, device))
        engines["text_encoder"] = spec
        text_dim = te.config.hidden_size
        del te

    unet_cfg = None
    if "unet" in comps:
        unet = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet", torch_dtype=dtype).to(device).eval()
        unet_cfg = unet.config
        spec, used["unet"] = step("unet", lambda: ex.export_unet(unet, args.out, "unet", not args.no_residuals, args.fp16, args.opset, args.exporter, device, latent_hw=latent_hw))
        engines["unet"] = spec
        del unet
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.texture_unet and "unet" in comps:
        path, _, sub = args.texture_unet.partition(":")
        tu = UNet2DConditionModel.from_pretrained(path, subfolder=sub or None, torch_dtype=dtype).to(device).eval()
        spec, used["unet_texture"] = step("unet_texture", lambda: ex.export_unet(tu, args.out, "unet_texture", not args.no_residuals, args.fp16, args.opset, args.exporter, device, latent_hw=latent_hw))
        engines["unet_texture"] = spec
        del tu

    if "controlnets" in comps:
        cns = []
        for name, path in (("depth", args.controlnet_depth), ("canny", args.controlnet_canny), ("texture", args.controlnet_texture)):
            if path:
                cns.append((name, path))
        for item in args.controlnet:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                sys.exit("--controlnet: expected NAME=PATH, got %r" % item)
            cns.append((name, path))
        for name, path in cns:
            cn = ControlNetModel.from_pretrained(path, torch_dtype=dtype).to(device).eval()
            ename, spec, u = step("controlnet_" + name, lambda: ex.export_controlnet(cn, args.out, name, args.fp16, args.opset, args.exporter, device, latent_hw=latent_hw))
            engines[ename], used[ename] = spec, u
            del cn

    vae_info = None
    if "vae" in comps:
        vdtype = torch.float16 if args.fp16_vae else torch.float32
        vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae", torch_dtype=vdtype).to(device).eval()
        (es, ue), (ds, ud) = step("vae", lambda: ex.export_vae(vae, args.out, args.opset, args.exporter, device, image_hw=(args.resolution, args.resolution)))
        engines["vae_encoder"], engines["vae_decoder"] = es, ds
        used["vae_encoder"], used["vae_decoder"] = ue, ud
        vae_info = (int(vae.config.latent_channels), ex.vae_downsample_factor(vae), float(vae.config.scaling_factor))
        del vae

    # Model-level facts: from what was exported, else from the configs on disk/hub.
    def sub_config(sub):
        p = os.path.join(args.model, sub, "config.json")
        if os.path.isfile(p):
            return load_json(p)
        from huggingface_hub import hf_hub_download
        return load_json(hf_hub_download(args.model, "config.json", subfolder=sub))

    if vae_info is None:
        vc = sub_config("vae")
        vae_info = (int(vc.get("latent_channels", 4)), 2 ** (len(vc.get("block_out_channels", [0] * 4)) - 1), float(vc.get("scaling_factor", 0.18215)))
    if text_dim is None:
        text_dim = int((unet_cfg.cross_attention_dim if unet_cfg is not None else sub_config("unet")["cross_attention_dim"]))
    model_dir = local_model_dir(args.model)
    tokenizer = ex.copy_tokenizer(model_dir, args.out) if model_dir else None
    if tokenizer is None:
        print("warning: no tokenizer/vocab.json + merges.txt found for %s; ClipTokenizer will need CLIP's bpe_simple_vocab_16e6.txt.gz" % args.model)

    # Every ONNX must agree with its manifest entry.
    for name, spec in engines.items():
        problems = ex.check_onnx_against_spec(os.path.join(args.out, spec["onnx"]), spec)
        if problems:
            sys.exit("%s: ONNX does not match the manifest: %s" % (name, "; ".join(problems)))

    doc = mf.manifest(
        mf.model_section(args.model, vae_info[0], vae_info[1], vae_info[2], text_dim, ex.MAX_TOKENS, sched),
        engines, sched, tokenizer,
        {"tool": "tools/export/export.py", "opset": args.opset, "fp16": bool(args.fp16), "fp16Vae": bool(args.fp16_vae),
         "exporters": used, "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
         "onnx": onnx.__version__, "traceResolution": args.resolution,
         "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    with open(os.path.join(args.out, mf.MANIFEST_FILE), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print("wrote %s with %d engines (%s) in %.1f s" % (os.path.join(args.out, mf.MANIFEST_FILE), len(engines), ", ".join(engines), time.time() - t0))
    print("next: npx faceg2e-native engines build --onnx %s --out <plans dir>" % args.out)


if __name__ == "__main__":
    main()
