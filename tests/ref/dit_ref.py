#!/usr/bin/python3
"""PyTorch reference ("numerical oracle") of the official DiT for the ditc test suite.

This file re-implements facebookresearch/DiT `models.py` in float32 PyTorch, following
/work/shared/docs/dit-reference.md (cited below as "ref X.Y"), and wraps it in a small CLI that
produces checkpoints, inputs and reference outputs for the C runtime's tests.

Run it with Debian's PyTorch (1.13, CPU):  /usr/bin/python3 tests/ref/dit_ref.py SUBCOMMAND ...

CONFIG is the JSON object printed by `ditc SPEC --info --json` (keys image_size, latent_size,
in_channels, out_channels, patch_size, hidden_size, depth, num_heads, head_dim, mlp_hidden,
num_classes, class_dropout, learn_sigma, layernorm_eps, guided_channels, freq_embed_size,
max_period, tokens, params, ...). A path ending in `.dit` is also accepted: the compiler is then
run for you ($DITC, else build/compiler/ditc).

Subcommands
  weights  CONFIG --seed S --out-dir DIR [--dtypes f32,f16,bf16]
           Random weights (every parameter randomized, pos_embed = the exact sin-cos table),
           written as bare.pt, train.pt, official.safetensors, diffusers.safetensors
           (+ official_{f16,bf16}.safetensors, bare_{f16,bf16}.pt) and manifest.json.
  inputs   CONFIG --seed S --batch N --out-dir DIR [--t-values 0,999,500] [--null-labels] [--int32]
           x.npy float32 [N,C,H,W] ~ N(0,1); t.npy, y.npy int64 (or int32) [N].
  forward  CONFIG --weights FILE --x X.npy --t T.npy --y Y.npy -o OUT.npy [--cfg-scale S] [--threads K]
           float32 eval forward (or forward_with_cfg over the 2N batch built like sample.py;
           the first N rows are written). Any checkpoint form above is accepted; weights stored
           in f16/bf16 are widened to float32 exactly.
  freqs    CONFIG -o FREQS.npy
           the float32 timestep frequency table [F/2] exactly as this PyTorch computes it (ref 7.3:
           torch's CPU expf is not correctly rounded, so a C runtime may want to share it).
  bench    CONFIG --batch B [--threads-list 1,2] [--iters K] [--warmup W] [--seed S]
           median forward time per thread count, then a JSON line {"best_ms", "best_threads"}.
  selftest [--keep DIR]
           internal consistency checks on tiny configs; exit status 1 on failure.

Everything is deterministic given --seed (numpy Generator for inputs, torch.Generator for weights).
"""

import argparse
import collections
import hashlib
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# =================================================================================================
# Configuration
# =================================================================================================

REQUIRED_KEYS = ("in_channels", "patch_size", "hidden_size", "depth", "num_heads", "num_classes",
                 "class_dropout", "learn_sigma")


def load_config(path):
    """Read the compiler's `--info --json` object (or run the compiler on a .dit spec) and fill
    the optional keys with the official defaults (ref 1.1)."""
    if path.endswith(".dit"):
        ditc = os.environ.get("DITC", os.path.join(REPO_ROOT, "build", "compiler", "ditc"))
        text = subprocess.run([ditc, path, "--info", "--json"], check=True,
                              stdout=subprocess.PIPE).stdout.decode()
    else:
        with open(path) as f:
            text = f.read()
    cfg = json.loads(text)
    return complete_config(cfg)


def complete_config(cfg):
    cfg = dict(cfg)
    for k in REQUIRED_KEYS:
        if k not in cfg:
            raise ValueError("config: missing key %r" % k)
    if "latent_size" not in cfg:
        cfg["latent_size"] = cfg["image_size"] // cfg.get("latent_scale", 8)
    D, H = cfg["hidden_size"], cfg["num_heads"]
    cfg.setdefault("out_channels", cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1))
    cfg.setdefault("mlp_ratio", 4.0)
    cfg.setdefault("mlp_hidden", int(D * cfg["mlp_ratio"]))      # official: int(hidden * mlp_ratio)
    cfg.setdefault("head_dim", D // H)
    cfg.setdefault("layernorm_eps", 1e-6)
    cfg.setdefault("guided_channels", 3)                          # official: eps[:, :3] (ref 1.13)
    cfg.setdefault("freq_embed_size", 256)
    cfg.setdefault("max_period", 10000)
    g = cfg["latent_size"] // cfg["patch_size"]
    cfg.setdefault("tokens", g * g)
    # consistency checks of the compiler's derived fields against the official formulas
    assert cfg["out_channels"] == cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1), "out_channels"
    assert D % H == 0 and cfg["head_dim"] == D // H, "head_dim"
    assert cfg["latent_size"] % cfg["patch_size"] == 0, "latent_size % patch_size"
    assert cfg["tokens"] == g * g, "tokens"
    assert D % 4 == 0, "hidden_size must be a multiple of 4 (2-D sin-cos pos_embed, ref 1.4)"
    return cfg


def xl2_256_config():
    """DiT-XL/2 at 256 px (ref 1.1)."""
    return complete_config(dict(image_size=256, latent_size=32, in_channels=4, patch_size=2,
                                hidden_size=1152, depth=28, num_heads=16, num_classes=1000,
                                class_dropout=0.1, learn_sigma=True))


def tiny_config(**over):
    """The specs/tests/tiny.dit configuration (as `ditc --info --json` reports it)."""
    cfg = dict(image_size=16, latent_scale=2, latent_size=8, in_channels=4, out_channels=8,
               patch_size=2, hidden_size=64, depth=2, num_heads=4, head_dim=16, mlp_ratio=4,
               mlp_hidden=256, num_classes=10, class_dropout=0.1, learn_sigma=True,
               layernorm_eps=1e-6, guided_channels=3, freq_embed_size=256, max_period=10000,
               tokens=16, params=183200)
    cfg.update(over)
    return complete_config(cfg)


# =================================================================================================
# Model (ref 1): facebookresearch/DiT models.py, float32
# =================================================================================================

