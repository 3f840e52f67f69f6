#!/usr/bin/python3
"""torch_alignseg: our own PyTorch implementation of the AlignSeg inference
pipeline (METHOD.md sections 2-4), written from docs/METHOD.md for the speed
comparison of bench/compare. It is a peer to measure against and a second
opinion on the numbers alignseg computes, not part of the product.

Sub-commands (run with Debian's /usr/bin/python3 and python3-torch):
  check  --weights W.pth --input X.npy --out DIR     tokens, prototypes, ... as .npy
  export --weights W.pth --size S --out M.onnx         ONNX graph at a fixed size
  bench  --weights W.pth --size S --threads N --runs R  eager timings (one JSON line)
  random --arch vit_small --patch 16 --out W.pth       random published-shape weights
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PREFIXES = ("module.", "backbone.", "model.")


# ---------------------------------------------------------------- weights
def load_state(path):
    """A flat state dict with the key names of METHOD.md sections 2 and 3."""
    obj = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model", "teacher", "student"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        changed = True
        while changed:
            changed = False
            for p in PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v.float().contiguous()
    return out


def random_state(arch="vit_small", patch=16, queries=5, hidden=768, layers=1, seed=0):
    """Random weights of the published shapes (for running without alignseg)."""
    g = torch.Generator().manual_seed(seed)
    d = {"vit_small": 384, "vit_base": 768}[arch]
    grid = 224 // patch
    s = {}

    def lin(name, out, inp):
        s[name + ".weight"] = torch.randn(out, inp, generator=g) * (1.0 / math.sqrt(inp))
        s[name + ".bias"] = torch.randn(out, generator=g) * 0.02

    def norm(name, dim):
        s[name + ".weight"] = 1.0 + 0.1 * torch.randn(dim, generator=g)
        s[name + ".bias"] = 0.1 * torch.randn(dim, generator=g)

    s["cls_token"] = 0.02 * torch.randn(1, 1, d, generator=g)
    s["pos_embed"] = 0.02 * torch.randn(1, 1 + grid * grid, d, generator=g)
    s["patch_embed.proj.weight"] = torch.randn(d, 3, patch, patch, generator=g) / math.sqrt(3 * patch * patch)
    s["patch_embed.proj.bias"] = 0.02 * torch.randn(d, generator=g)
    for i in range(12):
        b = "blocks.%d." % i
        norm(b + "norm1", d)
        lin(b + "attn.qkv", 3 * d, d)
        lin(b + "attn.proj", d, d)
        norm(b + "norm2", d)
        lin(b + "mlp.fc1", 4 * d, d)
        lin(b + "mlp.fc2", d, 4 * d)
    norm("norm", d)
    s["clsQueries.weight"] = torch.randn(queries, d, generator=g)
    for j in range(layers):
        for kind, sub in (("cross_attention", "multihead_attn"), ("self_attention", "self_attn")):
            p = "decoder_%s_layers.%d." % (kind, j)
            s[p + sub + ".in_proj_weight"] = torch.randn(3 * d, d, generator=g) / math.sqrt(d)
            s[p + sub + ".in_proj_bias"] = 0.02 * torch.randn(3 * d, generator=g)
            lin(p + sub + ".out_proj", d, d)
            norm(p + "norm", d)
        p = "decoder_ffn_layers.%d." % j
        lin(p + "linear1", hidden, d)
        lin(p + "linear2", d, hidden)
        norm(p + "norm", d)
    return s


# ---------------------------------------------------------------- model
def _layernorm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def _mha(q, k, v, heads):
    """Scaled dot-product attention of projected q (nq,D), k, v (nk,D);
    returns the output (nq,D) and the probabilities (heads,nq,nk)."""
    nq, dim = q.shape
    nk = k.shape[0]
    dh = dim // heads
    qh = q.reshape(nq, heads, dh).transpose(0, 1)
    kh = k.reshape(nk, heads, dh).transpose(0, 1)
    vh = v.reshape(nk, heads, dh).transpose(0, 1)
    p = torch.softmax(torch.matmul(qh, kh.transpose(1, 2)) * (dh ** -0.5), dim=-1)
    out = torch.matmul(p, vh).transpose(0, 1).reshape(nq, dim)
    return out, p


class AlignSeg(torch.nn.Module):
    """Encoder (METHOD.md 2), decoder (METHOD.md 3) and per-image inference (METHOD.md 4)
    for one fixed input size h x w (the size only matters for ONNX export)."""

    def __init__(self, state, dec_heads=3, mass_threshold=0.6):
        super().__init__()
        for k, v in state.items():
            self.register_buffer("w_" + k.replace(".", "__"), v, persistent=False)
        pw = state["patch_embed.proj.weight"]
        self.dim = pw.shape[0]
        self.patch = pw.shape[2]
        self.depth = 0
        while "blocks.%d.norm1.weight" % self.depth in state:
            self.depth += 1
        self.heads = self.dim // 64
        self.grid = int(round(math.sqrt(state["pos_embed"].shape[1] - 1)))
        self.has_decoder = "clsQueries.weight" in state
        self.dec_layers = 0
        while "decoder_ffn_layers.%d.linear1.weight" % self.dec_layers in state:
            self.dec_layers += 1
        self.dec_heads = dec_heads
        self.mass_threshold = mass_threshold
        self.fixed_hw = None  # set for ONNX export: sizes as Python ints
        k = torch.exp(-0.5 * (torch.arange(7, dtype=torch.float64) - 3) ** 2 / 0.6 ** 2)
        self.register_buffer("blur", (k / k.sum()).float(), persistent=False)

    def w(self, name):
        return getattr(self, "w_" + name.replace(".", "__"))

    def _lin(self, x, name):
        return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

    def pos_embed(self, gh, gw):
        pe = self.w("pos_embed")
        g = self.grid
        if gh == g and gw == g:
            return pe[0]
        patch = pe[0, 1:].reshape(1, g, g, self.dim).permute(0, 3, 1, 2)
        # Python floats as scale factors: exportable by torch 1.13 at a fixed size.
        patch = F.interpolate(patch, scale_factor=((gh + 0.1) / g, (gw + 0.1) / g),
                              mode="bicubic", align_corners=False)
        patch = patch.permute(0, 2, 3, 1).reshape(gh * gw, self.dim)
        return torch.cat([pe[0, :1], patch], 0)

    def _hw(self, img):
        return self.fixed_hw if self.fixed_hw else (img.shape[1], img.shape[2])

    def encoder(self, img):
        """img (3,H,W) normalised -> tokens (N,D), CLS attention (heads,N)."""
        p = self.patch
        h, w = self._hw(img)
        gh, gw = h // p, w // p
        x = F.conv2d(img.unsqueeze(0), self.w("patch_embed.proj.weight"),
                     self.w("patch_embed.proj.bias"), stride=p)
        x = x.flatten(2)[0].transpose(0, 1)  # (N, D)
        x = torch.cat([self.w("cls_token")[0], x], 0) + self.pos_embed(gh, gw)
        attn = None
        for i in range(self.depth):
            b = "blocks.%d." % i
            y = _layernorm(x, self.w(b + "norm1.weight"), self.w(b + "norm1.bias"), 1e-6)
            qkv = self._lin(y, b + "attn.qkv")
            d = self.dim
            o, attn = _mha(qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:], self.heads)
            x = x + self._lin(o, b + "attn.proj")
            y = _layernorm(x, self.w(b + "norm2.weight"), self.w(b + "norm2.bias"), 1e-6)
            y = F.gelu(self._lin(y, b + "mlp.fc1"))
            x = x + self._lin(y, b + "mlp.fc2")
        x = _layernorm(x, self.w("norm.weight"), self.w("norm.bias"), 1e-6)
        return x[1:], attn[:, 0, 1:]

    def _attn_layer(self, prefix, query, key, value):
        d = self.dim
        wi = self.w(prefix + ".in_proj_weight")
        bi = self.w(prefix + ".in_proj_bias")
        q = F.linear(query, wi[:d], bi[:d])
        k = F.linear(key, wi[d:2 * d], bi[d:2 * d])
        v = F.linear(value, wi[2 * d:], bi[2 * d:])
        o, _ = _mha(q, k, v, self.dec_heads)
        return self._lin(o, prefix + ".out_proj")

    def decoder(self, tokens):
        q0 = self.w("clsQueries.weight")
        t = q0
        for j in range(self.dec_layers):
            c = "decoder_cross_attention_layers.%d." % j
            s = "decoder_self_attention_layers.%d." % j
            f = "decoder_ffn_layers.%d." % j
            t = q0 + self._attn_layer(c + "multihead_attn", q0, tokens, tokens)
            t = _layernorm(t, self.w(c + "norm.weight"), self.w(c + "norm.bias"), 1e-5)
            t = t + self._attn_layer(s + "self_attn", t, t, t)
            t = _layernorm(t, self.w(s + "norm.weight"), self.w(s + "norm.bias"), 1e-5)
            h = torch.relu(self._lin(t, f + "linear1"))
            t = t + self._lin(h, f + "linear2")
            t = _layernorm(t, self.w(f + "norm.weight"), self.w(f + "norm.bias"), 1e-5)
        return t

    def fg_candidates(self, attn, gh, gw):
        """METHOD.md 4.6 up to the mass threshold (components are dropped outside)."""
        a = attn.mean(0).reshape(1, 1, gh, gw)
        k = self.blur
        a = F.conv2d(F.pad(a, (3, 3, 0, 0), mode="reflect"), k.reshape(1, 1, 1, 7))
        a = F.conv2d(F.pad(a, (0, 0, 3, 3), mode="reflect"), k.reshape(1, 1, 7, 1))
        v = a.reshape(-1)
        sv, idx = torch.sort(v)
        cum = torch.cumsum(sv / sv.sum(), 0)
        keep = (cum > (1.0 - self.mass_threshold)).to(torch.uint8)
        return torch.zeros_like(keep).scatter(0, idx, keep)

    def forward(self, img):
        h, w = self._hw(img)
        gh, gw = h // self.patch, w // self.patch
        tokens, attn = self.encoder(img)
        protos = self.decoder(tokens)
        fn = F.normalize(tokens, dim=1, eps=1e-10)
        pn = F.normalize(protos, dim=1, eps=1e-10)
        assign = torch.softmax(fn @ pn.t(), dim=1)
        maps = assign.t().reshape(1, -1, gh, gw)
        full = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
        labels = torch.argmax(full[0], dim=0)
        fg = self.fg_candidates(attn, gh, gw)
        return tokens, protos, attn, assign, labels, fg


def drop_small_components(mask, gh, gw, max_size=2):
    """Remove 8-connected foreground components of at most max_size cells."""
    m = mask.reshape(gh, gw).copy()
    seen = np.zeros_like(m, dtype=bool)
    for y0 in range(gh):
        for x0 in range(gw):
            if not m[y0, x0] or seen[y0, x0]:
                continue
            stack, comp = [(y0, x0)], []
            seen[y0, x0] = True
            while stack:
                y, x = stack.pop()
                comp.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < gh and 0 <= xx < gw and m[yy, xx] and not seen[yy, xx]:
                            seen[yy, xx] = True
                            stack.append((yy, xx))
            if len(comp) <= max_size:
                for y, x in comp:
                    m[y, x] = 0
    return m.reshape(-1)


def test_image(size):
    """The deterministic normalised input bench/compare uses when no .npy is
    given (alignseg bench writes the same formula with --save-input)."""
    c = np.arange(3).reshape(3, 1, 1)
    y = np.arange(size).reshape(1, size, 1)
    x = np.arange(size).reshape(1, 1, size)
    v = 0.5 + 0.5 * np.sin(0.05 * x * (c + 1) + 0.031 * y * (3 - c) + c)
    mean = np.array(MEAN).reshape(3, 1, 1)
    std = np.array(STD).reshape(3, 1, 1)
    return ((v - mean) / std).astype(np.float32)


# ---------------------------------------------------------------- commands
def set_threads(n):
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def cmd_check(a):
    set_threads(a.threads)
    model = AlignSeg(load_state(a.weights)).eval()
    img = torch.from_numpy(np.load(a.input).astype(np.float32))
    with torch.no_grad():
        tokens, protos, attn, assign, labels, fg = model(img)
    gh, gw = img.shape[1] // model.patch, img.shape[2] // model.patch
    os.makedirs(a.out, exist_ok=True)
    fg = drop_small_components(fg.numpy(), gh, gw)
    for name, t in (("tokens", tokens), ("prototypes", protos), ("cls_attn", attn),
                    ("assign", assign), ("labels_full", labels)):
        np.save(os.path.join(a.out, name + ".npy"), t.numpy())
    np.save(os.path.join(a.out, "fg_mask.npy"), fg.astype(np.uint8))
    return 0


def cmd_export(a):
    set_threads(1)
    state = load_state(a.weights) if a.weights else random_state(a.arch, a.patch)
    model = AlignSeg(state).eval()
    model.fixed_hw = (a.size, a.size)
    img = torch.from_numpy(test_image(a.size))
    with torch.no_grad():
        torch.onnx.export(model, (img,), a.out, opset_version=a.opset,
                          input_names=["image"],
                          output_names=["tokens", "prototypes", "cls_attn", "assign",
                                        "labels", "fg_candidates"],
                          do_constant_folding=True)
    return 0


def cmd_bench(a):
    set_threads(a.threads)
    state = load_state(a.weights) if a.weights else random_state(a.arch, a.patch)
    model = AlignSeg(state).eval()
    img = torch.from_numpy(test_image(a.size))
    gh = gw = a.size // model.patch
    times = []
    with torch.inference_mode():
        for r in range(a.runs + 1):
            t0 = time.perf_counter()
            out = model(img)
            fg = drop_small_components(out[5].numpy(), gh, gw)
            t1 = time.perf_counter()
            if r > 0:
                times.append(t1 - t0)
    del fg
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"runtime": "pytorch", "size": a.size, "threads": a.threads,
                      "times_ms": [t * 1e3 for t in times], "peak_rss_mib": rss,
                      "torch": torch.__version__}))
    return 0


def cmd_random(a):
    torch.save(random_state(a.arch, a.patch, seed=a.seed), a.out)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--weights", required=True)
    c.add_argument("--input", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--threads", type=int, default=1)
    for name in ("export", "bench"):
        e = sub.add_parser(name)
        e.add_argument("--weights")
        e.add_argument("--arch", default="vit_small", choices=("vit_small", "vit_base"))
        e.add_argument("--patch", type=int, default=16, choices=(8, 16))
        e.add_argument("--size", type=int, default=448)
        if name == "export":
            e.add_argument("--out", required=True)
            e.add_argument("--opset", type=int, default=14)
        else:
            e.add_argument("--threads", type=int, default=os.cpu_count())
            e.add_argument("--runs", type=int, default=5)
    r = sub.add_parser("random")
    r.add_argument("--arch", default="vit_small", choices=("vit_small", "vit_base"))
    r.add_argument("--patch", type=int, default=16, choices=(8, 16))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    return {"check": cmd_check, "export": cmd_export, "bench": cmd_bench,
            "random": cmd_random}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
