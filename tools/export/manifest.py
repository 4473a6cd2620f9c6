"""Engine specs and the faceg2e-engines.json manifest (docs/tensorrt.md, lib/engines.ts).

Pure Python (no torch, no diffusers): shared by export.py and test_export.py, and runnable on its own to print
the manifest of stock Stable Diffusion 1.5 / 2.1-base:

    python3 tools/export/manifest.py sd15      # or sd21-base
"""
import json
import sys

MANIFEST_FILE = "faceg2e-engines.json"
MANIFEST_FORMAT = "faceg2e-engines"
MANIFEST_VERSION = 1
RESIDUAL_COUNT = 12

DOWN_RESIDUAL_IN = "down_block_additional_residual_%d"  # UNet inputs
MID_RESIDUAL_IN = "mid_block_additional_residual"
DOWN_RESIDUAL_OUT = "down_block_res_sample_%d"  # ControlNet outputs
MID_RESIDUAL_OUT = "mid_block_res_sample"


def _per_block(v, n):
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


def residual_layout(block_out_channels, layers_per_block):
    """(channels, spatial divisor) of each down-block residual and of the mid-block residual, in diffusers order:
    conv_in, then per down block its resnets' outputs and (except the last block) its downsampler's output."""
    n = len(block_out_channels)
    layers = _per_block(layers_per_block, n)
    out = [(block_out_channels[0], 1)]
    for b, ch in enumerate(block_out_channels):
        out += [(ch, 2 ** b)] * layers[b]
        if b < n - 1:
            out.append((ch, 2 ** (b + 1)))
    mid = (block_out_channels[-1], 2 ** (n - 1))
    if len(out) != RESIDUAL_COUNT:
        raise ValueError("this UNet has %d ControlNet residuals; the engine format has exactly %d (SD 1.x/2.x layout)" % (len(out), RESIDUAL_COUNT))
    for _, d in out + [mid]:
        if d not in (1, 2, 4, 8):
            raise ValueError("residual downsampling %d is not one of 1, 2, 4, 8" % d)
    return out, mid


def _hw(d):
    return ["h", "w"] if d == 1 else ["h/%d" % d, "w/%d" % d]


def tensor(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def residual_tensors(names_down, name_mid, layout, dtype, batch="2B"):
    down, mid = layout
    ts = [tensor(names_down % i, dtype, [batch, ch] + _hw(d)) for i, (ch, d) in enumerate(down)]
    ts.append(tensor(name_mid, dtype, [batch, mid[0]] + _hw(mid[1])))
    return ts


def unet_spec(onnx, latent_channels, text_dim, max_tokens, layout=None, residual_dtype="float32"):
    """`layout` is residual_layout(...) when the UNet takes ControlNet residuals, else None."""
    inputs = [
        tensor("sample", "float32", ["2B", latent_channels, "h", "w"]),
        tensor("timestep", "float32", [1]),
        tensor("encoder_hidden_states", "float32", ["2B", max_tokens, text_dim]),
    ]
    if layout is not None:
        inputs += residual_tensors(DOWN_RESIDUAL_IN, MID_RESIDUAL_IN, layout, residual_dtype)
    return {"onnx": onnx, "inputs": inputs, "outputs": [tensor("noise_pred", "float32", ["2B", latent_channels, "h", "w"])]}


def controlnet_spec(onnx, latent_channels, text_dim, max_tokens, layout, residual_dtype="float32", cond_channels=3):
    return {
        "onnx": onnx,
        "inputs": [
            tensor("sample", "float32", ["2B", latent_channels, "h", "w"]),
            tensor("timestep", "float32", [1]),
            tensor("encoder_hidden_states", "float32", ["2B", max_tokens, text_dim]),
            tensor("controlnet_cond", "float32", ["2B", cond_channels, "H", "W"]),
            tensor("conditioning_scale", "float32", [1]),
        ],
        "outputs": residual_tensors(DOWN_RESIDUAL_OUT, MID_RESIDUAL_OUT, layout, residual_dtype),
    }


def text_encoder_spec(onnx, text_dim, max_tokens):
    return {
        "onnx": onnx,
        "inputs": [tensor("input_ids", "int32", ["B", max_tokens])],
        "outputs": [tensor("text_embeddings", "float32", ["B", max_tokens, text_dim])],
    }


def vae_encoder_spec(onnx, latent_channels):
    return {
        "onnx": onnx,
        "inputs": [tensor("images", "float32", ["B", 3, "H", "W"])],
        "outputs": [tensor("latent", "float32", ["B", latent_channels, "h", "w"])],
    }


def vae_decoder_spec(onnx, latent_channels):
    return {
        "onnx": onnx,
        "inputs": [tensor("latent", "float32", ["B", latent_channels, "h", "w"])],
        "outputs": [tensor("images", "float32", ["B", 3, "H", "W"])],
    }


def model_section(model_id, latent_channels, downsample_factor, scaling_factor, text_dim, max_tokens, scheduler):
    sched = scheduler or {}
    pred = sched.get("prediction_type", "epsilon")
    m = {
        "id": model_id,
        "latentChannels": int(latent_channels),
        "downsampleFactor": int(downsample_factor),
        "scalingFactor": float(scaling_factor),
        "textEmbedDim": int(text_dim),
        "maxTokens": int(max_tokens),
        "prediction": pred,
        "numTrainTimesteps": int(sched.get("num_train_timesteps", 1000)),
        "betaSchedule": sched.get("beta_schedule", "scaled_linear"),
        "betaStart": float(sched.get("beta_start", 0.00085)),
        "betaEnd": float(sched.get("beta_end", 0.012)),
    }
    return m


def manifest(model, engines, scheduler=None, tokenizer=None, export_info=None):
    doc = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "model": model, "engines": engines}
    if scheduler is not None:
        doc["scheduler"] = scheduler  # the diffusers scheduler_config.json, verbatim (informational)
    if tokenizer is not None:
        doc["tokenizer"] = tokenizer  # {"path": "tokenizer", "padTokenId": 49407 | 0}
    if export_info is not None:
        doc["export"] = export_info
    return doc


# Stock configurations (what diffusers' config.json files of these models say), for printing / checking.
STOCK = {
    "sd15": dict(id="stable-diffusion-v1-5/stable-diffusion-v1-5", text_dim=768, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, pad=49407),
    "sd21-base": dict(id="stabilityai/stable-diffusion-2-1-base", text_dim=1024, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, pad=0),
}


def stock_manifest(name):
    s = STOCK[name]
    layout = residual_layout(s["block_out_channels"], s["layers_per_block"])
    sched = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "epsilon"}
    engines = {
        "text_encoder": text_encoder_spec("text_encoder/model.onnx", s["text_dim"], 77),
        "unet": unet_spec("unet/model.onnx", 4, s["text_dim"], 77, layout),
        "controlnet_depth": controlnet_spec("controlnet_depth/model.onnx", 4, s["text_dim"], 77, layout),
        "controlnet_canny": controlnet_spec("controlnet_canny/model.onnx", 4, s["text_dim"], 77, layout),
        "vae_encoder": vae_encoder_spec("vae_encoder/model.onnx", 4),
        "vae_decoder": vae_decoder_spec("vae_decoder/model.onnx", 4),
    }
    return manifest(model_section(s["id"], 4, 8, 0.18215, s["text_dim"], 77, sched), engines, sched, {"path": "tokenizer", "padTokenId": s["pad"]})


if __name__ == "__main__":
    print(json.dumps(stock_manifest(sys.argv[1] if len(sys.argv) > 1 else "sd15"), indent=2))