def get_2d_sincos_pos_embed(embed_dim, grid_size):
    """ref 1.4: MAE-style fixed 2-D sin-cos table, numpy float64, shape (g*g, D).
    First D/2 channels encode the COLUMN index, the second D/2 the ROW index (the grid is built
    "w first"); within each half all sines come before all cosines."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)            # grid[0][row, col] = col, grid[1][row, col] = row
    grid = np.stack(grid, axis=0).reshape(2, 1, grid_size, grid_size)
    emb_first = _sincos_1d(embed_dim // 2, grid[0])   # column index
    emb_second = _sincos_1d(embed_dim // 2, grid[1])  # row index
    return np.concatenate([emb_first, emb_second], axis=1)


def _sincos_1d(dim, pos):
    """ref 1.4 one_axis: omega[k] = 1/10000^(k/(dim/2)), output [sin(pos*omega), cos(pos*omega)]."""
    assert dim % 2 == 0
    omega = np.arange(dim // 2, dtype=np.float64)
    omega /= dim / 2.0
    omega = 1.0 / 10000 ** omega                   # (dim/2,) float64
    pos = pos.reshape(-1)                          # (M,) token n = row*g + col
    out = np.einsum("m,d->md", pos, omega)         # float64 outer product
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def timestep_freqs(dim, max_period):
    """ref 1.5: the float32 frequency table, computed exactly as upstream:
    fl32(-ln(max_period)) * float32 arange, divided by `half` (NOT half-1), exp in float32, on CPU."""
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)


def timestep_embedding(t, dim, max_period):
    """ref 1.5: t_freq = [cos(t*freq), sin(t*freq)] (COS FIRST), float32; zero pad if dim is odd."""
    freqs = timestep_freqs(dim, max_period).to(device=t.device)
    args = t[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def modulate(x, shift, scale):
    """ref 1.7: x*(1+scale)+shift, (N,D) modulation broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    """ref 1.3 (timm PatchEmbed): Conv2d(k=stride=p), flatten row-major, tokens (N, T, D)."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, device=None):
        super().__init__()
        self.img_size = img_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size,
                              bias=True, device=device)

    def forward(self, x):
        N, C, H, W = x.shape
        assert H == self.img_size and W == self.img_size, "input size must equal the model's (timm strict)"
        x = self.proj(x)                                  # (N, D, g, g)
        return x.flatten(2).transpose(1, 2)               # (N, T, D), token = row*g + col


class TimestepEmbedder(nn.Module):
    """ref 1.5: t_freq (F) -> Linear(F, D) -> SiLU -> Linear(D, D). Keys t_embedder.mlp.{0,2}."""

    def __init__(self, hidden_size, frequency_embedding_size=256, max_period=10000, device=None):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True, device=device),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True, device=device),
        )
        self.frequency_embedding_size = frequency_embedding_size
        self.max_period = max_period

    def forward(self, t):
        t_freq = timestep_embedding(t, self.frequency_embedding_size, self.max_period)
        return self.mlp(t_freq)


class LabelEmbedder(nn.Module):
    """ref 1.6: table of num_classes+1 rows when dropout_prob > 0 (row num_classes = null class).
    Label dropout only in training mode (or with an explicit force_drop_ids mask)."""

    def __init__(self, num_classes, hidden_size, dropout_prob, device=None):
        super().__init__()
        use_cfg_embedding = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + int(use_cfg_embedding), hidden_size,
                                            device=device)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels, force_drop_ids=None):
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        return torch.where(drop_ids, self.num_classes, labels)

    def forward(self, labels, train, force_drop_ids=None):
        use_dropout = self.dropout_prob > 0
        if (train and use_dropout) or (force_drop_ids is not None):
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)


class Attention(nn.Module):
    """ref 1.8 (timm 0.6-era Attention, qkv_bias=True): plain float32 math, logits scaled AFTER
    q @ k^T, no SDPA. qkv feature j = s*D + head*hd + e with s in {q, k, v}."""

    def __init__(self, dim, num_heads, device=None):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True, device=device)
        self.proj = nn.Linear(dim, dim, bias=True, device=device)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                           # each (B, heads, N, hd)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)   # heads concatenated head-major
        return self.proj(x)


class Mlp(nn.Module):
    """ref 1.9 (timm Mlp): fc1 -> GELU(tanh approximation) -> fc2, no dropout."""

    def __init__(self, in_features, hidden_features, device=None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=True, device=device)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features, bias=True, device=device)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """ref 1.7: adaLN-Zero block; chunk order (shift, scale, gate) x (msa, mlp); LayerNorm without
    affine parameters (so no state-dict keys for norm1/norm2)."""

    def __init__(self, hidden_size, num_heads, mlp_hidden, eps, device=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=eps)
        self.attn = Attention(hidden_size, num_heads, device=device)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=eps)
        self.mlp = Mlp(hidden_size, mlp_hidden, device=device)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),
            nn.Linear(hidden_size, 6 * hidden_size, bias=True, device=device),
        )

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """ref 1.10: (shift, scale) = adaLN(SiLU(c)) -- SHIFT FIRST -- then Linear(D, p*p*C_out)."""

    def __init__(self, hidden_size, patch_size, out_channels, eps, device=None):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=eps)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True,
                                device=device)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),
            nn.Linear(hidden_size, 2 * hidden_size, bias=True, device=device),
        )

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        x = modulate(self.norm_final(x), shift, scale)
        return self.linear(x)


class DiT(nn.Module):
    """ref 1.12/1.13. Parameter names are exactly the official state-dict keys (ref 2.1); the
    registration order (pos_embed, x_embedder, t_embedder, y_embedder, blocks, final_layer) gives
    the official state_dict() order."""

    def __init__(self, cfg, device=None):
        super().__init__()
        self.cfg = cfg
        D = cfg["hidden_size"]
        self.in_channels = cfg["in_channels"]
        self.out_channels = cfg["out_channels"]
        self.patch_size = cfg["patch_size"]
        self.num_heads = cfg["num_heads"]
        self.num_classes = cfg["num_classes"]
        self.guided_channels = cfg["guided_channels"]
        eps = cfg["layernorm_eps"]

        self.x_embedder = PatchEmbed(cfg["latent_size"], self.patch_size, self.in_channels, D, device=device)
        self.t_embedder = TimestepEmbedder(D, cfg["freq_embed_size"], cfg["max_period"], device=device)
        self.y_embedder = LabelEmbedder(self.num_classes, D, cfg["class_dropout"], device=device)
        num_patches = cfg["tokens"]
        # ref 1.4: fixed (frozen) sin-cos embedding, a Parameter so that it is in the state dict
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, D, device=device), requires_grad=False)
        self.blocks = nn.ModuleList([
            DiTBlock(D, self.num_heads, cfg["mlp_hidden"], eps, device=device) for _ in range(cfg["depth"])
        ])
        self.final_layer = FinalLayer(D, self.patch_size, self.out_channels, eps, device=device)
        if self.pos_embed.device.type != "meta":
            self.pos_embed.data.copy_(sincos_pos_embed_tensor(cfg))

    def official_init(self):
        """ref 1.14: the official initialize_weights() (adaLN and final layer zeroed: output == 0)."""
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        self.apply(_basic_init)
        self.pos_embed.data.copy_(sincos_pos_embed_tensor(self.cfg))
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        """ref 1.11: token vector = (i, j, c) block, channel FASTEST:
        img[n, c, row*p+i, col*p+j] = x[n, row*g+col, (i*p+j)*C + c]."""
        c = self.out_channels
        p = self.patch_size
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]
        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(shape=(x.shape[0], c, h * p, h * p))

    def forward(self, x, t, y):
        """ref 1.12: x (N, C, H, W) float32, t (N,) timesteps 0..999, y (N,) labels (num_classes = null)."""
        x = self.x_embedder(x) + self.pos_embed
        t = self.t_embedder(t)
        y = self.y_embedder(y, self.training)
        c = t + y
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)
        return self.unpatchify(x)

    def forward_with_cfg(self, x, t, y, cfg_scale):
        """ref 1.13: batch = [cond; uncond]; the first half of x is duplicated; only the first
        `guided_channels` output channels are guided (official: 3); the remaining channels are
        each half's own (unguided) outputs."""
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        model_out = self.forward(combined, t, y)
        G = self.guided_channels
        eps, rest = model_out[:, :G], model_out[:, G:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)


