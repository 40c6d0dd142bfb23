#!/usr/bin/python3
"""make_fixtures.py: regenerates the small checkpoint fixtures of tests/weights.

Run with Debian's python3 (PyTorch 1.13 CPU):  /usr/bin/python3 tests/weights/make_fixtures.py
It writes tests/weights/fixtures/*.pt, *.safetensors, pos_8x32.f32 and expected.txt.
The files are committed so that the C tests need no torch at run time.

expected.txt lists, per fixture, what ckpt_open must report:
    file <fixture> <number of tensors> <ckpt_describe text ...>
    t <key> <dtype> <rank> <dims ...> = <float32 bits in hex, row-major ...>   (or "= -" when
                                                                                the dtype cannot be read)
    error <fixture> <status number> <text the message must contain ...>
Safetensors files are written by hand (no safetensors package): 8-byte little-endian header
length, JSON header padded with spaces to 8 bytes, data buffer.
"""
import argparse
import json
import os
import struct
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

DIT_STATUS = {"FORMAT": 2, "UNSUPPORTED": 7}
ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.float64: "F64"}
INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def raw_bytes(t):
    t = t.contiguous()
    return t.view(INT_VIEW[t.element_size()]).numpy().tobytes()


def f32_bits(t):
    """The float32 values ckpt_read_f32 must produce, as hex bit patterns, row-major."""
    v = t.float().contiguous().view(torch.int32).flatten().tolist()
    return " ".join("%08x" % (x & 0xFFFFFFFF) for x in v)


def from_bits(bits, dtype):
    raw = struct.pack("<%dH" % len(bits), *bits)
    return torch.frombuffer(bytearray(raw), dtype=torch.int16).view(dtype).clone()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = OrderedDict(), [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        raw = raw_bytes(t)
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_zip64(path, entries):
    """A stored zip where every size and offset goes through the ZIP64 records."""
    out, central = bytearray(), bytearray()
    for name, data in entries:
        off, nb, crc = len(out), name.encode(), zlib.crc32(data)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                           0xFFFFFFFF, len(nb), len(extra)) + nb + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(cextra), 0, 0, 0, 0,
                               0xFFFFFFFF) + nb + cextra
    cd_off, n = len(out), len(entries)
    out += central
    eocd64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)


def zip_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


# ---- the MAE / DiT position embedding, as in DiT's models.py ----

