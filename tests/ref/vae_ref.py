#!/usr/bin/python3
"""PyTorch reference ("numerical oracle") of the Stable Diffusion KL-f8 VAE (diffusers' AutoencoderKL)
for the ditc test suite.

The encoder and decoder are written here from the architecture in /work/shared/docs/dit-reference.md
section 5 (cited as "ref 5"), as plain functions over a state dict in diffusers' current names; they
are not copied from diffusers. diffusers (when it can be installed) is only a second, independent
check (`check-diffusers`). Computation is float64 by default (`--precision float32` selectable).

Run it with Debian's PyTorch (1.13, CPU):  /usr/bin/python3 tests/ref/vae_ref.py SUBCOMMAND ...

CONFIG is a diffusers AutoencoderKL config.json (keys in_channels, out_channels, latent_channels,
block_out_channels, layers_per_block, norm_num_groups, act_fn, down_block_types, up_block_types,
sample_size, scaling_factor, force_upcast; missing keys take AutoencoderKL's defaults, as
diffusers' from_config does; the hub's sd-vae-ft-mse file has no scaling_factor: 0.18215).

Subcommands
  config   (--small | --full) [--image-size S] [--style diffusers|hub] --out CFG.json
           small: block_out_channels [32, 64, 64, 64] (default image 64); full: sd-vae-ft-mse,
           [128, 256, 512, 512] (default image 256). Style diffusers (default): what diffusers 0.25.1's
           save_pretrained writes (12 keys, "_diffusers_version": "0.25.1"); style hub: byte for byte
           the hub's stabilityai/sd-vae-ft-mse config.json (diffusers 0.4.2; no scaling_factor,
           no force_upcast).
  weights  CONFIG --seed S --out-dir W [--naming diffusers,legacy,ldm] [--prefix first_stage_model.]
           [--dtype fp32,fp16,bf16] [--format safetensors,bin,ckpt]      (comma lists: every combination)
  weights  CONFIG --count                       parameter counts (decoder, encoder, total) as JSON
  inputs   CONFIG --seed S --batch N --out-dir IN [--image-size S]
           z.npy [N,4,h,w] DiT-space latents (0.18215 * N(0,1)), x.npy [N,3,H,W] U(-1,1),
           e.npy [N,4,h,w] N(0,1) (numpy default_rng(seed), drawn in that order); float32.
  decode   CONFIG W IN --out X.npy [--precision float64|float32] [--threads K] [--stats]
           decoder(post_quant_conv(z / scaling_factor)), written float32 [N,3,H,W].
  encode   CONFIG W IN --out Z.npy [--mean] [--moments M.npy] [--precision ...] [--threads K] [--stats]
           scaling_factor * (mean + exp(0.5 * clamp(logvar, -30, 20)) * e), or scaling_factor * mean.
  check-diffusers CONFIG W IN [--precision float64,float32] [--pydeps DIR] [--no-install] [--skip-exit 77]
           the same weights in diffusers 0.25.1's AutoencoderKL (from_config + load_state_dict):
           decode and encode (same injected e) compared with this reference; also diffusers' own
           readers of the file (safetensors package, from_pretrained, convert_ldm_vae_checkpoint).
           Exit 0 pass, 1 fail, 77 (--skip-exit) with a "SKIP: ..." line when diffusers is not to be had.
  bench    CONFIG [--part decoder|encoder] [--image-size S] [--batch B] [--precision ...]
           [--threads-list 1,2] [--iters K] [--warmup W]      median seconds per run, then a JSON line.
  selftest [--keep DIR]          internal checks on small configs (exit 1 on failure)

W is a weights file, or a directory written by `weights` (its diffusion_pytorch_model.safetensors, else
its only weights file). IN is a directory written by `inputs` (or, for decode, a z .npy file).
"""

import argparse
import collections
import hashlib
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

SCALING_FACTOR = 0.18215           # DiT hard-codes it (ref 5); AutoencoderKL's default
GN_EPS = 1e-6
LDM_PREFIX = "first_stage_model."

# =================================================================================================
# Configuration (diffusers config.json)
# =================================================================================================

# AutoencoderKL.__init__ defaults of diffusers 0.25 (what from_config fills in for a missing key)
AUTOENCODERKL_DEFAULTS = collections.OrderedDict([
    ("in_channels", 3), ("out_channels", 3),
    ("down_block_types", ["DownEncoderBlock2D"]), ("up_block_types", ["UpDecoderBlock2D"]),
    ("block_out_channels", [64]), ("layers_per_block", 1), ("act_fn", "silu"),
    ("latent_channels", 4), ("norm_num_groups", 32), ("sample_size", 32),
    ("scaling_factor", SCALING_FACTOR), ("force_upcast", True),
])
# keys of later diffusers versions that are accepted when they state this architecture
LATER_KEYS_TRUE = ("use_quant_conv", "use_post_quant_conv", "mid_block_add_attention")
LATER_KEYS_NULL = ("shift_factor", "latents_mean", "latents_std")