def sincos_pos_embed_tensor(cfg):
    """ref 1.4: float64 table cast to float32 once, shape (1, T, D)."""
    g = cfg["latent_size"] // cfg["patch_size"]
    return torch.from_numpy(get_2d_sincos_pos_embed(cfg["hidden_size"], g)).float().unsqueeze(0)


def count_params(model):
    """ref 2.1: sum over ALL parameters, including the frozen pos_embed."""
    return sum(p.numel() for p in model.parameters())


def build_model(cfg, device=None):
    model = DiT(cfg, device=device)
    if "params" in cfg:
        n = count_params(model)
        assert n == cfg["params"], "parameter count %d != config params %d" % (n, cfg["params"])
    return model


# =================================================================================================
# Random weights: every parameter randomized (ref 1.14 / 7.14), activations kept O(1)
# =================================================================================================

def random_state_dict(cfg, seed):
    """A state dict (official keys and order) where every tensor is random except pos_embed, which
    is the exact sin-cos table. Scales:
      - linear / conv weights: uniform with variance 1/fan_in (outputs keep their input's scale);
      - ordinary biases: uniform [-0.2, 0.2];
      - adaLN linears (blocks and final layer): weight std 0.3/sqrt(D), bias std 0.1, so that
        shift/scale/gate are ~0.3: gates neither zero nor large, 1+scale ~ 1 +- 0.3;
      - label table: N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    model = DiT(cfg, device="meta")
    D = cfg["hidden_size"]
    sd = collections.OrderedDict()

    def uniform(shape, bound):
        return (torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound

    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std

    for name, p in model.state_dict().items():
        shape = p.shape
        if name == "pos_embed":
            v = sincos_pos_embed_tensor(cfg)
        elif name == "y_embedder.embedding_table.weight":
            v = normal(shape, 1.0)
        elif "adaLN_modulation" in name:
            v = normal(shape, 0.3 / math.sqrt(D)) if name.endswith("weight") else normal(shape, 0.1)
        elif name.endswith("weight"):                       # Linear (out, in) or Conv (D, C, p, p)
            fan_in = int(np.prod(shape[1:]))
            v = uniform(shape, math.sqrt(3.0 / fan_in))
        else:
            v = uniform(shape, 0.2)
        sd[name] = v.contiguous()
    return sd


# =================================================================================================
# Checkpoint formats (ref 2.2 - 2.4)
# =================================================================================================

DTYPES = {  # name -> (torch dtype, safetensors dtype tag)
    "f32": (torch.float32, "F32"),
    "f16": (torch.float16, "F16"),
    "bf16": (torch.bfloat16, "BF16"),
}
ST_TAG_TO_TORCH = {tag: td for td, tag in DTYPES.values()}


def _tensor_le_bytes(t):
    """Raw little-endian bytes of a contiguous tensor (bf16 via its 16-bit pattern)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
    le = {torch.float32: "<f4", torch.float16: "<f2"}[t.dtype]
    return t.numpy().astype(le, copy=False).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """safetensors written by hand, like the reference (Rust) writer: tensors ordered by
    (dtype, name) -- here one dtype, so by name --; header = compact JSON with "__metadata__" first,
    padded with spaces to a multiple of 8 bytes; 8-byte little-endian header length; then the
    contiguous raw little-endian data in header order."""
    names = sorted(tensors)
    header = collections.OrderedDict()
    header["__metadata__"] = metadata if metadata is not None else {"format": "pt"}
    blobs, offset = [], 0
    for name in names:
        t = tensors[name]
        data = _tensor_le_bytes(t)
        header[name] = collections.OrderedDict([
            ("dtype", DTYPES[_dtype_name(t.dtype)][1]),
            ("shape", list(t.shape)),
            ("data_offsets", [offset, offset + len(data)]),
        ])
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Parse a safetensors file by hand; returns {name: float32 tensor} (f16/bf16 widened
    exactly) in header order, plus the metadata dict."""
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    data = memoryview(buf)[8 + hlen:]
    metadata = header.pop("__metadata__", None)
    out = collections.OrderedDict()
    for name, info in header.items():
        b, e = info["data_offsets"]
        shape = info["shape"]
        n = int(np.prod(shape)) if shape else 1
        tag = info["dtype"]
        if tag == "F32":
            arr = np.frombuffer(data[b:e], dtype="<f4").astype(np.float32)
        elif tag == "F16":
            arr = np.frombuffer(data[b:e], dtype="<f2").astype(np.float32)
        elif tag == "BF16":  # bfloat16 = the high 16 bits of a float32
            arr = (np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("%s: unsupported dtype %s for %s" % (path, tag, name))
        assert arr.size == n and 0 <= b <= e <= len(data), "%s: bad extent for %s" % (path, name)
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out, metadata


def _dtype_name(td):
    for name, (t, _) in DTYPES.items():
        if t == td:
            return name
    raise ValueError("unsupported dtype %s" % td)


def cast_state_dict(sd, dtype_name):
    td = DTYPES[dtype_name][0]
    return collections.OrderedDict((k, v.to(td)) for k, v in sd.items())


def diffusers_key_map(depth):
    """ref 2.4: list of (official_key, diffusers_key, qkv_part) with qkv_part in {None, 0, 1, 2}
    (rows [part*D, (part+1)*D) of the fused qkv weight/bias). The t/y embedders map to one key
    per block (copies)."""
    m = [("x_embedder.proj.weight", "pos_embed.proj.weight", None),
         ("x_embedder.proj.bias", "pos_embed.proj.bias", None)]
    for i in range(depth):
        b, o = "transformer_blocks.%d." % i, "blocks.%d." % i
        for wb in ("weight", "bias"):
            m.append(("t_embedder.mlp.0." + wb, b + "norm1.emb.timestep_embedder.linear_1." + wb, None))
            m.append(("t_embedder.mlp.2." + wb, b + "norm1.emb.timestep_embedder.linear_2." + wb, None))
        m.append(("y_embedder.embedding_table.weight",
                  b + "norm1.emb.class_embedder.embedding_table.weight", None))
        for wb in ("weight", "bias"):
            m.append((o + "adaLN_modulation.1." + wb, b + "norm1.linear." + wb, None))
            for part, qkv in enumerate(("to_q", "to_k", "to_v")):
                m.append((o + "attn.qkv." + wb, b + "attn1.%s.%s" % (qkv, wb), part))
            m.append((o + "attn.proj." + wb, b + "attn1.to_out.0." + wb, None))
            m.append((o + "mlp.fc1." + wb, b + "ff.net.0.proj." + wb, None))
            m.append((o + "mlp.fc2." + wb, b + "ff.net.2." + wb, None))
    for wb in ("weight", "bias"):
        m.append(("final_layer.adaLN_modulation.1." + wb, "proj_out_1." + wb, None))
        m.append(("final_layer.linear." + wb, "proj_out_2." + wb, None))
    m.append(("pos_embed", "pos_embed", None))  # the stray un-renamed key the conversion keeps
    return m


def official_to_diffusers(sd, cfg):
    D = cfg["hidden_size"]
    out = collections.OrderedDict()
    for okey, dkey, part in diffusers_key_map(cfg["depth"]):
        v = sd[okey]
        out[dkey] = (v[part * D:(part + 1) * D] if part is not None else v).clone().contiguous()
    return out


def diffusers_to_official(dsd, cfg):
    """Inverse of official_to_diffusers. The per-block t/y embedder copies must be identical (the
    official model has a single copy); pos_embed is recomputed when the stray key is absent
    (diffusers recomputes it too, ref 2.6.5)."""
    D = cfg["hidden_size"]
    parts = collections.defaultdict(dict)      # official key -> {part: tensor}
    for okey, dkey, part in diffusers_key_map(cfg["depth"]):
        if dkey not in dsd:
            if okey == "pos_embed":
                parts[okey][None] = sincos_pos_embed_tensor(cfg)
                continue
            raise KeyError("diffusers checkpoint lacks %s" % dkey)
        v = dsd[dkey]
        if part in parts[okey]:
            if not torch.equal(parts[okey][part], v):
                raise ValueError("diffusers copies of %s differ (%s); not representable by the "
                                 "official model" % (okey, dkey))
        else:
            parts[okey][part] = v
    model_keys = DiT(cfg, device="meta").state_dict().keys()
    out = collections.OrderedDict()
    for okey in model_keys:
        p = parts[okey]
        out[okey] = torch.cat([p[0], p[1], p[2]], dim=0) if 0 in p else p[None]
        if 0 in p:
            assert out[okey].shape[0] == 3 * D
    return out


def is_diffusers_naming(keys):
    return any(k.startswith("transformer_blocks.") or k.startswith("pos_embed.proj.") for k in keys)


def load_checkpoint(path, cfg):
    """Any checkpoint form -> official-key float32 state dict.
    .safetensors: parsed by hand; otherwise torch.load(map_location='cpu') and, like the official
    find_model (ref 2.3), ckpt["ema"] when present. diffusers names are mapped back (ref 2.4)."""
    if path.endswith(".safetensors"):
        sd, _ = read_safetensors(path)
    else:
        ckpt = torch.load(path, map_location="cpu")
        sd = ckpt["ema"] if "ema" in ckpt else ckpt
    if is_diffusers_naming(sd.keys()):
        sd = diffusers_to_official(sd, cfg)
    keys = list(DiT(cfg, device="meta").state_dict().keys())      # official order (ref 2.1)
    if set(sd.keys()) != set(keys):
        raise KeyError("%s: keys differ from the official set: missing %s, unexpected %s"
                       % (path, sorted(set(keys) - set(sd.keys())), sorted(set(sd.keys()) - set(keys))))
    return collections.OrderedDict((k, sd[k].float()) for k in keys)


def model_from_checkpoint(cfg, path):
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(path, cfg), strict=True)  # pos_embed from the file (ref 7.13)
    return model.eval()


def train_checkpoint(cfg, ema_sd, seed):
    """ref 2.3: {"model", "ema", "opt", "args"} as train.py saves it. "model" is a different random
    state dict after one AdamW(lr 1e-4, wd 0) step on a toy loss; "ema" are the test weights."""
    model = build_model(cfg)
    model.load_state_dict(random_state_dict(cfg, seed + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    torch.manual_seed(seed)
    model.train()
    L = cfg["latent_size"]
    x = torch.randn(2, cfg["in_channels"], L, L)
    t = torch.randint(0, 1000, (2,))
    y = torch.randint(0, cfg["num_classes"], (2,))
    loss = model(x, t, y).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    args = argparse.Namespace(
        data_path="/data/imagenet/train", results_dir="results", model="DiT-XL/2", image_size=256,
        num_classes=1000, epochs=1400, global_batch_size=256, global_seed=0, vae="ema",
        num_workers=4, log_every=100, ckpt_every=50000)
    return {"model": model.state_dict(), "ema": ema_sd, "opt": opt.state_dict(), "args": args}


def write_weights(cfg, seed, out_dir, dtypes, config_path=None):
    os.makedirs(out_dir, exist_ok=True)
    sd = random_state_dict(cfg, seed)
    model = build_model(cfg)
    model.load_state_dict(sd, strict=True)
    sd = model.state_dict()            # an OrderedDict with _metadata, like a real state_dict()
    files = []

    def record(name, form, naming, dtype):
        path = os.path.join(out_dir, name)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        files.append(dict(file=name, form=form, naming=naming, dtype=dtype,
                          bytes=os.path.getsize(path), sha256=digest))

    torch.save(sd, os.path.join(out_dir, "bare.pt"))
    record("bare.pt", "torch-bare-state-dict", "official", "f32")
    torch.save(train_checkpoint(cfg, sd, seed), os.path.join(out_dir, "train.pt"))
    record("train.pt", "torch-train-checkpoint(ema)", "official", "f32")
    write_safetensors(os.path.join(out_dir, "official.safetensors"), sd)
    record("official.safetensors", "safetensors", "official", "f32")
    write_safetensors(os.path.join(out_dir, "diffusers.safetensors"), official_to_diffusers(sd, cfg))
    record("diffusers.safetensors", "safetensors", "diffusers", "f32")
    for dt in dtypes:
        if dt == "f32":
            continue
        low = cast_state_dict(sd, dt)
        write_safetensors(os.path.join(out_dir, "official_%s.safetensors" % dt), low)
        record("official_%s.safetensors" % dt, "safetensors", "official", dt)
        torch.save(low, os.path.join(out_dir, "bare_%s.pt" % dt))
        record("bare_%s.pt" % dt, "torch-bare-state-dict", "official", dt)
    manifest = dict(config=config_path, model=cfg.get("model"), seed=seed, params=count_params(model),
                    tensors=len(sd), files=files,
                    note="f16/bf16 files hold the f32 weights rounded to that dtype; their reference "
                         "outputs come from `forward --weights <that file>` (widened to float32).")
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


# =================================================================================================
# Inputs and forward
# =================================================================================================

def make_inputs(cfg, seed, batch, t_values=None, null_labels=False):
    """x ~ N(0,1) float32 [N,C,L,L]; t int64 in [0,1000) (or t_values cycled); y int64 in
    [0,num_classes); with null_labels the odd rows (row 0 when N == 1) get the null class."""
    rng = np.random.default_rng(seed)
    C, L = cfg["in_channels"], cfg["latent_size"]
    x = rng.standard_normal((batch, C, L, L), dtype=np.float32)
    if t_values:
        t = np.array([t_values[i % len(t_values)] for i in range(batch)], dtype=np.int64)
    else:
        t = rng.integers(0, 1000, size=batch, dtype=np.int64)
    y = rng.integers(0, cfg["num_classes"], size=batch, dtype=np.int64)
    if null_labels:
        if not cfg["class_dropout"] > 0:
            raise ValueError("--null-labels needs class_dropout > 0 (no null row in the table)")
        idx = np.arange(1, batch, 2) if batch > 1 else np.array([0])
        y[idx] = cfg["num_classes"]
    return x, t, y


def _as_t_tensor(a):
    return torch.from_numpy(a.astype(np.int64)) if np.issubdtype(a.dtype, np.integer) \
        else torch.from_numpy(a.astype(np.float32))


def run_forward(model, x, t, y, cfg_scale=None):
    """numpy in, numpy out. Without cfg_scale: model(x, t, y). With cfg_scale: x, t, y are the N
    conditional rows; the 2N batch is built as sample.py does (z = [x; x], y = [y; null...],
    t repeated) and forward_with_cfg is called; the first N rows are returned."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    tt = _as_t_tensor(np.asarray(t))
    yt = torch.from_numpy(np.asarray(y).astype(np.int64))
    N = xt.shape[0]
    assert tt.shape == (N,) and yt.shape == (N,), "t and y must be [N]"
    with torch.no_grad():
        if cfg_scale is None:
            out = model(xt, tt, yt)
        else:
            if not model.y_embedder.dropout_prob > 0:
                raise ValueError("CFG needs class_dropout > 0 (null class row)")
            z = torch.cat([xt, xt], 0)
            y_null = torch.full((N,), model.num_classes, dtype=torch.int64)
            out = model.forward_with_cfg(z, torch.cat([tt, tt], 0), torch.cat([yt, y_null], 0),
                                         cfg_scale)[:N]
    return out.numpy().astype(np.float32)