def get_1d(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    pos = pos.reshape(-1)
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d(embed_dim // 2, grid[0])
    emb_w = get_1d(embed_dim // 2, grid[1])
    return np.concatenate([emb_h, emb_w], axis=1)


# ---- the tiny DiT used by the binding tests (keep in sync with test_dit_weights.c) ----
D, P, C_IN, C_OUT, N_CLS, FREQ, GRID, DEPTH = 8, 2, 4, 8, 10, 16, 4, 2


def dit_official(gen):
    def r(*shape):
        return torch.randn(*shape, generator=gen)

    sd = OrderedDict()
    pe = get_2d_sincos_pos_embed(D, GRID)
    sd["pos_embed"] = torch.from_numpy(pe).float().unsqueeze(0)
    sd["x_embedder.proj.weight"] = r(D, C_IN, P, P)
    sd["x_embedder.proj.bias"] = r(D)
    sd["t_embedder.mlp.0.weight"] = r(D, FREQ)
    sd["t_embedder.mlp.0.bias"] = r(D)
    sd["t_embedder.mlp.2.weight"] = r(D, D)
    sd["t_embedder.mlp.2.bias"] = r(D)
    sd["y_embedder.embedding_table.weight"] = r(N_CLS + 1, D)
    for i in range(DEPTH):
        b = "blocks.%d." % i
        sd[b + "attn.qkv.weight"] = r(3 * D, D)
        sd[b + "attn.qkv.bias"] = r(3 * D)
        sd[b + "attn.proj.weight"] = r(D, D)
        sd[b + "attn.proj.bias"] = r(D)
        sd[b + "mlp.fc1.weight"] = r(4 * D, D)
        sd[b + "mlp.fc1.bias"] = r(4 * D)
        sd[b + "mlp.fc2.weight"] = r(D, 4 * D)
        sd[b + "mlp.fc2.bias"] = r(D)
        sd[b + "adaLN_modulation.1.weight"] = r(6 * D, D)
        sd[b + "adaLN_modulation.1.bias"] = r(6 * D)
    sd["final_layer.linear.weight"] = r(P * P * C_OUT, D)
    sd["final_layer.linear.bias"] = r(P * P * C_OUT)
    sd["final_layer.adaLN_modulation.1.weight"] = r(2 * D, D)
    sd["final_layer.adaLN_modulation.1.bias"] = r(2 * D)
    return sd


def to_diffusers(sd, keep_pos_embed=True):
    """The renaming of diffusers' scripts/convert_dit_to_diffusers.py (reference doc 2.4)."""
    out = OrderedDict()
    out["pos_embed.proj.weight"] = sd["x_embedder.proj.weight"]
    out["pos_embed.proj.bias"] = sd["x_embedder.proj.bias"]
    for i in range(DEPTH):
        b, t = "blocks.%d." % i, "transformer_blocks.%d." % i
        emb = t + "norm1.emb."
        for w in ("weight", "bias"):
            out[emb + "timestep_embedder.linear_1." + w] = sd["t_embedder.mlp.0." + w].clone()
            out[emb + "timestep_embedder.linear_2." + w] = sd["t_embedder.mlp.2." + w].clone()
        out[emb + "class_embedder.embedding_table.weight"] = \
            sd["y_embedder.embedding_table.weight"].clone()
        for w in ("weight", "bias"):
            q, k, v = torch.chunk(sd[b + "attn.qkv." + w], 3, dim=0)
            out[t + "attn1.to_q." + w] = q.clone()
            out[t + "attn1.to_k." + w] = k.clone()
            out[t + "attn1.to_v." + w] = v.clone()
            out[t + "attn1.to_out.0." + w] = sd[b + "attn.proj." + w]
            out[t + "norm1.linear." + w] = sd[b + "adaLN_modulation.1." + w]
            out[t + "ff.net.0.proj." + w] = sd[b + "mlp.fc1." + w]
            out[t + "ff.net.2." + w] = sd[b + "mlp.fc2." + w]
    for w in ("weight", "bias"):
        out["proj_out_1." + w] = sd["final_layer.adaLN_modulation.1." + w]
        out["proj_out_2." + w] = sd["final_layer.linear." + w]
    if keep_pos_embed:
        out["pos_embed"] = sd["pos_embed"]
    return out


class Manifest:
    def __init__(self):
        self.lines = ["# generated by make_fixtures.py; see its docstring for the format"]

    def file(self, name, sd, describe):
        tensors = [(k, v) for k, v in sd.items() if isinstance(v, torch.Tensor)]
        self.lines.append("file %s %d %s" % (name, len(tensors), describe))
        for k, v in tensors:
            dt = ST_NAMES[v.dtype]
            vals = f32_bits(v) if dt in ("F32", "F16", "BF16") else "-"
            self.lines.append("t %s %s %d %s = %s" % (k, dt, v.dim(),
                                                     " ".join(str(s) for s in v.shape), vals))

    def error(self, name, status, text):
        self.lines.append("error %s %d %s" % (name, DIT_STATUS[status], text))

    def write(self):
        with open(os.path.join(OUT, "expected.txt"), "w") as f:
            f.write("\n".join(self.lines) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    m = Manifest()
    path = lambda n: os.path.join(OUT, n)

    # A bare state dict: a real module's OrderedDict (with _metadata, hence BUILD) plus views
    # that torch.save keeps as (storage, offset, size, stride).
    lin = torch.nn.Linear(3, 4)
    sd = lin.state_dict()
    base = torch.randn(4, 6)
    sd["transposed"] = torch.randn(3, 5).t()              # strides (1, 5)
    sd["slice"] = torch.arange(20.0)[5:12]                # storage offset 5
    sd["row"] = base[2]                                   # offset 12 into a shared storage
    sd["cols"] = base[:, 1:4]                             # offset 1, strides (6, 1)
    sd["permuted"] = torch.randn(2, 3, 4).permute(2, 0, 1)
    sd["expanded"] = torch.randn(3, 1).expand(3, 4)       # stride 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    torch.save(sd, path("bare.pt"))
    m.file("bare.pt", sd, "PyTorch checkpoint (bare state dict)")
    torch.save(sd, path("bare_proto4.pt"), pickle_protocol=4)
    m.file("bare_proto4.pt", sd, "PyTorch checkpoint (bare state dict)")

    entries = zip_entries(path("bare.pt"))
    write_zip64(path("bare_zip64.pt"), entries)
    assert torch.equal(torch.load(path("bare_zip64.pt"))["cols"], sd["cols"])
    m.file("bare_zip64.pt", sd, "PyTorch checkpoint (bare state dict)")
    with zipfile.ZipFile(path("deflated.pt"), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    m.error("deflated.pt", "UNSUPPORTED", "is compressed (method 8, deflate)")
    torch.save({"w": torch.ones(2)}, path("legacy.pt"), _use_new_zipfile_serialization=False)
    m.error("legacy.pt", "UNSUPPORTED", "legacy PyTorch checkpoint format")

    # train.py layout: model, ema, opt (AdamW after one step), args (argparse.Namespace).
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.GELU(), torch.nn.Linear(3, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0)
    net(torch.randn(5, 2)).square().sum().backward()
    opt.step()
    model_sd = net.state_dict()
    ema_sd = OrderedDict((k, v * 0.5 + 1.0) for k, v in model_sd.items())
    ema_sd["param"] = torch.nn.Parameter(torch.randn(2))   # _rebuild_parameter
    args = argparse.Namespace(model="DiT-XL/2", image_size=256, seed=2 ** 70, lr=1e-4)
    torch.save({"model": model_sd, "ema": ema_sd, "opt": opt.state_dict(), "args": args},
               path("train.pt"))
    m.file("train.pt", ema_sd, "PyTorch checkpoint (training dict, using 'ema')")
    torch.save({"args": args, "model": model_sd, "opt": opt.state_dict(), "steps": 7},
               path("train_model.pt"))
    m.file("train_model.pt", model_sd, "PyTorch checkpoint (training dict, using 'model')")

    # Half precision: special values (signed zeros, subnormals, extremes, inf, NaN payloads).
    f16_bits = [0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0xFBFF, 0x0400, 0x0001, 0x03FF, 0x8001,
                0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE55, 0x3555, 0x2E66, 0x0200]
    bf16_bits = [0x0000, 0x8000, 0x3F80, 0xC000, 0x7F7F, 0xFF7F, 0x0080, 0x0001, 0x007F, 0x8001,
                 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0xFFAA, 0x3EAB, 0x3DCD, 0x0040]
    half = OrderedDict()
    half["h"] = from_bits(f16_bits, torch.float16)
    half["b"] = from_bits(bf16_bits, torch.bfloat16)
    half["h2d"] = torch.randn(3, 4).half().t()
    half["b2d"] = torch.randn(4, 3).bfloat16()[1:, ::2]
    torch.save(half, path("half.pt"))
    m.file("half.pt", half, "PyTorch checkpoint (bare state dict)")

    # safetensors in each float dtype, plus one with an integer tensor.
    st = OrderedDict()
    st["a"] = torch.randn(2, 3)
    st["b"] = torch.randn(4)
    st["scalar"] = torch.tensor(-1.25)
    st["empty"] = torch.zeros(0, 3)
    st["c"] = torch.randn(2, 2, 2)
    write_safetensors(path("st_f32.safetensors"), st, {"format": "pt", "note": "q\"\\\u00e9"})
    m.file("st_f32.safetensors", st, "safetensors")
    sth = OrderedDict([("h", half["h"]), ("h2", torch.randn(2, 3).half())])
    write_safetensors(path("st_f16.safetensors"), sth)
    m.file("st_f16.safetensors", sth, "safetensors")
    stb = OrderedDict([("b", half["b"]), ("b2", torch.randn(3, 2).bfloat16())])
    write_safetensors(path("st_bf16.safetensors"), stb, {})
    m.file("st_bf16.safetensors", stb, "safetensors")
    sti = OrderedDict([("f", torch.randn(2)), ("ids", torch.tensor([3, -1, 7]))])
    write_safetensors(path("st_i64.safetensors"), sti)
    m.file("st_i64.safetensors", sti, "safetensors")

    # The tiny DiT in both namings (binding tests).
    gen = torch.Generator().manual_seed(1234)
    off = dit_official(gen)
    write_safetensors(path("dit_official.safetensors"), off)
    torch.save(off, path("dit_official.pt"))
    write_safetensors(path("dit_diffusers.safetensors"), to_diffusers(off))
    write_safetensors(path("dit_diffusers_nopos.safetensors"), to_diffusers(off, False))

    # A larger position embedding to compare dit_pos_embed_sincos against, raw float32.
    pe = get_2d_sincos_pos_embed(32, 8).astype(np.float32)
    pe.astype("<f4").tofile(path("pos_8x32.f32"))

    m.write()
    for n in sorted(os.listdir(OUT)):
        print("%6d %s" % (os.path.getsize(path(n)), n))


if __name__ == "__main__":
    main()