def complete_config(raw):
    """diffusers-style config dict -> normalized config; raises ValueError on what this
    architecture is not."""
    cfg = collections.OrderedDict()
    cls = raw.get("_class_name", "AutoencoderKL")
    if cls != "AutoencoderKL":
        raise ValueError("config: _class_name %r is not AutoencoderKL" % cls)
    for k, v in AUTOENCODERKL_DEFAULTS.items():
        cfg[k] = raw.get(k, v)
    for k in LATER_KEYS_TRUE:
        if raw.get(k, True) is not True:
            raise ValueError("config: %s must be true" % k)
    for k in LATER_KEYS_NULL:
        if raw.get(k) is not None:
            raise ValueError("config: %s must be null" % k)
    known = set(AUTOENCODERKL_DEFAULTS) | set(LATER_KEYS_TRUE) | set(LATER_KEYS_NULL)
    for k in raw:
        if not k.startswith("_") and k not in known:
            print("vae_ref: warning: unknown config key %r ignored" % k, file=sys.stderr)
    b = list(cfg["block_out_channels"])
    L = len(b)
    if L < 1 or any(not isinstance(c, int) or c <= 0 for c in b):
        raise ValueError("config: block_out_channels must be positive ints")
    if list(cfg["down_block_types"]) != ["DownEncoderBlock2D"] * L:
        raise ValueError("config: down_block_types must be %d x DownEncoderBlock2D" % L)
    if list(cfg["up_block_types"]) != ["UpDecoderBlock2D"] * L:
        raise ValueError("config: up_block_types must be %d x UpDecoderBlock2D" % L)
    if cfg["act_fn"] != "silu":
        raise ValueError("config: act_fn %r (only silu)" % cfg["act_fn"])
    G = cfg["norm_num_groups"]
    if any(c % G for c in b):
        raise ValueError("config: every block_out_channels entry must be a multiple of norm_num_groups")
    cfg["block_out_channels"] = b
    cfg["down_factor"] = 2 ** (L - 1)
    return cfg


def load_config(path):
    with open(path) as f:
        return complete_config(json.load(f))


def make_config(full, image_size=None):
    raw = collections.OrderedDict()
    raw["block_out_channels"] = [128, 256, 512, 512] if full else [32, 64, 64, 64]
    raw["down_block_types"] = ["DownEncoderBlock2D"] * 4
    raw["up_block_types"] = ["UpDecoderBlock2D"] * 4
    raw["in_channels"] = 3
    raw["out_channels"] = 3
    raw["latent_channels"] = 4
    raw["layers_per_block"] = 2
    raw["norm_num_groups"] = 32
    raw["act_fn"] = "silu"
    raw["sample_size"] = int(image_size or (256 if full else 64))
    raw["scaling_factor"] = SCALING_FACTOR
    raw["force_upcast"] = True
    return raw


def config_json_text(raw, style):
    """config.json text as diffusers writes it: json.dumps(indent=2, sort_keys=True) + newline, with
    _class_name and _diffusers_version. style "hub" = the hub's sd-vae-ft-mse file (diffusers 0.4.2,
    which wrote neither scaling_factor nor force_upcast)."""
    d = dict(raw)
    d["_class_name"] = "AutoencoderKL"
    if style == "hub":
        d.pop("scaling_factor", None)
        d.pop("force_upcast", None)
        d["_diffusers_version"] = "0.4.2"
    else:
        d["_diffusers_version"] = "0.25.1"
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


# =================================================================================================
# Parameters: names (diffusers current), shapes, the other two namings
# =================================================================================================

def _resnet_shapes(pre, cin, cout):
    s = [(pre + "norm1.weight", (cin,)), (pre + "norm1.bias", (cin,)),
         (pre + "conv1.weight", (cout, cin, 3, 3)), (pre + "conv1.bias", (cout,)),
         (pre + "norm2.weight", (cout,)), (pre + "norm2.bias", (cout,)),
         (pre + "conv2.weight", (cout, cout, 3, 3)), (pre + "conv2.bias", (cout,))]
    if cin != cout:
        s += [(pre + "conv_shortcut.weight", (cout, cin, 1, 1)), (pre + "conv_shortcut.bias", (cout,))]
    return s


def _mid_shapes(pre, C):
    s = _resnet_shapes(pre + "resnets.0.", C, C)
    a = pre + "attentions.0."
    s += [(a + "group_norm.weight", (C,)), (a + "group_norm.bias", (C,))]
    for lin in ("to_q", "to_k", "to_v", "to_out.0"):
        s += [(a + lin + ".weight", (C, C)), (a + lin + ".bias", (C,))]
    s += _resnet_shapes(pre + "resnets.1.", C, C)
    return s


