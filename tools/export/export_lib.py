"""ONNX export of Stable Diffusion parts for faceg2e-native (torch + diffusers + transformers).

The wrappers fix the tensor names, dtypes and value conventions of docs/tensorrt.md:

  text_encoder  input_ids int32 [B,77]                         -> text_embeddings f32 [B,77,D] (last hidden state)
  unet          sample, timestep [1], encoder_hidden_states,
                down_block_additional_residual_0..11, mid_block_additional_residual -> noise_pred
  controlnet_*  sample, timestep [1], encoder_hidden_states, controlnet_cond [0,1], conditioning_scale [1]
                -> down_block_res_sample_0..11, mid_block_res_sample (already multiplied by the scale)
  vae_encoder   images [0,1] -> latent = posterior mean * scaling_factor
  vae_decoder   latent (scaled) -> images [0,1] (divided by scaling_factor, mapped and clamped)

Boundary tensors are float32 whatever the model precision: with fp16 the wrappers cast inside the graph. The
ControlNet residuals are float16 in an fp16 export and float32 otherwise (the same on both sides).
"""
import os
import shutil
import tempfile
import warnings

import torch

import manifest as mf

MAX_TOKENS = 77


# ------------------------------------------------------------------------------------------------ wrappers

class TextEncoderWrapper(torch.nn.Module):
    def __init__(self, text_model):
        super().__init__()
        self.text_model = text_model

    def forward(self, input_ids):
        out = self.text_model(input_ids=input_ids.to(torch.int64))
        hidden = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
        return hidden.to(torch.float32)


class UNetWrapper(torch.nn.Module):
    def __init__(self, unet, with_residuals):
        super().__init__()
        self.unet = unet
        self.with_residuals = with_residuals
        self.dtype = next(unet.parameters()).dtype

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        kw = {}
        if self.with_residuals:
            res = [r.to(self.dtype) for r in residuals]
            kw = dict(down_block_additional_residuals=tuple(res[:mf.RESIDUAL_COUNT]), mid_block_additional_residual=res[mf.RESIDUAL_COUNT])
        eps = self.unet(sample.to(self.dtype), timestep, encoder_hidden_states.to(self.dtype), return_dict=False, **kw)[0]
        return eps.to(torch.float32)


class ControlNetWrapper(torch.nn.Module):
    def __init__(self, controlnet, residual_dtype):
        super().__init__()
        self.controlnet = controlnet
        self.dtype = next(controlnet.parameters()).dtype
        self.residual_dtype = residual_dtype

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        down, mid = self.controlnet(
            sample.to(self.dtype), timestep, encoder_hidden_states.to(self.dtype), controlnet_cond.to(self.dtype),
            conditioning_scale=conditioning_scale.to(self.dtype), guess_mode=False, return_dict=False)
        return tuple(d.to(self.residual_dtype) for d in down) + (mid.to(self.residual_dtype),)


