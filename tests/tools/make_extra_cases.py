#!/usr/bin/python3
"""Dev script: regenerate tests/data/extra/ (inference cases for configurations
other than those of tests/data/reference/: widths, depths, head counts,
prototype counts, decoder layers, input sizes, checkpoint layouts).

Run from the repository root with Debian's python (python3-torch, numpy, PIL):
    /usr/bin/python3 tests/tools/make_extra_cases.py [--check-bench]

Ground truth comes from an independent PyTorch model written from docs/METHOD.md
sections 2-4 with plain torch building blocks, laid out as the published code
(DINO's VisionTransformer, AlignSeg's Mask2Former-style decoder):
  - encoder: nn.Conv2d patch embedding, pre-norm blocks of nn.LayerNorm (eps 1e-6),
    a qkv nn.Linear split as (3, heads, d), softmax attention, exact GELU MLP;
    position embedding resized as DINO's interpolate_pos_encoding
    (F.interpolate bicubic, scale_factor ((gh+0.1)/g, (gw+0.1)/g));
  - decoder: torch.nn.MultiheadAttention (sequence-first, dropout 0), post-norm
    nn.LayerNorm (eps 1e-5), Q0 fed into every layer, last layer kept;
  - inference: cosine similarity, softmax, argmax; full-resolution labels by
    F.interpolate bilinear (align_corners=False) to the image size; foreground as
    torchvision's gaussian_blur (2-D kernel, reflect padding) re-done with conv2d,
    sort / normalise / cumsum, and 8-connected components of <= 2 patches dropped.
Models are saved with torch.save in the layout the case names (see CASES). Weights
are spread wide so every operation matters; seeds whose argmax margins or
foreground-mass crossing are closer than 1e-4 are rejected (next seed).
--check-bench also runs bench/torch_alignseg.py (our other PyTorch
implementation) on each case and prints its max deviation from this reference.
--sweep BIN [THREADS] builds more configurations (SWEEP) in a temporary folder
and compares `BIN segment --dump` with them directly (nothing is written here).
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "extra")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MARGIN = 1e-4

# name: configuration. image (h, w) is the model input size; `opts` are the
# alignseg options that reproduce it with input.png (already at that size).
# layout: "alignseg" = one full checkpoint {epoch, net, state_dict, optimizer};
# "dino+decoder" = DINO full checkpoint ({"teacher", "student"}, module.backbone.
# keys + a module.head. tensor) given as -b and a decoder-only state dict as -m.
CASES = {
    # narrow, 1 block, 2 heads, 8 decoder heads of width 4, 2 decoder layers,
    # non-square 64x112 on a 5x5 training grid: pos_embed shrinks in h, grows in w.
    "d32_rect_2layers": dict(dim=32, depth=1, heads=2, patch=16, train_size=80, queries=3,
                             dec_hidden=40, dec_layers=2, dec_heads=8, image=(64, 112),
                             threshold=None, layout="alignseg", half=False,
                             opts="--encoder-heads 2 --decoder-heads 8 --long-side 112",
                             # second input small.png, 48x80 (grid 3x5): arrays in small/,
                             # no fg_mask (PyTorch's reflect padding of 3 needs >= 4 rows)
                             small=(48, 80)),
    # wider, 3 blocks, 6 heads, patch 8, 9 prototypes, 3 decoder layers, 4 decoder
    # heads, 40x56 on an 8x8 grid, threshold 0.3; weights stored as float16, decoder
    # layers 0 and 1 one set of tensors sharing storages (smaller file; only the
    # last layer, which differs, reaches the output).
    "d96_p8_3layers_f16": dict(dim=96, depth=3, heads=6, patch=8, train_size=64, queries=9,
                               dec_hidden=64, dec_layers=3, dec_heads=4, image=(40, 56),
                               threshold=0.3, layout="alignseg", half=True, share01=True,
                               opts="--encoder-heads 6 --decoder-heads 4 --threshold 0.3 "
                                    "--long-side 56"),
    # 1 encoder head (width 64 = default D/64), 2 prototypes, 1 decoder head,
    # input 32x32 equal to the training grid (no interpolation).
    "d64_1head_q2": dict(dim=64, depth=2, heads=1, patch=8, train_size=32, queries=2,
                         dec_hidden=48, dec_layers=1, dec_heads=1, image=(32, 32),
                         threshold=0.7, layout="alignseg", half=False,
                         opts="--decoder-heads 1 --threshold 0.7 --size 32"),
    # DINO full checkpoint as backbone + decoder-only state dict, default 3 decoder
    # heads, portrait 96x64 (grid 6x4 from 4x4: grows in h, same count in w).
    "d48_dino_split": dict(dim=48, depth=2, heads=3, patch=16, train_size=64, queries=5,
                           dec_hidden=96, dec_layers=1, dec_heads=3, image=(96, 64),
                           threshold=0.5, layout="dino+decoder", half=False,
                           opts="--encoder-heads 3 --threshold 0.5 --long-side 96"),
}


# ---------------------------------------------------------------- encoder (DINO layout)
class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x), attn


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):
        y, attn = self.attn(self.norm1(x))
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return x, attn


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)


class ViT(nn.Module):
    def __init__(self, dim, depth, heads, patch, grid):
        super().__init__()
        self.patch = patch
        self.patch_embed = PatchEmbed(dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, x, h, w):
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        cls_pos = self.pos_embed[:, 0]
        patch_pos = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        h0 = h // self.patch + 0.1
        w0 = w // self.patch + 0.1
        g = int(math.sqrt(n))
        patch_pos = F.interpolate(
            patch_pos.reshape(1, g, g, dim).permute(0, 3, 1, 2),
            scale_factor=(h0 / math.sqrt(n), w0 / math.sqrt(n)), mode="bicubic")
        assert int(h0) == patch_pos.shape[-2] and int(w0) == patch_pos.shape[-1]
        patch_pos = patch_pos.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((cls_pos.unsqueeze(0), patch_pos), dim=1)

    def forward(self, img):
        b, _, h, w = img.shape
        x = self.patch_embed.proj(img).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, h, w)
        attn = None
        for blk in self.blocks:
            x, attn = blk(x)
        x = self.norm(x)
        return x, attn


# ---------------------------------------------------------------- decoder (AlignSeg layout)
class CrossAttentionLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt, memory):
        tgt2 = self.multihead_attn(query=tgt, key=memory, value=memory)[0]
        return self.norm(tgt + tgt2)


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=0.0)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt):
        tgt2 = self.self_attn(tgt, tgt, value=tgt)[0]
        return self.norm(tgt + tgt2)


class FFNLayer(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt):
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class AlignSegNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dim"]
        self.backbone = ViT(d, c["depth"], c["heads"], c["patch"], c["train_size"] // c["patch"])
        self.clsQueries = nn.Embedding(c["queries"], d)
        L = c["dec_layers"]
        self.decoder_cross_attention_layers = nn.ModuleList(
            [CrossAttentionLayer(d, c["dec_heads"]) for _ in range(L)])
        self.decoder_self_attention_layers = nn.ModuleList(
            [SelfAttentionLayer(d, c["dec_heads"]) for _ in range(L)])
        self.decoder_ffn_layers = nn.ModuleList(
            [FFNLayer(d, c["dec_hidden"]) for _ in range(L)])

    def decode(self, tokens):
        """tokens (N, D) -> adapted prototypes (Q, D)."""
        memory = tokens.unsqueeze(1)  # (N, 1, D), sequence first
        q0 = self.clsQueries.weight.unsqueeze(1)
        out = None
        for j in range(len(self.decoder_ffn_layers)):
            t = self.decoder_cross_attention_layers[j](q0, memory)
            t = self.decoder_self_attention_layers[j](t)
            out = self.decoder_ffn_layers[j](t)
        return out[:, 0]


# ---------------------------------------------------------------- inference (METHOD.md 4)
def gaussian_blur(x, ksize=7, sigma=0.6):
    """torchvision.transforms.functional.gaussian_blur on a (1,1,h,w) map."""
    half = (ksize - 1) * 0.5
    t = torch.linspace(-half, half, steps=ksize)
    pdf = torch.exp(-0.5 * (t / sigma).pow(2))
    k1 = pdf / pdf.sum()
    k2 = torch.mm(k1[:, None], k1[None, :])
    p = ksize // 2
    x = F.pad(x, [p, p, p, p], mode="reflect")
    return F.conv2d(x, k2[None, None])


def drop_small(mask, max_size=2):
    m = mask.copy()
    h, w = m.shape
    label = -np.ones((h, w), np.int64)
    comps = []
    for y in range(h):
        for x in range(w):
            if m[y, x] and label[y, x] < 0:
                todo, comp = [(y, x)], []
                label[y, x] = len(comps)
                while todo:
                    cy, cx = todo.pop()
                    comp.append((cy, cx))
                    for yy in range(max(cy - 1, 0), min(cy + 2, h)):
                        for xx in range(max(cx - 1, 0), min(cx + 2, w)):
                            if m[yy, xx] and label[yy, xx] < 0:
                                label[yy, xx] = len(comps)
                                todo.append((yy, xx))
                comps.append(comp)
    for comp in comps:
        if len(comp) <= max_size:
            for y, x in comp:
                m[y, x] = 0
    return m


def top2_gap(a, dim):
    if a.shape[dim] < 2:
        return float("inf")
    s = torch.sort(a, dim=dim, descending=True)[0]
    return float((s.select(dim, 0) - s.select(dim, 1)).min())


def to_numpy(arrays):
    return {k: v.detach().numpy().astype(np.int32 if v.dtype == torch.int32 else np.float32)
            for k, v in arrays.items()}


def infer_no_fg(tokens, cls_token, cls_attn, mean, queries, sim, assign, labels_patch,
                labels_full, full):
    arrays = {
        "tokens": tokens, "cls_token": cls_token, "cls_attn": cls_attn, "cls_attn_mean": mean,
        "queries": queries, "similarity": sim, "assign": assign,
        "labels_patch": labels_patch.to(torch.int32), "labels_full": labels_full.to(torch.int32),
    }
    margins = {"labels_patch": top2_gap(assign, 1), "labels_full": top2_gap(full, 0),
               "fg_mass": 1.0, "fg_sort_cross": 1.0}
    return to_numpy(arrays), margins


def infer(net, img, c):
    """img (3,H,W) normalised float32 -> dict of reference arrays and margins."""
    p = c["patch"]
    H, W = img.shape[1:]
    gh, gw = H // p, W // p
    with torch.no_grad():
        x, attn = net.backbone(img[None])
        tokens = x[0, 1:]
        cls_token = x[0, 0]
        cls_attn = attn[0, :, 0, 1:]
        mean = cls_attn.mean(0).reshape(gh, gw)
        queries = net.decode(tokens)
        sim = F.normalize(tokens, dim=1, eps=1e-10) @ F.normalize(queries, dim=1, eps=1e-10).t()
        assign = sim.softmax(dim=1)
        labels_patch = assign.argmax(dim=1).reshape(gh, gw)
        maps = assign.t().reshape(1, -1, gh, gw)
        full = F.interpolate(maps, size=(H, W), mode="bilinear", align_corners=False)[0]
        labels_full = full.argmax(dim=0)
        if min(gh, gw) < 4:  # F.pad reflect refuses a pad of 3 on fewer than 4 cells
            return infer_no_fg(tokens, cls_token, cls_attn, mean, queries, sim, assign,
                               labels_patch, labels_full, full)
        blur = gaussian_blur(mean[None, None])[0, 0].reshape(-1)
        sv, idx = torch.sort(blur)
        cum = torch.cumsum(sv / sv.sum(), dim=0)
        t = 0.6 if c["threshold"] is None else c["threshold"]
        keep = (cum > 1.0 - t).to(torch.uint8)
        cand = torch.zeros_like(keep).scatter(0, idx, keep).reshape(gh, gw).numpy()
    fg = drop_small(cand)

    cross = int(np.argmax(cum.numpy() > 1.0 - t)) if keep.any() else len(cum) - 1
    margins = {
        "labels_patch": top2_gap(assign, 1),
        "labels_full": top2_gap(full, 0),
        "fg_mass": float((cum - (1.0 - t)).abs().min()),
        "fg_sort": float((sv[1:] - sv[:-1]).min()) / float(sv.max()),
        "fg_sort_cross": float(sv[cross] - sv[max(cross - 1, 0)]) / float(sv.max())
        if cross > 0 else 1.0,
    }
    arrays = {
        "tokens": tokens, "cls_token": cls_token, "cls_attn": cls_attn, "cls_attn_mean": mean,
        "fg_mask": torch.from_numpy(fg.astype(np.float32)), "queries": queries,
        "similarity": sim, "assign": assign,
        "labels_patch": labels_patch.to(torch.int32), "labels_full": labels_full.to(torch.int32),
    }
    return to_numpy(arrays), margins


# ---------------------------------------------------------------- random models and images
def randomise(net, c, g):
    """Wide weights: LayerNorm gains around 1 with spread, non-zero biases,
    attention logits of a few units, distinct position embeddings."""
    for name, prm in net.named_parameters():
        shape = prm.shape
        if name.endswith("norm.weight") or ".norm1.weight" in name or ".norm2.weight" in name:
            v = 1.0 + 0.4 * torch.randn(shape, generator=g)
        elif name.endswith("bias"):
            v = 0.3 * torch.randn(shape, generator=g)
        elif "pos_embed" in name:
            v = 0.8 * torch.randn(shape, generator=g)
        elif "cls_token" in name or "clsQueries" in name:
            v = torch.randn(shape, generator=g)
        elif "patch_embed" in name:
            fan_in = shape[1] * shape[2] * shape[3]
            v = 2.0 * torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif "qkv" in name or "in_proj_weight" in name:
            v = 1.3 * torch.randn(shape, generator=g) / math.sqrt(shape[1])
        else:
            v = 1.0 * torch.randn(shape, generator=g) / math.sqrt(shape[1])
        with torch.no_grad():
            prm.copy_(v)


def random_image(h, w, g):
    """Smooth colour blobs plus noise, uint8 (h, w, 3)."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    img = torch.zeros(3, h, w)
    for _ in range(6):
        cy, cx = torch.rand(2, generator=g) * torch.tensor([h, w])
        r = 6 + 20 * float(torch.rand(1, generator=g))
        col = torch.rand(3, 1, 1, generator=g) * 2 - 1
        img += col * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img = 0.5 + 0.35 * img + 0.15 * torch.randn(3, h, w, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def normalise(rgb):
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    m = torch.tensor(MEAN).view(3, 1, 1)
    s = torch.tensor(STD).view(3, 1, 1)
    return (x - m) / s


def margins_ok(m):
    return (m["labels_patch"] > MARGIN and m["labels_full"] > MARGIN and m["fg_mass"] > MARGIN
            and m["fg_sort_cross"] > MARGIN)


# ---------------------------------------------------------------- writing
def save_case(name, c, net, rgb, arrays, seed, margins):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sd = net.state_dict()
    if c["half"]:
        sd = {k: v.half() for k, v in sd.items()}
    if c.get("share01"):
        for k in list(sd):
            if "_layers.1." in k:
                sd[k] = sd[k.replace("_layers.1.", "_layers.0.")]
    files = {}
    if c["layout"] == "alignseg":
        torch.save({"epoch": 7, "net": "alignseg", "state_dict": sd, "optimizer": {}},
                   os.path.join(d, "alignseg.pth"))
        files["model"] = "alignseg.pth"
    else:
        enc = {"module.backbone." + k[len("backbone."):]: v
               for k, v in sd.items() if k.startswith("backbone.")}
        g = torch.Generator().manual_seed(seed + 1000)
        head = {"module.head.last_layer.weight_g": torch.randn(16, 1, generator=g)}
        # the student differs from the teacher: DINO evaluates with the teacher
        # (stored as float16 to keep the file small)
        student = {k: (v + 0.5 * torch.randn(v.shape, generator=g)).half()
                   for k, v in enc.items()}
        torch.save({"teacher": dict(enc, **head), "student": dict(student, **head),
                    "epoch": 100, "optimizer": {}},
                   os.path.join(d, "dino_checkpoint.pth"))
        dec = {k: v for k, v in sd.items() if not k.startswith("backbone.")}
        torch.save(dec, os.path.join(d, "decoder.pth"))
        files["backbone"] = "dino_checkpoint.pth"
        files["model"] = "decoder.pth"
    Image.fromarray(rgb).save(os.path.join(d, "input.png"))
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v)
    info = {k: v for k, v in c.items() if k not in ("opts", "small")}
    if c.get("small"):
        info["small"] = {"image": "small.png", "image_size": list(c["small"]),
                         "options": c["opts"].replace("--long-side %d" % max(c["image"]),
                                                      "--long-side %d" % max(c["small"])),
                         "arrays": "small/ (no fg_mask: grid below 4 cells)"}
    info.update(seed=seed, files=files, options=c["opts"],
                grid=[c["image"][0] // c["patch"], c["image"][1] // c["patch"]],
                mass_threshold=0.6 if c["threshold"] is None else c["threshold"],
                margins=margins)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(info, f, indent=1)


def make_case(name, c):
    for seed in range(1, 200):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        net = AlignSegNet(c).eval()
        randomise(net, c, g)
        if c.get("share01"):
            with torch.no_grad():
                for k, prm in net.named_parameters():
                    if "_layers.1." in k:
                        prm.copy_(net.get_parameter(k.replace("_layers.1.", "_layers.0.")))
        if c["half"]:  # the reference runs on the weights as stored (float16-rounded)
            with torch.no_grad():
                for prm in net.parameters():
                    prm.copy_(prm.half().float())
        rgb = random_image(c["image"][0], c["image"][1], g)
        arrays, m = infer(net, normalise(rgb), c)
        small = None
        if c.get("small") and margins_ok(m):
            srgb = random_image(c["small"][0], c["small"][1], g)
            small = (srgb,) + infer(net, normalise(srgb), dict(c, image=c["small"]))
            m.update({"small_" + k: v for k, v in small[2].items()
                      if k.startswith("labels")})
        if margins_ok(m) and (small is None or margins_ok(small[2])):
            sens = sensitivity(net, rgb, c, arrays)
            assert min(sens.values()) > 1e-2, (name, sens)
            save_case(name, c, net, rgb, arrays, seed, m)
            if small is not None:
                d = os.path.join(OUT, name)
                Image.fromarray(small[0]).save(os.path.join(d, "small.png"))
                os.makedirs(os.path.join(d, "small"))
                for k, v in small[1].items():
                    np.save(os.path.join(d, "small", k + ".npy"), v)
            print("%-20s wrong variants differ by: %s" % (
                name, " ".join("%s=%.2g" % kv for kv in sens.items())))
            print("%-20s seed %d margins %s fg %d/%d" % (
                name, seed, " ".join("%s=%.2g" % kv for kv in m.items()),
                int(arrays["fg_mask"].sum()), arrays["fg_mask"].size))
            return
    raise SystemExit("%s: no seed without near-ties" % name)


def sensitivity(net, rgb, c, arrays):
    """How far plausible mistakes land from the reference: each must exceed the
    test tolerance by far, or the case would not catch it."""
    img = normalise(rgb)
    out = {}
    with torch.no_grad():
        tokens = torch.from_numpy(arrays["tokens"])
        ref_q = torch.from_numpy(arrays["queries"])
        L = c["dec_layers"]
        if L > 1:
            memory, q0 = tokens.unsqueeze(1), net.clsQueries.weight.unsqueeze(1)
            t = q0
            for j in range(L):  # chained layers
                t = net.decoder_ffn_layers[j](net.decoder_self_attention_layers[j](
                    net.decoder_cross_attention_layers[j](t, memory)))
            out["chained_layers"] = float((t[:, 0] - ref_q).abs().max())
            t = net.decoder_ffn_layers[0](net.decoder_self_attention_layers[0](
                net.decoder_cross_attention_layers[0](q0, memory)))
            out["first_layer"] = float((t[:, 0] - ref_q).abs().max())
        g = c["train_size"] // c["patch"]
        gh, gw = c["image"][0] // c["patch"], c["image"][1] // c["patch"]
        if (gh, gw) != (g, g):  # position embedding resized to the exact size ratio
            vit = net.backbone
            orig = vit.interpolate_pos_encoding

            def by_size(x, h, w):
                pe = vit.pos_embed
                pp = F.interpolate(pe[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2),
                                   size=(gh, gw), mode="bicubic", align_corners=False)
                return torch.cat((pe[:, :1], pp.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)), 1)
            vit.interpolate_pos_encoding = by_size
            x, _ = vit(img[None])
            vit.interpolate_pos_encoding = orig
            out["pos_by_size"] = float((x[0, 1:] - tokens).abs().max())
        dh = c["dec_heads"]
        for other in (1, 2, 3, 4, 8):
            if other != dh and c["dim"] % other == 0:
                m2 = AlignSegNet(dict(c, dec_heads=other)).eval()
                m2.load_state_dict(net.state_dict())
                out["dec_heads_%d" % other] = float((m2.decode(tokens) - ref_q).abs().max())
                break
    return out