def param_shapes(cfg, part="both"):
    """OrderedDict diffusers-current name -> shape; the order is the canonical order in which the
    random weights are drawn (encoder, quant_conv, post_quant_conv, decoder)."""
    b, L, lpb = cfg["block_out_channels"], len(cfg["block_out_channels"]), cfg["layers_per_block"]
    lat, cin_img, cout_img = cfg["latent_channels"], cfg["in_channels"], cfg["out_channels"]
    enc, dec = [], []
    # encoder (ref 5, "Encoder")
    enc += [("encoder.conv_in.weight", (b[0], cin_img, 3, 3)), ("encoder.conv_in.bias", (b[0],))]
    cprev = b[0]
    for i in range(L):
        for j in range(lpb):
            enc += _resnet_shapes("encoder.down_blocks.%d.resnets.%d." % (i, j), cprev if j == 0 else b[i], b[i])
        cprev = b[i]
        if i < L - 1:
            p = "encoder.down_blocks.%d.downsamplers.0.conv." % i
            enc += [(p + "weight", (b[i], b[i], 3, 3)), (p + "bias", (b[i],))]
    enc += _mid_shapes("encoder.mid_block.", b[-1])
    enc += [("encoder.conv_norm_out.weight", (b[-1],)), ("encoder.conv_norm_out.bias", (b[-1],)),
            ("encoder.conv_out.weight", (2 * lat, b[-1], 3, 3)), ("encoder.conv_out.bias", (2 * lat,)),
            ("quant_conv.weight", (2 * lat, 2 * lat, 1, 1)), ("quant_conv.bias", (2 * lat,))]
    # decoder (ref 5, "Decoder")
    rb = list(reversed(b))
    dec += [("post_quant_conv.weight", (lat, lat, 1, 1)), ("post_quant_conv.bias", (lat,)),
            ("decoder.conv_in.weight", (rb[0], lat, 3, 3)), ("decoder.conv_in.bias", (rb[0],))]
    dec += _mid_shapes("decoder.mid_block.", rb[0])
    cprev = rb[0]
    for i in range(L):
        for j in range(lpb + 1):
            dec += _resnet_shapes("decoder.up_blocks.%d.resnets.%d." % (i, j), cprev if j == 0 else rb[i], rb[i])
        cprev = rb[i]
        if i < L - 1:
            p = "decoder.up_blocks.%d.upsamplers.0.conv." % i
            dec += [(p + "weight", (rb[i], rb[i], 3, 3)), (p + "bias", (rb[i],))]
    dec += [("decoder.conv_norm_out.weight", (b[0],)), ("decoder.conv_norm_out.bias", (b[0],)),
            ("decoder.conv_out.weight", (cout_img, b[0], 3, 3)), ("decoder.conv_out.bias", (cout_img,))]
    sel = {"both": enc + dec, "encoder": enc, "decoder": dec}[part]
    return collections.OrderedDict(sel)


def param_counts(cfg):
    n = lambda part: sum(int(np.prod(s)) for s in param_shapes(cfg, part).values())
    d, e = n("decoder"), n("encoder")
    return collections.OrderedDict([("decoder", d), ("encoder", e), ("total", d + e)])


FULL_COUNTS = collections.OrderedDict([("decoder", 49490199), ("encoder", 34163664), ("total", 83653863)])

ATTN_CURRENT = ("to_q", "to_k", "to_v", "to_out.0")
ATTN_LEGACY = ("query", "key", "value", "proj_attn")
ATTN_LDM = ("q", "k", "v", "proj_out")


def ldm_name(cfg, name):
    """diffusers-current name -> CompVis/LDM name (ref 5). Returns (name, is_attention_linear)."""
    L = len(cfg["block_out_channels"])
    parts = name.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return name, False
    side, rest = parts[0], parts[1:]
    if rest[0] == "conv_norm_out":
        return ".".join([side, "norm_out"] + rest[1:]), False
    if rest[0] in ("conv_in", "conv_out"):
        return name, False
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            blk = "block_%d" % (int(rest[2]) + 1)
            return ".".join([side, "mid", blk] + _ldm_resnet_tail(rest[3:])), False
        # attentions.0.<module>.<weight|bias>
        mod, wb = ".".join(rest[3:-1]), rest[-1]
        if mod == "group_norm":
            return "%s.mid.attn_1.norm.%s" % (side, wb), False
        return "%s.mid.attn_1.%s.%s" % (side, ATTN_LDM[ATTN_CURRENT.index(mod)], wb), True
    if rest[0] == "down_blocks":
        i = int(rest[1])
        if rest[2] == "downsamplers":
            return "encoder.down.%d.downsample.conv.%s" % (i, rest[-1]), False
        return ".".join(["encoder", "down", str(i), "block", rest[3]] + _ldm_resnet_tail(rest[4:])), False
    if rest[0] == "up_blocks":
        i = L - 1 - int(rest[1])                  # reversed numbering (ref 5)
        if rest[2] == "upsamplers":
            return "decoder.up.%d.upsample.conv.%s" % (i, rest[-1]), False
        return ".".join(["decoder", "up", str(i), "block", rest[3]] + _ldm_resnet_tail(rest[4:])), False
    raise KeyError(name)