# =================================================================================================
# Subcommands
# =================================================================================================

def cmd_weights(a):
    cfg = load_config(a.config)
    dtypes = [d for d in a.dtypes.split(",") if d]
    for d in dtypes:
        if d not in DTYPES:
            raise SystemExit("unknown dtype %r (f32, f16, bf16)" % d)
    m = write_weights(cfg, a.seed, a.out_dir, dtypes, config_path=a.config)
    for f in m["files"]:
        print("%-28s %-28s %-9s %-4s %d bytes" % (f["file"], f["form"], f["naming"], f["dtype"], f["bytes"]))
    print("params %d, %d tensors -> %s" % (m["params"], m["tensors"], a.out_dir))


def cmd_inputs(a):
    cfg = load_config(a.config)
    tv = [int(v) for v in a.t_values.split(",")] if a.t_values else None
    x, t, y = make_inputs(cfg, a.seed, a.batch, tv, a.null_labels)
    if a.int32:
        t, y = t.astype(np.int32), y.astype(np.int32)
    os.makedirs(a.out_dir, exist_ok=True)
    for name, arr in (("x", x), ("t", t), ("y", y)):
        np.save(os.path.join(a.out_dir, name + ".npy"), arr)
    print("x %s %s, t %s %s, y %s %s -> %s" % (x.shape, x.dtype, t.tolist(), t.dtype,
                                              y.tolist(), y.dtype, a.out_dir))