def check_bench(name, c):
    """Second opinion: bench/torch_alignseg.py on the saved case."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import torch_alignseg as ta
    d = os.path.join(OUT, name)
    info = json.load(open(os.path.join(d, "case.json")))
    state = {}
    for role in ("backbone", "model"):
        if role in info["files"]:
            st = ta.load_state(os.path.join(d, info["files"][role]))
            keep = (lambda k: not (k.startswith("clsQueries") or k.startswith("decoder_"))) \
                if role == "backbone" else (lambda k: True)
            state.update({k: v for k, v in st.items() if keep(k)})
    model = ta.AlignSeg(state, dec_heads=c["dec_heads"], mass_threshold=info["mass_threshold"])
    model.heads = c["heads"]  # it assumes D/64 encoder heads
    rgb = np.array(Image.open(os.path.join(d, "input.png")).convert("RGB"))
    with torch.no_grad():
        tokens, protos, attn, assign, labels, fg = model(normalise(rgb))
    gh, gw = info["grid"]
    fg = ta.drop_small_components(fg.numpy(), gh, gw).reshape(gh, gw)
    ref = {k: np.load(os.path.join(d, k + ".npy")) for k in
           ("tokens", "queries", "cls_attn", "assign", "labels_full", "fg_mask")}
    got = {"tokens": tokens, "queries": protos, "cls_attn": attn, "assign": assign,
           "labels_full": labels, "fg_mask": torch.from_numpy(fg)}
    errs = {k: float(np.abs(got[k].numpy().astype(np.float64) - ref[k]).max()) for k in ref}
    print("%-20s bench/torch_alignseg.py vs reference: %s" % (
        name, " ".join("%s=%.2g" % kv for kv in errs.items())))
    return errs


SWEEP = [  # --sweep: more shapes, generated into a temporary folder, not committed
    dict(dim=32, depth=1, heads=32, patch=16, train_size=64, queries=1, dec_hidden=8,
         dec_layers=1, dec_heads=32, image=(64, 64), threshold=None),
    dict(dim=24, depth=2, heads=4, patch=8, train_size=48, queries=4, dec_hidden=200,
         dec_layers=5, dec_heads=6, image=(120, 32), threshold=0.9),
    dict(dim=16, depth=4, heads=2, patch=16, train_size=224, queries=12, dec_hidden=16,
         dec_layers=1, dec_heads=16, image=(64, 160), threshold=0.1),
    dict(dim=40, depth=1, heads=5, patch=8, train_size=96, queries=6, dec_hidden=20,
         dec_layers=2, dec_heads=5, image=(160, 96), threshold=0.45),
    dict(dim=64, depth=1, heads=4, patch=8, train_size=32, queries=3, dec_hidden=32,
         dec_layers=1, dec_heads=64, image=(32, 200), threshold=0.02),
]


def sweep(binary, threads):
    """Generate the SWEEP cases in a temporary folder, run `alignseg segment
    --dump` on each and print the max abs error per array (margins relaxed to
    2e-6, so a rare label may legitimately differ: see the printed margins)."""
    import subprocess
    import tempfile
    global OUT, MARGIN
    tmp = tempfile.mkdtemp(prefix="alignseg_sweep_")
    OUT, MARGIN = tmp, 2e-6
    worst = 0.0
    for i, c in enumerate(SWEEP):
        h, w = c["image"]
        c = dict(c, layout="alignseg", half=False, opts="--encoder-heads %d --decoder-heads %d "
                 "--long-side %d --threads %d%s" % (
                     c["heads"], c["dec_heads"], max(h, w), threads,
                     "" if c["threshold"] is None else " --threshold %g" % c["threshold"]))
        name = "sweep%d" % i
        make_case(name, c)
        d = os.path.join(tmp, name)
        cmd = [binary, "segment", "-q", "-m", d + "/alignseg.pth"] + c["opts"].split() + \
              ["--dump", "-o", d + "/out", d + "/input.png"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode:
            print(name, "alignseg exit %d: %s" % (r.returncode, r.stderr.strip()))
            worst = float("inf")
            continue
        errs = []
        for k in ("tokens", "cls_token", "cls_attn", "cls_attn_mean", "queries", "similarity",
                  "assign", "fg_mask", "labels_patch", "labels_full"):
            a = np.load(os.path.join(d, k + ".npy"))
            b = np.load(os.path.join(d, "out", "input", k + ".npy"))
            e = float("inf") if a.shape != b.shape else float(np.abs(a.astype(np.float64) - b).max())
            worst = max(worst, e if not k.startswith(("labels", "fg")) else (e and float("inf")))
            errs.append("%s=%.2g" % (k, e))
        print(name, " ".join(errs))
    shutil.rmtree(tmp)
    print("sweep: %s" % ("all arrays within 1e-4, masks/labels exact" if worst <= 1e-4
                         else "MISMATCH (worst %g)" % worst))
    return 0 if worst <= 1e-4 else 1


def main():
    torch.set_num_threads(1)
    if "--sweep" in sys.argv:
        i = sys.argv.index("--sweep")
        threads = int(sys.argv[i + 2]) if len(sys.argv) > i + 2 else 1
        return sweep(sys.argv[i + 1], threads)
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    for name, c in CASES.items():
        if only and name not in only:
            continue
        make_case(name, c)
        if "--check-bench" in sys.argv:
            check_bench(name, c)


if __name__ == "__main__":
    sys.exit(main())