def _ldm_resnet_tail(t):
    return (["nin_shortcut"] if t[0] == "conv_shortcut" else [t[0]]) + t[1:]


def legacy_name(name):
    for cur, leg in zip(ATTN_CURRENT, ATTN_LEGACY):
        key = ".attentions.0.%s." % cur
        if key in name:
            return name.replace(key, ".attentions.0.%s." % leg)
    return name


def rename_state_dict(cfg, sd, naming, prefix=""):
    """diffusers-current state dict -> the requested naming (float tensors unchanged, attention
    linears reshaped to [C,C,1,1] for ldm)."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        if naming == "diffusers":
            nk = k
        elif naming == "legacy":
            nk = legacy_name(k)
        elif naming == "ldm":
            nk, is_lin = ldm_name(cfg, k)
            if is_lin and v.dim() == 2:
                v = v.reshape(v.shape[0], v.shape[1], 1, 1)
        else:
            raise ValueError("naming %r" % naming)
        out[prefix + nk] = v
    return out


def to_current_naming(cfg, sd, part="both"):
    """Any of the three namings (optionally under first_stage_model.) -> diffusers-current names for
    `part`, checked against the config's shapes. Other keys (loss.*, model.*, ...) are ignored."""
    if any(k.startswith(LDM_PREFIX) for k in sd):
        sd = {k[len(LDM_PREFIX):]: v for k, v in sd.items() if k.startswith(LDM_PREFIX)}
    shapes = param_shapes(cfg, part)
    ldm = any(".mid.attn_1." in k or k.startswith("decoder.up.") or k.startswith("encoder.down.") for k in sd)
    out, missing, bad = collections.OrderedDict(), [], []
    for name, shape in shapes.items():
        if ldm:
            src, is_lin = ldm_name(cfg, name)
        else:
            src, is_lin = name, False
            if src not in sd and legacy_name(name) in sd:
                src = legacy_name(name)
        if src not in sd:
            missing.append(src)
            continue
        v = sd[src]
        if is_lin and tuple(v.shape) == tuple(shape) + (1, 1):
            v = v.reshape(shape)
        if tuple(v.shape) != tuple(shape):
            bad.append("%s: %s, expected %s" % (src, list(v.shape), list(shape)))
            continue
        out[name] = v
    if missing or bad:
        raise ValueError("weights: %s%s" % ("missing " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "") if missing else "",
                                          ("; wrong shape " + "; ".join(bad[:8])) if bad else ""))
    return out


# =================================================================================================
# Random weights
# =================================================================================================

def random_state_dict(cfg, seed):
    """float32 state dict (diffusers-current names), every tensor random, drawn in param_shapes
    order from torch.Generator(seed). Scales keep activations O(1) through both halves:
      - conv and attention linear weights: uniform with variance 1/fan_in;
      - biases: uniform [-0.1, 0.1];
      - GroupNorm affine: weight uniform [0.75, 1.25], bias uniform [-0.25, 0.25]."""
    gen = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()
    for name, shape in param_shapes(cfg).items():
        u = torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1
        is_norm = ".norm" in name or "group_norm" in name or "conv_norm_out" in name
        if is_norm:
            v = 1.0 + 0.25 * u if name.endswith("weight") else 0.25 * u
        elif name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            v = u * math.sqrt(3.0 / fan_in)
        else:
            v = 0.1 * u
        sd[name] = v.contiguous()
    return sd


# =================================================================================================
# File formats
# =================================================================================================

DTYPES = {"fp32": (torch.float32, "F32"), "fp16": (torch.float16, "F16"), "bf16": (torch.bfloat16, "BF16")}


def bf16_bits(a):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return r.astype(np.uint16)


def np_bytes(t, dtype):
    """Little-endian raw bytes of a float32 tensor stored as dtype (fp32|fp16|bf16)."""
    a = t.detach().contiguous().to(torch.float32).numpy()
    if dtype == "fp32":
        return a.astype("<f4").tobytes()
    if dtype == "fp16":
        return a.astype("<f2").tobytes()
    return bf16_bits(a).astype("<u2").tobytes()