def cmd_forward(a):
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config)
    model = model_from_checkpoint(cfg, a.weights)
    x, t, y = np.load(a.x), np.load(a.t), np.load(a.y)
    L = cfg["latent_size"]
    assert x.ndim == 4 and x.shape[1:] == (cfg["in_channels"], L, L), "x shape %s" % (x.shape,)
    out = run_forward(model, x, t, y, a.cfg_scale)
    np.save(a.output, out)
    print("out %s float32 mean %.6g std %.6g absmax %.6g -> %s"
          % (out.shape, out.mean(), out.std(), np.abs(out).max(), a.output))


def cmd_freqs(a):
    cfg = load_config(a.config)
    f = timestep_freqs(cfg["freq_embed_size"], cfg["max_period"]).numpy()
    np.save(a.output, f)
    print("timestep freq table float32 %s (torch %s CPU exp) -> %s" % (f.shape, torch.__version__, a.output))


def cmd_bench(a):
    cfg = load_config(a.config)
    model = build_model(cfg)
    model.load_state_dict(random_state_dict(cfg, a.seed))
    model.eval()
    xs, ts, ys = make_inputs(cfg, a.seed, a.batch)
    x, t, y = torch.from_numpy(xs), torch.from_numpy(ts), torch.from_numpy(ys)
    threads = [int(v) for v in a.threads_list.split(",")]
    best = None
    for k in threads:
        torch.set_num_threads(k)
        times = []
        with torch.inference_mode():
            for _ in range(a.warmup):
                model(x, t, y)
            for _ in range(a.iters):
                t0 = time.perf_counter()
                model(x, t, y)
                times.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(times)
        print("threads %d: median %.3f ms  min %.3f ms  (batch %d, %d iters, %d warmup)"
              % (k, med, min(times), a.batch, a.iters, a.warmup), flush=True)
        if best is None or med < best[0]:
            best = (med, k)
    print(json.dumps({"best_ms": round(best[0], 3), "best_threads": best[1]}))