class _VaeWrapper(torch.nn.Module):
    """A VAE with its dtype and latent scaling (scaling_factor, and shift_factor where the VAE has one)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        self.dtype = next(vae.parameters()).dtype
        self.scale = float(vae.config.scaling_factor)
        shift = getattr(vae.config, "shift_factor", None)
        self.shift = float(shift) if shift else 0.0


class VaeEncoderWrapper(_VaeWrapper):
    def forward(self, images):
        x = (images * 2.0 - 1.0).to(self.dtype)
        mean = self.vae.encode(x).latent_dist.mean
        return ((mean.to(torch.float32) - self.shift) * self.scale)


class VaeDecoderWrapper(_VaeWrapper):
    def forward(self, latent):
        z = (latent / self.scale + self.shift).to(self.dtype)
        img = self.vae.decode(z, return_dict=False)[0].to(torch.float32)
        return (img * 0.5 + 0.5).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------------ helpers

def use_eager_attention(text_model):
    """Plain matmul/softmax attention in the CLIP text model (traces to ONNX everywhere; TensorRT fuses it)."""
    for fn in ("set_attn_implementation",):
        f = getattr(text_model, fn, None)
        if callable(f):
            try:
                f("eager")
                return
            except Exception:  # noqa: BLE001 - older/newer transformers: fall through
                pass
    try:
        text_model.config._attn_implementation = "eager"
    except Exception:  # noqa: BLE001
        pass


def residual_layout_of(unet_or_controlnet):
    c = unet_or_controlnet.config
    return mf.residual_layout(list(c.block_out_channels), c.layers_per_block)


def _export_torchscript(module, args, path, input_names, output_names, dynamic_axes, opset):
    kw = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True)
    import inspect
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        torch.onnx.export(module, args, path, dynamo=False, **kw)
    else:  # torch < 2.5: only this exporter, no `dynamo` argument
        torch.onnx.export(module, args, path, **kw)


def _export_dynamo(module, args, path, input_names, output_names, dynamic_axes, opset):
    torch.onnx.export(module, args, path, dynamo=True, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=opset, external_data=True)


def export_onnx(module, args, out_path, input_names, output_names, dynamic_axes, opset=17, exporter="auto", log=print):
    """Export `module(*args)` to `out_path` (a folder's model.onnx; weights > 1.5 GiB go to model.onnx.data beside it).
    exporter: "torchscript", "dynamo" or "auto" (TorchScript first, then dynamo). Returns the exporter used."""
    import onnx

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    order = {"auto": ["torchscript", "dynamo"], "torchscript": ["torchscript"], "dynamo": ["dynamo"]}[exporter]
    errors = []
    with tempfile.TemporaryDirectory(prefix="fg-onnx-") as tmp:
        tmp_path = os.path.join(tmp, "model.onnx")
        used = None
        for ex in order:
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    (_export_torchscript if ex == "torchscript" else _export_dynamo)(module, args, tmp_path, input_names, output_names, dynamic_axes, opset)
                used = ex
                break
            except Exception as e:  # noqa: BLE001 - try the next exporter, report all failures
                errors.append("%s: %s: %s" % (ex, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
                log("  %s exporter failed (%s); %s" % (ex, errors[-1], "trying the next" if ex != order[-1] else "giving up"))
                for f in os.listdir(tmp):
                    os.remove(os.path.join(tmp, f))
        if used is None:
            raise RuntimeError("ONNX export of %s failed: %s" % (out_path, " | ".join(errors)))
        model = onnx.load(tmp_path, load_external_data=True)
        _check_io_names(model, input_names, output_names, out_path)
        weight_bytes = sum(len(t.raw_data) + 4 * (len(t.float_data) + len(t.int32_data)) + 8 * len(t.int64_data) for t in model.graph.initializer)
        for f in ("model.onnx", "model.onnx.data"):
            p = os.path.join(os.path.dirname(os.path.abspath(out_path)), f)
            if os.path.exists(p):
                os.remove(p)
        if weight_bytes > 1.5 * 2 ** 30:
            onnx.save_model(model, out_path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(out_path) + ".data", size_threshold=1024)
        else:
            onnx.save_model(model, out_path)
    onnx.checker.check_model(out_path)  # by path: works for models with external data
    return used


def _check_io_names(model, input_names, output_names, what):
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    missing = [n for n in input_names if n not in got_in]
    if missing or got_out != list(output_names):
        raise RuntimeError("%s: exported graph has inputs %s and outputs %s; expected inputs %s and outputs %s "
                           "(an input the model ignores is dropped by the exporter)" % (what, got_in, got_out, input_names, output_names))


def onnx_dtype_name(elem_type):
    import onnx
    return {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.BFLOAT16: "bfloat16",
            onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64"}.get(elem_type, "other(%d)" % elem_type)


def check_onnx_against_spec(path, spec):
    """Compare the ONNX graph's inputs/outputs (names, dtypes, ranks, fixed dims) with a manifest engine spec.
    Returns a list of problems (empty when they agree)."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    problems = []
    for io, vals in (("inputs", m.graph.input), ("outputs", m.graph.output)):
        by_name = {v.name: v for v in vals}
        names = [t["name"] for t in spec[io]]
        if io == "outputs" and [v.name for v in vals] != names:
            problems.append("outputs are %s, manifest says %s" % ([v.name for v in vals], names))
        for t in spec[io]:
            v = by_name.get(t["name"])
            if v is None:
                problems.append("%s: missing %s" % (io, t["name"]))
                continue
            tt = v.type.tensor_type
            dt = onnx_dtype_name(tt.elem_type)
            if dt != t["dtype"]:
                problems.append("%s: dtype %s, manifest says %s" % (t["name"], dt, t["dtype"]))
            dims = tt.shape.dim
            if len(dims) != len(t["shape"]):
                problems.append("%s: rank %d, manifest says %d" % (t["name"], len(dims), len(t["shape"])))
                continue
            for d, s in zip(dims, t["shape"]):
                if isinstance(s, int) and d.HasField("dim_value") and d.dim_value != s:
                    problems.append("%s: dim %d, manifest says %d" % (t["name"], d.dim_value, s))
                if not isinstance(s, int) and d.HasField("dim_value"):
                    problems.append("%s: dim %s is fixed at %d in the ONNX graph but dynamic in the manifest" % (t["name"], s, d.dim_value))
    return problems


# ------------------------------------------------------------------------------------------------ exporters per part
# Each returns (engine spec for the manifest, exporter used). `folder` is the engine's folder inside `out`.

# Example batches are 2, never 1: an exporter may specialise a dimension whose example size is 1.
def export_text_encoder(text_model, out, opset=17, exporter="auto", device="cpu", batch=2, log=print):
    use_eager_attention(text_model)
    dim = int(text_model.config.hidden_size)
    w = TextEncoderWrapper(text_model).eval().to(device)
    ids = torch.randint(0, int(text_model.config.vocab_size), (batch, MAX_TOKENS), dtype=torch.int32, device=device)
    rel = "text_encoder/model.onnx"
    used = export_onnx(w, (ids,), os.path.join(out, rel), ["input_ids"], ["text_embeddings"],
                       {"input_ids": {0: "B"}, "text_embeddings": {0: "B"}}, opset, exporter, log)
    return mf.text_encoder_spec(rel, dim, MAX_TOKENS), used


def _unet_example(model, batch2, h, w, text_dim, device, with_cond_image=False, f=8):
    g = torch.Generator(device="cpu").manual_seed(0)
    c = int(model.config.in_channels)
    sample = torch.randn(batch2, c, h, w, generator=g).to(device)
    t = torch.tensor([501.0], device=device)
    ehs = torch.randn(batch2, MAX_TOKENS, text_dim, generator=g).to(device)
    if not with_cond_image:
        return sample, t, ehs
    cond = torch.rand(batch2, 3, h * f, w * f, generator=g).to(device)
    return sample, t, ehs, cond


def export_unet(unet, out, name="unet", with_residuals=True, fp16=False, opset=17, exporter="auto", device="cpu",
                batch2=2, latent_hw=(64, 64), log=print):
    text_dim = int(unet.config.cross_attention_dim)
    latent_c = int(unet.config.in_channels)
    res_dtype = torch.float16 if fp16 else torch.float32
    layout = residual_layout_of(unet) if with_residuals else None
    w = UNetWrapper(unet, with_residuals).eval().to(device)
    h, wd = latent_hw
    args = list(_unet_example(unet, batch2, h, wd, text_dim, device))
    in_names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": {0: "2B", 2: "h", 3: "w"}, "encoder_hidden_states": {0: "2B"}, "noise_pred": {0: "2B", 2: "h", 3: "w"}}
    if with_residuals:
        down, mid = layout
        for i, (ch, d) in enumerate(down + [mid]):
            n = mf.DOWN_RESIDUAL_IN % i if i < len(down) else mf.MID_RESIDUAL_IN
            args.append(torch.randn(batch2, ch, -(-h // d), -(-wd // d), device=device, dtype=res_dtype) * 0.1)
            in_names.append(n)
            axes[n] = {0: "2B", 2: "h" if d == 1 else "h_%d" % d, 3: "w" if d == 1 else "w_%d" % d}
    rel = "%s/model.onnx" % name
    used = export_onnx(w, tuple(args), os.path.join(out, rel), in_names, ["noise_pred"], axes, opset, exporter, log)
    spec = mf.unet_spec(rel, latent_c, text_dim, MAX_TOKENS, layout, "float16" if fp16 else "float32")
    return spec, used


def export_controlnet(controlnet, out, name, fp16=False, opset=17, exporter="auto", device="cpu", batch2=2, latent_hw=(64, 64), f=8, log=print):
    if not name.startswith("controlnet_"):
        name = "controlnet_" + name
    text_dim = int(controlnet.config.cross_attention_dim)
    latent_c = int(controlnet.config.in_channels)
    cond_c = int(getattr(controlnet.config, "conditioning_channels", 3))
    if cond_c != 3:
        raise ValueError("%s: conditioning_channels is %d; the engine format feeds 3-channel control images" % (name, cond_c))
    res_dtype = torch.float16 if fp16 else torch.float32
    layout = residual_layout_of(controlnet)
    w = ControlNetWrapper(controlnet, res_dtype).eval().to(device)
    h, wd = latent_hw
    sample, t, ehs, cond = _unet_example(controlnet, batch2, h, wd, text_dim, device, with_cond_image=True, f=f)
    scale = torch.tensor([0.75], device=device)
    down, mid = layout
    out_names = [mf.DOWN_RESIDUAL_OUT % i for i in range(len(down))] + [mf.MID_RESIDUAL_OUT]
    axes = {"sample": {0: "2B", 2: "h", 3: "w"}, "encoder_hidden_states": {0: "2B"}, "controlnet_cond": {0: "2B", 2: "H", 3: "W"}}
    for n, (ch, d) in zip(out_names, down + [mid]):
        axes[n] = {0: "2B", 2: "h" if d == 1 else "h_%d" % d, 3: "w" if d == 1 else "w_%d" % d}
    rel = "%s/model.onnx" % name
    used = export_onnx(w, (sample, t, ehs, cond, scale), os.path.join(out, rel),
                       ["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale"], out_names, axes, opset, exporter, log)
    return name, mf.controlnet_spec(rel, latent_c, text_dim, MAX_TOKENS, layout, "float16" if fp16 else "float32"), used


def vae_downsample_factor(vae):
    return 2 ** (len(vae.config.block_out_channels) - 1)


def export_vae(vae, out, opset=17, exporter="auto", device="cpu", batch=2, image_hw=(512, 512), log=print):
    f = vae_downsample_factor(vae)
    c = int(vae.config.latent_channels)
    H, W = image_hw
    g = torch.Generator(device="cpu").manual_seed(1)
    enc = VaeEncoderWrapper(vae).eval().to(device)
    dec = VaeDecoderWrapper(vae).eval().to(device)
    images = torch.rand(batch, 3, H, W, generator=g).to(device)
    latent = torch.randn(batch, c, H // f, W // f, generator=g).to(device)
    used_e = export_onnx(enc, (images,), os.path.join(out, "vae_encoder/model.onnx"), ["images"], ["latent"],
                         {"images": {0: "B", 2: "H", 3: "W"}, "latent": {0: "B", 2: "h", 3: "w"}}, opset, exporter, log)
    used_d = export_onnx(dec, (latent,), os.path.join(out, "vae_decoder/model.onnx"), ["latent"], ["images"],
                         {"latent": {0: "B", 2: "h", 3: "w"}, "images": {0: "B", 2: "H", 3: "W"}}, opset, exporter, log)
    return (mf.vae_encoder_spec("vae_encoder/model.onnx", c), used_e), (mf.vae_decoder_spec("vae_decoder/model.onnx", c), used_d)


def copy_tokenizer(model_dir, out):
    """Copy tokenizer/vocab.json + merges.txt (what ClipTokenizer.fromFile reads) and return the pad token id."""
    import json
    src = os.path.join(model_dir, "tokenizer")
    if not (os.path.isfile(os.path.join(src, "vocab.json")) and os.path.isfile(os.path.join(src, "merges.txt"))):
        return None
    dst = os.path.join(out, "tokenizer")
    os.makedirs(dst, exist_ok=True)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.isfile(os.path.join(src, f)):
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    with open(os.path.join(src, "vocab.json"), encoding="utf-8") as fh:
        vocab = json.load(fh)
    pad = None
    for f in ("special_tokens_map.json", "tokenizer_config.json"):
        p = os.path.join(src, f)
        if pad is None and os.path.isfile(p):
            with open(p, encoding="utf-8") as fh:
                tok = json.load(fh).get("pad_token")
            if isinstance(tok, dict):
                tok = tok.get("content")
            if isinstance(tok, str) and tok in vocab:
                pad = vocab[tok]
    return {"path": "tokenizer", "padTokenId": int(pad if pad is not None else vocab.get("<|endoftext|>", 49407))}