def write_safetensors(path, sd, dtype, metadata=None):
    """safetensors by hand: 8-byte little-endian header length, JSON header ("__metadata__" first,
    then tensors sorted by name with dtype/shape/data_offsets), padded with spaces to 8 bytes, then the
    raw little-endian data in header order."""
    header = collections.OrderedDict()
    header["__metadata__"] = metadata if metadata is not None else {"format": "pt"}
    blobs, off = [], 0
    for name in sorted(sd):
        data = np_bytes(sd[name], dtype)
        header[name] = collections.OrderedDict([("dtype", DTYPES[dtype][1]), ("shape", list(sd[name].shape)),
                                                ("data_offsets", [off, off + len(data)])])
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """-> OrderedDict name -> float32 tensor (F16/BF16 widened exactly)."""
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    data = memoryview(buf)[8 + hlen:]
    header.pop("__metadata__", None)
    out = collections.OrderedDict()
    for name, info in header.items():
        b, e = info["data_offsets"]
        tag = info["dtype"]
        if tag == "F32":
            a = np.frombuffer(data[b:e], dtype="<f4").astype(np.float32)
        elif tag == "F16":
            a = np.frombuffer(data[b:e], dtype="<f2").astype(np.float32)
        elif tag == "BF16":
            a = (np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("%s: unsupported dtype %s for %s" % (path, tag, name))
        if a.size != int(np.prod(info["shape"])):
            raise ValueError("%s: bad extent for %s" % (path, name))
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def read_any(path):
    """Raw state dict of a .safetensors / .bin / .ckpt / .pt file, tensors widened to float32."""
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return collections.OrderedDict((k, v.to(torch.float32)) for k, v in obj.items() if torch.is_tensor(v))


def rounded(sd, dtype):
    """The values a dtype file holds, as float32 (torch's float16 / bfloat16 casts round to nearest even)."""
    td = DTYPES[dtype][0]
    return collections.OrderedDict((k, v.to(td).to(torch.float32)) for k, v in sd.items())


def weights_file_name(naming, dtype, fmt, prefix):
    """diffusers:  diffusion_pytorch_model[.fp16|.bf16].{safetensors,bin,ckpt}
    legacy:     diffusion_pytorch_model.legacy[...]      ldm:  vae-ldm[...]
    a prefix adds ".prefixed" after the stem."""
    stem = {"diffusers": "diffusion_pytorch_model", "legacy": "diffusion_pytorch_model.legacy",
            "ldm": "vae-ldm"}[naming]
    if prefix:
        stem += ".prefixed"
    return stem + ("" if dtype == "fp32" else "." + dtype) + "." + fmt


def write_weights_file(path, cfg, base_sd, naming, dtype, fmt, prefix=""):
    sd = rename_state_dict(cfg, base_sd, naming, prefix)
    if fmt == "safetensors":
        write_safetensors(path, sd, dtype)
    else:
        td = DTYPES[dtype][0]
        sd = collections.OrderedDict((k, v.to(td).contiguous()) for k, v in sd.items())
        torch.save(sd if fmt == "bin" else {"state_dict": sd}, path)


def resolve_weights(w):
    if os.path.isfile(w):
        return w
    if not os.path.isdir(w):
        raise FileNotFoundError(w)
    first = os.path.join(w, "diffusion_pytorch_model.safetensors")
    if os.path.isfile(first):
        return first
    cands = sorted(f for f in os.listdir(w) if f.endswith((".safetensors", ".bin", ".ckpt", ".pt")))
    if len(cands) != 1:
        raise ValueError("%s: name one weights file of %s" % (w, cands))
    return os.path.join(w, cands[0])


def load_weights(cfg, w, part="both"):
    return to_current_naming(cfg, read_any(resolve_weights(w)), part)


# =================================================================================================
# The model (ref 5), functional over a diffusers-current state dict P
# =================================================================================================

class Ctx:
    def __init__(self, P, groups, stats=None):
        self.P, self.G, self.stats = P, groups, stats

    def note(self, what, x):
        if self.stats is not None:
            self.stats.append((what, tuple(x.shape), float(x.double().pow(2).mean().sqrt()),
                               float(x.abs().max()), bool(torch.isfinite(x).all())))
        return x


def gn(c, pre, x):
    """GroupNorm(G groups, eps 1e-6, affine): statistics per (sample, group) over
    (channels in group x H x W), biased variance."""
    return F.group_norm(x, c.G, c.P[pre + "weight"], c.P[pre + "bias"], GN_EPS)


def conv(c, pre, x, stride=1, padding=1):
    return F.conv2d(x, c.P[pre + "weight"], c.P[pre + "bias"], stride=stride, padding=padding)


def resnet(c, pre, x):
    """h = conv3x3(SiLU(GN(x))); h = conv3x3(SiLU(GN(h))); out = shortcut(x) + h (dropout 0,
    no time embedding, output scale 1); shortcut = 1x1 conv when channels change."""
    h = conv(c, pre + "conv1.", F.silu(gn(c, pre + "norm1.", x)))
    h = conv(c, pre + "conv2.", F.silu(gn(c, pre + "norm2.", h)))
    if (pre + "conv_shortcut.weight") in c.P:
        x = conv(c, pre + "conv_shortcut.", x, padding=0)
    return x + h


def attention(c, pre, x):
    """Single head over the H*W positions: GN, q/k/v linears (bias), softmax(q k^T / sqrt(C)) v,
    out linear (bias), residual with the un-normalized input (rescale 1)."""
    N, C, H, W = x.shape
    t = gn(c, pre + "group_norm.", x).reshape(N, C, H * W).transpose(1, 2)      # [N, T, C]
    P = c.P
    q = F.linear(t, P[pre + "to_q.weight"], P[pre + "to_q.bias"])
    k = F.linear(t, P[pre + "to_k.weight"], P[pre + "to_k.bias"])
    v = F.linear(t, P[pre + "to_v.weight"], P[pre + "to_v.bias"])
    a = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(C)), dim=-1)
    o = F.linear(torch.bmm(a, v), P[pre + "to_out.0.weight"], P[pre + "to_out.0.bias"])
    return x + o.transpose(1, 2).reshape(N, C, H, W)