# ---- selftest ------------------------------------------------------------------------------------

class SelfTest:
    def __init__(self):
        self.failures = 0

    def check(self, cond, what):
        print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
        if not cond:
            self.failures += 1

    def finish(self):
        """Prints the verdict; returns the process exit code."""
        if self.failures:
            print("selftest: %d FAILED" % self.failures)
            return 1
        print("selftest: all passed")
        return 0


def selftest_freqs(st):
    """(e) ref 1.5: float32 table fl32(fl32(-ln 1e4)*k)/128 then expf -- not the double-exact one."""
    half = 128
    arg = (np.float32(-math.log(10000)) * np.arange(half, dtype=np.float32)) / np.float32(half)
    want = torch.exp(torch.from_numpy(arg.astype(np.float32)))
    got = timestep_freqs(256, 10000)
    st.check(got.dtype == torch.float32 and torch.equal(got, want),
             "(e) timestep freq table == exp(fl32(fl32(-ln 1e4) * k) / 128) bit-exactly")
    exact = torch.from_numpy(np.exp(-math.log(10000) * np.arange(half) / half).astype(np.float32))
    ndiff = int((got != exact).sum())
    st.check(ndiff > 0, "(e) it differs from the double-exact rounded table (%d/128 entries)" % ndiff)
    emb = timestep_embedding(torch.tensor([0, 999]), 256, 10000)
    st.check(torch.equal(emb[0, :128], torch.ones(128)) and torch.equal(emb[0, 128:], torch.zeros(128)),
             "(e) t_freq order [cos, sin] (t=0 gives 1...1, 0...0)")
    st.check(torch.equal(emb[1, 2], torch.cos(torch.tensor(999.0) * got[2])),
             "(e) t_freq uses the float32 product t*freq")


def selftest_pos_embed(st):
    """(d) ref 1.4 example D=8, g=3."""
    pe = get_2d_sincos_pos_embed(8, 3)
    s1, c1, s2, c2 = math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)
    tok1 = [s1, s2, c1, c2, 0, 0, 1, 1]   # row 0, col 1
    tok3 = [0, 0, 1, 1, s1, s2, c1, c2]   # row 1, col 0
    st.check(pe.shape == (9, 8) and pe.dtype == np.float64, "(d) pos_embed D=8 g=3 shape (9, 8) float64")
    st.check(np.allclose(pe[1], tok1, rtol=0, atol=1e-15), "(d) token 1 (row 0, col 1) = %s" % np.round(pe[1], 4).tolist())
    st.check(np.allclose(pe[3], tok3, rtol=0, atol=1e-15), "(d) token 3 (row 1, col 0) = %s" % np.round(pe[3], 4).tolist())
    ok = True
    for row in range(3):
        for col in range(3):
            one = lambda v: [math.sin(v), math.sin(v / 100), math.cos(v), math.cos(v / 100)]
            ok &= np.allclose(pe[row * 3 + col], one(col) + one(row), rtol=0, atol=1e-15)
    st.check(ok, "(d) all 9 tokens = [one_axis(col), one_axis(row)]")
    cfg = tiny_config()
    st.check(torch.equal(DiT(cfg).pos_embed.data, sincos_pos_embed_tensor(cfg))
             and not DiT(cfg).pos_embed.requires_grad, "(d) model pos_embed = float32(table), frozen")


def selftest_patch_orders(st):
    """(c) ref 1.3 / 1.11 on an explicit example: C_out = 2, p = 2, g = 2 (image 4x4)."""
    cfg = complete_config(dict(latent_size=4, in_channels=1, out_channels=2, patch_size=2, hidden_size=8,
                               depth=0, num_heads=1, num_classes=2, class_dropout=0.1, learn_sigma=True))
    model = DiT(cfg)
    # token n, feature k holds the value 10*n + k; k = (i*p + j)*C + c (channel fastest)
    tokens = (10 * torch.arange(4)[:, None] + torch.arange(8)[None, :]).float()[None]
    img = model.unpatchify(tokens)[0]
    want = torch.tensor([
        [[0, 2, 10, 12],      # channel 0: row 0 = tok0 (i0 j0, i0 j1), tok1 (i0 j0, i0 j1)
         [4, 6, 14, 16],      #            row 1 = tok0 (i1 j0, i1 j1), tok1 ...
         [20, 22, 30, 32],    #            rows 2-3: tokens 2 and 3
         [24, 26, 34, 36]],
        [[1, 3, 11, 13],      # channel 1: the same + 1
         [5, 7, 15, 17],
         [21, 23, 31, 33],
         [25, 27, 35, 37]]]).float()
    st.check(torch.equal(img, want), "(c) unpatchify: img[c, row*p+i, col*p+j] = tok[row*g+col][(i*p+j)*C+c]")
    # patchify: conv with a one-hot weight W[d, c, i, j] = (d == c*p*p + i*p + j) exposes the
    # patch vector order (c, i, j), channel-major, token n = row*g + col.
    pe = PatchEmbed(4, 2, 2, 8)
    with torch.no_grad():
        pe.proj.weight.copy_(torch.eye(8).reshape(8, 2, 2, 2))
        pe.proj.bias.zero_()
    x = torch.arange(32).float().reshape(1, 2, 4, 4)          # x[c, h, w] = 16c + 4h + w
    tok = pe(x)[0]
    want_tok1 = torch.tensor([2, 3, 6, 7, 18, 19, 22, 23]).float()   # row 0, col 1: (c, i, j)
    want_tok2 = torch.tensor([8, 9, 12, 13, 24, 25, 28, 29]).float()  # row 1, col 0
    st.check(tok.shape == (4, 8) and torch.equal(tok[1], want_tok1) and torch.equal(tok[2], want_tok2),
             "(c) patchify: token(row, col)[c*p*p + i*p + j] = x[c, row*p+i, col*p+j]")


def selftest_cfg(st, model, cfg):
    """(a) ref 1.13 channel semantics, for the config's guided_channels and for another value."""
    x, t, y = make_inputs(cfg, 7, 3)
    s = 4.0
    out = run_forward(model, x, t, y, s)
    cond = run_forward(model, x, t, y)
    unc = run_forward(model, x, t, np.full(3, cfg["num_classes"]))
    G = cfg["guided_channels"]
    tol = dict(rtol=1e-5, atol=1e-5)
    st.check(out.shape == cond.shape, "(a) cfg output keeps the N conditional rows %s" % (out.shape,))
    st.check(np.allclose(out[:, :G], unc[:, :G] + s * (cond[:, :G] - unc[:, :G]), **tol),
             "(a) channels < %d guided: unc + s*(cond - unc)" % G)
    st.check(np.allclose(out[:, G:], cond[:, G:], **tol) and not np.allclose(out[:, G:], unc[:, G:], **tol),
             "(a) channels >= %d are the conditional outputs" % G)
    st.check(not np.allclose(cond, unc, **tol), "(a) the null label changes the output")
    with torch.no_grad():
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        yy = torch.cat([torch.from_numpy(y), torch.full((3,), cfg["num_classes"])])
        full = model.forward_with_cfg(torch.cat([xt, xt]), torch.cat([tt, tt]), yy, s).numpy()
    st.check(np.array_equal(full[3:, :G], full[:3, :G]) and np.allclose(full[3:, G:], unc[:, G:], **tol),
             "(a) second half: guided channels copied, other channels its own unconditional ones")
    model.guided_channels = 4
    out4 = run_forward(model, x, t, y, s)
    model.guided_channels = G
    st.check(np.allclose(out4[:, :4], unc[:, :4] + s * (cond[:, :4] - unc[:, :4]), **tol)
             and np.allclose(out4[:, 4:], cond[:, 4:], **tol), "(a) guided_channels=4 guides 0..3")


def selftest_checkpoints(st, cfg, d):
    """(b) all checkpoint forms load to identical float32 weights."""
    m = write_weights(cfg, 1234, d, ["f32", "f16", "bf16"])
    sd = random_state_dict(cfg, 1234)
    st.check(set(sd) == set(DiT(cfg, device="meta").state_dict()) and len(sd) == 12 + 10 * cfg["depth"],
             "(b) %d official keys (12 + 10*depth)" % len(sd))
    want = {"f32": sd, "f16": None, "bf16": None}
    for dt in ("f16", "bf16"):
        want[dt] = collections.OrderedDict((k, v.to(DTYPES[dt][0]).float()) for k, v in sd.items())
    for f in m["files"]:
        got = load_checkpoint(os.path.join(d, f["file"]), cfg)
        ref = want[f["dtype"]]
        same = list(got) == list(ref) and all(torch.equal(got[k], ref[k]) for k in ref) \
            and all(v.dtype == torch.float32 for v in got.values())
        st.check(same, "(b) %-24s -> identical float32 weights (%s)" % (f["file"], f["dtype"]))
    raw = torch.load(os.path.join(d, "train.pt"), map_location="cpu")
    st.check(sorted(raw) == ["args", "ema", "model", "opt"] and not torch.equal(
        raw["model"]["final_layer.linear.weight"], sd["final_layer.linear.weight"])
        and len(raw["opt"]["state"]) == len(sd) - 1,
        "(b) train.pt has model/ema/opt/args, model != ema, AdamW state for all but pos_embed")
    with open(os.path.join(d, "official.safetensors"), "rb") as fh:
        (hlen,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(hlen))
        size = os.path.getsize(fh.name)
    ends = [v["data_offsets"] for k, v in header.items() if k != "__metadata__"]
    contiguous = all(ends[i][1] == ends[i + 1][0] for i in range(len(ends) - 1)) and ends[0][0] == 0
    st.check(hlen % 8 == 0 and list(header)[0] == "__metadata__" and contiguous
             and 8 + hlen + ends[-1][1] == size, "(b) safetensors layout: padded header, contiguous data")
    dsd, _ = read_safetensors(os.path.join(d, "diffusers.safetensors"))
    D = cfg["hidden_size"]
    st.check(len(dsd) == 7 + 19 * cfg["depth"]
             and torch.equal(dsd["transformer_blocks.1.attn1.to_k.bias"], sd["blocks.1.attn.qkv.bias"][D:2 * D])
             and torch.equal(dsd["transformer_blocks.1.norm1.emb.class_embedder.embedding_table.weight"],
                             sd["y_embedder.embedding_table.weight"]) and "pos_embed" in dsd,
             "(b) diffusers naming: %d keys, to_k = qkv rows [D, 2D), embedders copied per block" % len(dsd))
    return m