def mid_block(c, pre, x):
    x = c.note(pre + "resnets.0", resnet(c, pre + "resnets.0.", x))
    x = c.note(pre + "attentions.0", attention(c, pre + "attentions.0.", x))
    return c.note(pre + "resnets.1", resnet(c, pre + "resnets.1.", x))


def upsample_nearest2x(x):
    """out[y, x] = in[y // 2, x // 2]."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def decoder(c, cfg, z):
    """z: VAE-space latent [N, lat, h, w] -> image [N, out, 8h, 8w] (for 4 levels)."""
    L, lpb = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    x = conv(c, "post_quant_conv.", z, padding=0)
    x = c.note("decoder.conv_in", conv(c, "decoder.conv_in.", x))
    x = mid_block(c, "decoder.mid_block.", x)
    for i in range(L):
        for j in range(lpb + 1):
            pre = "decoder.up_blocks.%d.resnets.%d" % (i, j)
            x = c.note(pre, resnet(c, pre + ".", x))
        if i < L - 1:
            pre = "decoder.up_blocks.%d.upsamplers.0" % i
            x = c.note(pre, conv(c, pre + ".conv.", upsample_nearest2x(x)))
    x = F.silu(gn(c, "decoder.conv_norm_out.", x))
    return c.note("decoder.conv_out", conv(c, "decoder.conv_out.", x))


def encoder_moments(c, cfg, x):
    """image [N, in, H, W] -> moments [N, 2*lat, H/8, W/8] (after quant_conv)."""
    L, lpb = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    x = c.note("encoder.conv_in", conv(c, "encoder.conv_in.", x))
    for i in range(L):
        for j in range(lpb):
            pre = "encoder.down_blocks.%d.resnets.%d" % (i, j)
            x = c.note(pre, resnet(c, pre + ".", x))
        if i < L - 1:                       # zero-pad right and bottom by one, 3x3 stride-2, no padding
            pre = "encoder.down_blocks.%d.downsamplers.0" % i
            x = c.note(pre, conv(c, pre + ".conv.", F.pad(x, (0, 1, 0, 1)), stride=2, padding=0))
    x = mid_block(c, "encoder.mid_block.", x)
    x = F.silu(gn(c, "encoder.conv_norm_out.", x))
    x = c.note("encoder.conv_out", conv(c, "encoder.conv_out.", x))
    return c.note("quant_conv", conv(c, "quant_conv.", x, padding=0))


def posterior(moments, e=None):
    """DiagonalGaussianDistribution: mean, logvar = chunk(2); logvar clamped to [-30, 20];
    std = exp(0.5 logvar); sample = mean + std * e (mean when e is None)."""
    mean, logvar = torch.chunk(moments, 2, dim=1)
    logvar = torch.clamp(logvar, -30.0, 20.0)
    if e is None:
        return mean
    return mean + torch.exp(0.5 * logvar) * e


TORCH_PREC = {"float64": torch.float64, "float32": torch.float32}


def cast_params(P, precision):
    td = TORCH_PREC[precision]
    return {k: v.to(td) for k, v in P.items()}


def run_decode(cfg, P, z_dit, precision="float64", stats=None):
    """DiT-space latents (numpy or tensor) -> float32 numpy image."""
    td = TORCH_PREC[precision]
    c = Ctx(cast_params(P, precision), cfg["norm_num_groups"], stats)
    z = torch.as_tensor(np.asarray(z_dit)).to(td) / cfg["scaling_factor"]
    with torch.no_grad():
        out = decoder(c, cfg, z)
    return out.to(torch.float32).numpy()


def run_encode(cfg, P, x, e=None, precision="float64", stats=None, return_moments=False):
    """image [-1, 1] -> scaling_factor * (mean + std * e), or * mean when e is None; float32 numpy."""
    td = TORCH_PREC[precision]
    c = Ctx(cast_params(P, precision), cfg["norm_num_groups"], stats)
    with torch.no_grad():
        m = encoder_moments(c, cfg, torch.as_tensor(np.asarray(x)).to(td))
        et = None if e is None else torch.as_tensor(np.asarray(e)).to(td)
        zz = cfg["scaling_factor"] * posterior(m, et)
    zz = zz.to(torch.float32).numpy()
    return (zz, m.to(torch.float32).numpy()) if return_moments else zz


# =================================================================================================
# Inputs
# =================================================================================================

def make_inputs(cfg, seed, batch, image_size=None):
    H = int(image_size or cfg["sample_size"])
    f = cfg["down_factor"]
    if H % f:
        raise ValueError("image size %d is not a multiple of %d" % (H, f))
    h, lat = H // f, cfg["latent_channels"]
    rng = np.random.default_rng(seed)
    z = (SCALING_FACTOR * rng.standard_normal((batch, lat, h, h))).astype(np.float32)
    x = rng.uniform(-1.0, 1.0, (batch, cfg["in_channels"], H, H)).astype(np.float32)
    e = rng.standard_normal((batch, lat, h, h)).astype(np.float32)
    return z, x, e


def _in_path(IN, name):
    if name == "z" and IN.endswith(".npy"):
        return IN
    return os.path.join(IN, name + ".npy")


# =================================================================================================
# Subcommands
# =================================================================================================

def _set_threads(k):
    if k:
        torch.set_num_threads(k)


def _print_stats(stats):
    for what, shape, rms, amax, finite in stats:
        print("  %-40s %-22s rms %9.4f  max|.| %9.4f%s" % (what, list(shape), rms, amax, "" if finite else "  NON-FINITE"))


def cmd_config(a):
    raw = make_config(a.full, a.image_size)
    text = config_json_text(raw, a.style)
    complete_config(json.loads(text))
    with open(a.out, "w") as f:
        f.write(text)
    return 0


def _csv(s, allowed, what):
    v = [t.strip() for t in s.split(",") if t.strip()]
    for t in v:
        if t not in allowed:
            raise SystemExit("vae_ref: %s %r (one of %s)" % (what, t, ", ".join(allowed)))
    return v


def cmd_weights(a):
    cfg = load_config(a.config)
    if a.count:
        print(json.dumps(param_counts(cfg)))
        return 0
    if a.seed is None or not a.out_dir:
        raise SystemExit("vae_ref weights: --seed and --out-dir are required (or --count)")
    namings = _csv(a.naming, ("diffusers", "legacy", "ldm"), "naming")
    dtypes = _csv(a.dtype, ("fp32", "fp16", "bf16"), "dtype")
    fmts = _csv(a.format, ("safetensors", "bin", "ckpt"), "format")
    os.makedirs(a.out_dir, exist_ok=True)
    base = random_state_dict(cfg, a.seed)
    mpath = os.path.join(a.out_dir, "manifest.json")
    man = {"seed": a.seed, "files": {}}
    if os.path.isfile(mpath):
        with open(mpath) as f:
            old = json.load(f)
        if old.get("seed") == a.seed:
            man = old
    man["params"] = param_counts(cfg)
    for naming in namings:
        for dtype in dtypes:
            for fmt in fmts:
                name = weights_file_name(naming, dtype, fmt, a.prefix)
                path = os.path.join(a.out_dir, name)
                write_weights_file(path, cfg, base, naming, dtype, fmt, a.prefix)
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                man["files"][name] = {"naming": naming, "dtype": dtype, "format": fmt, "prefix": a.prefix,
                                      "tensors": len(base), "sha256": digest}
                print(path)
    with open(mpath, "w") as f:
        json.dump(man, f, indent=1, sort_keys=True)
    return 0


def cmd_inputs(a):
    cfg = load_config(a.config)
    z, x, e = make_inputs(cfg, a.seed, a.batch, a.image_size)
    os.makedirs(a.out_dir, exist_ok=True)
    for n, v in (("z", z), ("x", x), ("e", e)):
        np.save(os.path.join(a.out_dir, n + ".npy"), v)
    return 0


def cmd_decode(a):
    _set_threads(a.threads)
    cfg = load_config(a.config)
    P = load_weights(cfg, a.weights, "decoder")
    stats = [] if a.stats else None
    out = run_decode(cfg, P, np.load(_in_path(a.inputs, "z")), a.precision, stats)
    np.save(a.out, out)
    if stats is not None:
        _print_stats(stats)
    return 0


def cmd_encode(a):
    _set_threads(a.threads)
    cfg = load_config(a.config)
    P = load_weights(cfg, a.weights, "encoder")
    x = np.load(_in_path(a.inputs, "x"))
    e = None if a.mean else np.load(_in_path(a.inputs, "e"))
    stats = [] if a.stats else None
    zz, m = run_encode(cfg, P, x, e, a.precision, stats, return_moments=True)
    np.save(a.out, zz)
    if a.moments:
        np.save(a.moments, m)
    if stats is not None:
        _print_stats(stats)
    return 0


def cmd_bench(a):
    cfg = load_config(a.config)
    gen_cfg = dict(cfg)
    P = random_state_dict(gen_cfg, 0)
    z, x, e = make_inputs(cfg, 0, a.batch, a.image_size)
    rows = []
    for th in [int(t) for t in a.threads_list.split(",")]:
        torch.set_num_threads(th)
        fn = (lambda: run_decode(cfg, P, z, a.precision)) if a.part == "decoder" else \
             (lambda: run_encode(cfg, P, x, e, a.precision))
        for _ in range(a.warmup):
            fn()
        ts = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        med = statistics.median(ts)
        rows.append((th, med))
        print("%s %s %dx%d batch %d threads %d: median %.3f s (min %.3f, %d runs)" % (
            a.part, a.precision, x.shape[2], x.shape[3], a.batch, th, med, min(ts), len(ts)), flush=True)
    best = min(rows, key=lambda r: r[1])
    print(json.dumps({"part": a.part, "precision": a.precision, "image_size": int(x.shape[2]), "batch": a.batch,
                      "best_s": round(best[1], 4), "best_threads": best[0],
                      "torch": torch.__version__, "per_threads": {str(t): round(s, 4) for t, s in rows}}))
    return 0


def main(argv=None):
    from vae_check import SKIP_DEFAULT, cmd_check_diffusers, cmd_selftest  # its checks (vae_check.py)
    ap = argparse.ArgumentParser(description="PyTorch reference of diffusers' AutoencoderKL (SD KL-f8 VAE) for ditc tests.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("config", help="write the small or the full (sd-vae-ft-mse) config.json")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--small", action="store_true")
    g.add_argument("--full", action="store_true")
    p.add_argument("--image-size", type=int, default=None, help="sample_size (default 64 small, 256 full)")
    p.add_argument("--style", choices=("diffusers", "hub"), default="diffusers")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("weights", help="random weights in the requested namings, formats and dtypes")
    p.add_argument("config")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out-dir", default=None)
    p.add_argument("--naming", default="diffusers", help="comma list of diffusers,legacy,ldm")
    p.add_argument("--prefix", default="", help="key prefix, e.g. first_stage_model.")
    p.add_argument("--dtype", default="fp32", help="comma list of fp32,fp16,bf16")
    p.add_argument("--format", default="safetensors", help="comma list of safetensors,bin,ckpt")
    p.add_argument("--count", action="store_true", help="print the parameter counts and exit")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("inputs", help="write z.npy, x.npy, e.npy")
    p.add_argument("config")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--image-size", type=int, default=None, help="default: the config's sample_size")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_inputs)

    for name, fn in (("decode", cmd_decode), ("encode", cmd_encode)):
        p = sub.add_parser(name, help="reference %s" % name)
        p.add_argument("config")
        p.add_argument("weights")
        p.add_argument("inputs")
        p.add_argument("--out", required=True)
        p.add_argument("--precision", choices=tuple(TORCH_PREC), default="float64")
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--stats", action="store_true", help="print rms and max|.| after every stage")
        if name == "encode":
            p.add_argument("--mean", action="store_true", help="scaling_factor * mean (no noise)")
            p.add_argument("--moments", default=None, help="also write the raw moments [N, 2*lat, h, w]")
        p.set_defaults(func=fn)

    p = sub.add_parser("check-diffusers", help="compare with diffusers' AutoencoderKL (SKIP when unavailable)")
    p.add_argument("config")
    p.add_argument("weights")
    p.add_argument("inputs")
    p.add_argument("--precision", default="float64,float32", help="comma list of float64,float32")
    p.add_argument("--pydeps", default=None, help="pip --target dir (default $DITC_PYDEPS, else ~/.cache/ditc/pydeps-diffusers-0.25.1)")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--skip-exit", type=int, default=SKIP_DEFAULT, help="exit status when skipped (default 77)")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_check_diffusers)

    p = sub.add_parser("bench", help="time the reference decode or encode")
    p.add_argument("config")
    p.add_argument("--part", choices=("decoder", "encoder"), default="decoder")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--precision", choices=tuple(TORCH_PREC), default="float32")
    p.add_argument("--threads-list", default="1,%d" % (os.cpu_count() or 1))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("selftest", help="internal checks (exit 1 on failure)")
    p.add_argument("--keep", default=None)
    p.set_defaults(func=cmd_selftest)

    a = ap.parse_args(argv)
    return a.func(a) or 0


if __name__ == "__main__":
    sys.exit(main())