def selftest_counts(st):
    """ref 2.1 parameter counts (pos_embed included), on the meta device."""
    table = {("S", 2): 32963360, ("S", 4): 32945024, ("S", 8): 33148160,
             ("B", 2): 130512416, ("B", 4): 130475648, ("B", 8): 130881536,
             ("L", 2): 458102816, ("L", 4): 458053760, ("L", 8): 458594816,
             ("XL", 2): 675129632, ("XL", 4): 675074432, ("XL", 8): 675683072}
    sizes = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
    ok = True
    for (name, p), n in table.items():
        depth, D, H = sizes[name]
        cfg = complete_config(dict(latent_size=32, in_channels=4, patch_size=p, hidden_size=D, depth=depth,
                                   num_heads=H, num_classes=1000, class_dropout=0.1, learn_sigma=True))
        ok &= count_params(DiT(cfg, device="meta")) == n
    xl = count_params(DiT(xl2_256_config(), device="meta"))
    st.check(ok and xl == 675129632, "parameter counts of the 12 models at 256 (XL/2: %d)" % xl)
    st.check(count_params(DiT(tiny_config(), device="meta")) == 183200, "tiny: 183200 parameters")


def selftest_semantics(st, model, cfg):
    """Cross-checks of the block math against ref 1.7-1.10 written out independently."""
    z = DiT(cfg)
    z.official_init()
    x, t, y = make_inputs(cfg, 3, 2)
    zero = run_forward(z.eval(), x, t, y)
    st.check(zero.shape == x.shape[:1] + (cfg["out_channels"],) + x.shape[2:] and not zero.any(),
             "official init (ref 1.14) returns exactly zero")
    blk = model.blocks[0]
    h = torch.randn(2, cfg["tokens"], cfg["hidden_size"], generator=torch.Generator().manual_seed(5))
    c = torch.randn(2, cfg["hidden_size"], generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        D, H = cfg["hidden_size"], cfg["num_heads"]
        hd = D // H
        mod = torch.nn.functional.linear(c * torch.sigmoid(c), blk.adaLN_modulation[1].weight,
                                         blk.adaLN_modulation[1].bias)
        sh1, sc1, g1, sh2, sc2, g2 = [mod[:, k * D:(k + 1) * D, None].transpose(1, 2) for k in range(6)]

        def ln(v):
            mu = v.mean(-1, keepdim=True)
            return (v - mu) / torch.sqrt(((v - mu) ** 2).mean(-1, keepdim=True) + 1e-6)

        a = ln(h) * (1 + sc1) + sh1
        qkv = a @ blk.attn.qkv.weight.T + blk.attn.qkv.bias
        heads = []
        for i in range(H):
            q = qkv[..., i * hd:(i + 1) * hd]
            k = qkv[..., D + i * hd:D + (i + 1) * hd]
            v = qkv[..., 2 * D + i * hd:2 * D + (i + 1) * hd]
            heads.append(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), -1) @ v)
        h1 = h + g1 * (torch.cat(heads, -1) @ blk.attn.proj.weight.T + blk.attn.proj.bias)
        m = ln(h1) * (1 + sc2) + sh2
        f = m @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias
        f = 0.5 * f * (1 + torch.tanh(math.sqrt(2 / math.pi) * (f + 0.044715 * f ** 3)))
        h2 = h1 + g2 * (f @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias)
        got = blk(h, c)
    st.check(torch.allclose(got, h2, rtol=1e-5, atol=1e-5),
             "DiT block == hand-written ref 1.7-1.9 (max diff %.2e)" % (got - h2).abs().max())
    out = run_forward(model, x, t, y)
    st.check(0.2 < float(out.std()) < 5 and np.isfinite(out).all(),
             "random weights give O(1) outputs (std %.3f)" % out.std())
    # every tensor matters: zeroing any one of them moves the output by > 0.1% of its max
    sd = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    weakest = (float("inf"), None)
    for k in sd:
        model.load_state_dict(dict(sd, **{k: torch.zeros_like(sd[k])}))
        rel = float(np.abs(run_forward(model, x, t, y) - out).max() / np.abs(out).max())
        weakest = min(weakest, (rel, k))
    model.load_state_dict(sd)
    st.check(weakest[0] > 1e-3, "zeroing any single tensor changes the output (weakest: %s, %.3g of max)"
             % (weakest[1], weakest[0]))


def cmd_selftest(a):
    torch.set_num_threads(1)
    st = SelfTest()
    selftest_freqs(st)
    selftest_pos_embed(st)
    selftest_patch_orders(st)
    selftest_counts(st)
    cfg = tiny_config()
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        selftest_checkpoints(st, cfg, d)
        model = model_from_checkpoint(cfg, os.path.join(d, "diffusers.safetensors"))
        selftest_cfg(st, model, cfg)
        selftest_semantics(st, model, cfg)
    return st.finish()


# =================================================================================================
# CLI
# =================================================================================================

def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch reference of the official DiT for ditc tests.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("weights", help="write random weights in every checkpoint form")
    p.add_argument("config")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--dtypes", default="f32", help="comma list of f32,f16,bf16 (default f32)")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("inputs", help="write x.npy, t.npy, y.npy")
    p.add_argument("config")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--t-values", default=None, help="comma list of timesteps, cycled over the batch")
    p.add_argument("--null-labels", action="store_true", help="odd rows get the null class")
    p.add_argument("--int32", action="store_true", help="write t and y as int32 (default int64)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_inputs)

    p = sub.add_parser("forward", help="reference forward (or forward_with_cfg) output")
    p.add_argument("config")
    p.add_argument("--weights", required=True)
    p.add_argument("--x", required=True)
    p.add_argument("--t", required=True)
    p.add_argument("--y", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--cfg-scale", type=float, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's)")
    p.set_defaults(func=cmd_forward)

    p = sub.add_parser("freqs", help="write the float32 timestep frequency table (ref 1.5, 7.3)")
    p.add_argument("config")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_freqs)

    p = sub.add_parser("bench", help="time the PyTorch forward pass")
    p.add_argument("config")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads-list", default="1,%d" % (os.cpu_count() or 1))
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("selftest", help="internal consistency checks (exit 1 on failure)")
    p.add_argument("--keep", default=None, help="write the test checkpoints to this directory")
    p.set_defaults(func=cmd_selftest)

    a = ap.parse_args(argv)
    return a.func(a) or 0


if __name__ == "__main__":
    sys.exit(main())
