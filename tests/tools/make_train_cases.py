#!/usr/bin/python3
"""Dev script: regenerate tests/data/train_extra/ (one training step of
AlignSeg, docs/METHOD.md section 5, on configurations other than the reference
fixture tests/data/reference/train_tiny: batch > 1 with other widths,
prototype counts, decoder heads and layers, pairings, negative pressures and
3 local crops).

Run from the repository root with Debian's python (python3-torch 1.13, numpy):
    /usr/bin/python3 tests/tools/make_train_cases.py            # check + write
    /usr/bin/python3 tests/tools/make_train_cases.py --check     # train_tiny only

Ground truth is an independent PyTorch implementation of one step:
  - encoder (frozen): bench/torch_alignseg.py's DINO ViT forward (METHOD.md 2) with
    the head count set by hand; foreground masks per METHOD.md 4.6 (t = 0.6):
    blurred mean CLS attention, sorted cumulative mass, components <= 2 dropped;
  - decoder: torch.nn.MultiheadAttention (sequence-first, dropout 0), post-norm
    nn.LayerNorm (eps 1e-5), nn.Linear FFN with ReLU, Q0 fed to every layer,
    the last layer's result kept;
  - losses (METHOD.md 5): correlation alignment with the batch-centred target C
    (no gradient) on foreground pairs, prototype cross-entropy over the 2Q-1
    off-diagonal similarities, both averaged over the local crops; the
    reference (crop-major) or same-image pairing;
  - gradients by autograd; torch.optim.AdamW (lr 5e-4, betas (0.9, 0.999),
    eps 1e-8) with weight decay 0.04 on the weight matrices and 0 on biases,
    1-D parameters and the prototypes.
The script first reproduces train_tiny (losses, prototypes, masks, gradients,
AdamW weights) from its alignseg_before.pth and crops and stops if it does not.
Random cases reject seeds whose foreground mass crossing is closer than 1e-4
to the threshold (a mask would then depend on rounding).

Files per case (tests/data/train_extra/<name>/): alignseg_before.pth
({"epoch", "net", "state_dict"}), crop{c}.npy (B,3,S,S), case.json (options of
`alignseg train-step`, losses), fg_masks.npy ((nc*B, gh, gw), crop-major),
queries_crop{c}.npy (B,Q,D) in pairing order, grad.<param>.npy for every
parameter that receives a gradient and after.<param>.npy with its value after
the AdamW step (parameters without a gradient, e.g. all but the last decoder
layer, must keep their alignseg_before.pth values).
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_alignseg as ta  # noqa: E402  (encoder, METHOD.md 2; foreground, METHOD.md 4.6)

OUT = os.path.join(ROOT, "tests", "data", "train_extra")
TINY = os.path.join(ROOT, "tests", "data", "reference", "train_tiny")
LR, WD, BETAS, EPS = 5e-4, 0.04, (0.9, 0.999), 1e-8
MASS = 0.6
MARGIN = 1e-4

# name: configuration. crop = crop side S; train_size sets the pos_embed grid
# (a different grid exercises the bicubic resize). dec_heads must divide dim.
CASES = {
    # batch 3, 4 encoder heads of 16, 7 prototypes, FFN 80, 4 decoder heads
    "b3_d64_q7": dict(batch=3, dim=64, depth=1, heads=4, patch=8, train_size=32, crop=32,
                      queries=7, dec_hidden=80, dec_layers=1, dec_heads=4, local=2,
                      pairing="reference", negative_pressure=0.11, seed=1),
    # batch 2, narrow, 2 decoder layers (only the last one learns), same-image
    # pairing, negative pressure 0.10, 40x40 crops on a 4x4 training grid
    "b2_d32_2layers_same": dict(batch=2, dim=32, depth=2, heads=2, patch=8, train_size=32,
                                crop=40, queries=3, dec_hidden=48, dec_layers=2, dec_heads=8,
                                local=2, pairing="same-image", negative_pressure=0.10, seed=2),
    # batch 4, 2 prototypes, 3 local crops (reference pairing is then a real shuffle)
    "b4_q2_3local": dict(batch=4, dim=32, depth=1, heads=4, patch=8, train_size=32, crop=32,
                         queries=2, dec_hidden=64, dec_layers=1, dec_heads=2, local=3,
                         pairing="reference", negative_pressure=0.11, seed=3),
}


# ---------------------------------------------------------------- decoder
class AttnLayer(nn.Module):
    def __init__(self, dim, heads, attr):
        super().__init__()
        self.attr = attr
        setattr(self, attr, nn.MultiheadAttention(dim, heads, dropout=0.0))
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x, q, kv):
        a = getattr(self, self.attr)(q, kv, kv, need_weights=False)[0]
        return self.norm(x + a)


class FFNLayer(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x):
        return self.norm(x + self.linear2(torch.relu(self.linear1(x))))


class Decoder(nn.Module):
    """METHOD.md 3, parameter names as the AlignSeg checkpoints."""

    def __init__(self, dim, hidden, queries, layers, heads):
        super().__init__()
        self.clsQueries = nn.Embedding(queries, dim)
        self.decoder_cross_attention_layers = nn.ModuleList(
            [AttnLayer(dim, heads, "multihead_attn") for _ in range(layers)])
        self.decoder_self_attention_layers = nn.ModuleList(
            [AttnLayer(dim, heads, "self_attn") for _ in range(layers)])
        self.decoder_ffn_layers = nn.ModuleList([FFNLayer(dim, hidden) for _ in range(layers)])

    def forward(self, tokens):
        """tokens (B,N,D) -> adapted prototypes (B,Q,D)."""
        b = tokens.shape[0]
        q0 = self.clsQueries.weight.unsqueeze(1).expand(-1, b, -1)  # (Q,B,D)
        mem = tokens.transpose(0, 1)  # (N,B,D)
        out = None
        for c, s, f in zip(self.decoder_cross_attention_layers,
                           self.decoder_self_attention_layers, self.decoder_ffn_layers):
            t = c(q0, q0, mem)
            t = s(t, t, t)
            out = f(t)
        return out.transpose(0, 1)


def decoder_sizes(sd):
    d = sd["clsQueries.weight"].shape[1]
    q = sd["clsQueries.weight"].shape[0]
    h = sd["decoder_ffn_layers.0.linear1.weight"].shape[0]
    lay = 0
    while "decoder_ffn_layers.%d.linear1.weight" % lay in sd:
        lay += 1
    return d, h, q, lay


def param_group(name, p):
    if name.startswith("clsQueries"):
        return 2
    if p.dim() == 1 or name.endswith("bias"):
        return 1
    return 0


# ---------------------------------------------------------------- one step
def foreground(model, attn, gh, gw):
    """METHOD.md 4.6 mask and the distance of the mass crossing to the threshold."""
    cand = model.fg_candidates(attn, gh, gw).numpy()
    a = attn.mean(0).reshape(1, 1, gh, gw)
    k = model.blur
    a = F.conv2d(F.pad(a, (3, 3, 0, 0), mode="reflect"), k.reshape(1, 1, 1, 7))
    a = F.conv2d(F.pad(a, (0, 0, 3, 3), mode="reflect"), k.reshape(1, 1, 7, 1))
    sv = torch.sort(a.reshape(-1))[0]
    cum = torch.cumsum(sv / sv.sum(), 0).double()
    margin = float(torch.min(torch.abs(cum - (1.0 - MASS))))
    return ta.drop_small_components(cand, gh, gw), margin


def pairing_source(pairing, B, nl, b, i):
    if pairing == "same-image":
        return b, i
    k = b * nl + i
    return k % B, k // B  # image, local crop


def one_step(before_path, crops, enc_heads, dec_heads, pairing, npress):
    """crops: list of (B,3,S,S) float32 arrays, global first. Returns a dict."""
    ck = torch.load(before_path, map_location="cpu")
    sd_all = ck["state_dict"]
    state = ta.load_state(before_path)
    enc = ta.AlignSeg(state, dec_heads=dec_heads, mass_threshold=MASS)
    enc.heads = enc_heads
    B, S = crops[0].shape[0], crops[0].shape[2]
    gh = gw = S // enc.patch
    nc, nl = len(crops), len(crops) - 1
    toks = torch.zeros(nc, B, gh * gw, enc.dim)
    fg = np.zeros((nc, B, gh * gw), np.uint8)
    margin = 1.0
    with torch.no_grad():
        for c in range(nc):
            for b in range(B):
                t, attn = enc.encoder(torch.from_numpy(crops[c][b]))
                toks[c, b] = t
                fg[c, b], mg = foreground(enc, attn, gh, gw)
                margin = min(margin, mg)

    dsd = {k: v for k, v in sd_all.items() if not k.startswith("backbone.")}
    D, H, Q, LAY = decoder_sizes(dsd)
    dec = Decoder(D, H, Q, LAY, dec_heads)
    dec.load_state_dict({k: v.float() for k, v in dsd.items()})

    def nrm(x):
        return F.normalize(x, dim=-1, eps=1e-10)

    fgt = torch.from_numpy(fg.astype(np.float32))
    Fg = toks[0]
    P0 = dec(Fg)
    queries = [P0]
    loss_corr = 0.0
    loss_ce = 0.0
    for i in range(nl):
        src = [pairing_source(pairing, B, nl, b, i) for b in range(B)]
        Fi = torch.stack([toks[1 + c, im] for im, c in src])
        Pi = dec(Fi)
        queries.append(Pi)
        with torch.no_grad():
            C = nrm(Fg) @ nrm(Fi).transpose(1, 2)  # (B,n,m)
            m0 = C.mean()
            C = C - C.mean(dim=2, keepdim=True)
            C = C - C.mean() + m0
        Ag = torch.softmax(torch.relu(nrm(Fg) @ nrm(P0).transpose(1, 2)), dim=2)
        Ai = torch.softmax(torch.relu(nrm(Fi) @ nrm(Pi).transpose(1, 2)), dim=2)
        G = Ag @ Ai.transpose(1, 2)
        mask = fgt[0][:, :, None] * fgt[1 + i][:, None, :]  # masks of crop i of image b
        loss_corr = loss_corr + 0.15 * (-(G * (C - npress)) * mask).sum()
        z = torch.cat([nrm(P0), nrm(Pi)], 1)  # (B,2Q,D)
        s = z @ z.transpose(1, 2)  # temperature 1
        eye = torch.eye(2 * Q, dtype=torch.bool)
        logits = s[:, ~eye].reshape(B, 2 * Q, 2 * Q - 1)
        pos = torch.cat([torch.arange(Q, 2 * Q), torch.arange(0, Q)])
        target = torch.where(pos > torch.arange(2 * Q), pos - 1, pos)  # diagonal removed
        ce = F.cross_entropy(logits.reshape(B * 2 * Q, -1), target.repeat(B))
        loss_ce = loss_ce + ce
    loss_corr = loss_corr / nl
    loss_ce = loss_ce / nl
    loss = loss_corr + loss_ce
    loss.backward()

    named = list(dec.named_parameters())
    groups = [[], [], []]
    for n, p in named:
        groups[param_group(n, p)].append(p)
    opt = torch.optim.AdamW([{"params": groups[0], "weight_decay": WD},
                             {"params": groups[1], "weight_decay": 0.0},
                             {"params": groups[2], "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)
    grads = {n: p.grad.detach().clone().numpy() for n, p in named if p.grad is not None}
    opt.step()
    after = {n: p.detach().clone().numpy() for n, p in named}
    return dict(loss=float(loss), loss_query_ce=float(loss_ce), loss_correlation=float(loss_corr),
                queries=[q.detach().numpy() for q in queries], grads=grads, after=after,
                fg=fg.reshape(nc * B, gh, gw), margin=margin, D=D)


# ---------------------------------------------------------------- train_tiny
def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check_tiny():
    case = json.load(open(os.path.join(TINY, "case.json")))
    crops = [np.load(os.path.join(TINY, "crop%d.npy" % c)) for c in range(3)]
    r = one_step(os.path.join(TINY, "alignseg_before.pth"), crops, case["heads"],
                 case["dec_heads"], "reference", case["negative_pressure"])
    ok = True
    for k in ("loss", "loss_query_ce", "loss_correlation"):
        e = abs(r[k] - case[k])
        print("train_tiny %-17s %.7f ref %.7f  err %.2g" % (k, r[k], case[k], e))
        ok &= e <= 1e-4
    fg_ref = np.load(os.path.join(TINY, "fg_masks.npy"))
    e = int(np.sum(fg_ref.reshape(-1) != r["fg"].reshape(-1)))
    print("train_tiny fg mask mismatches %d" % e)
    ok &= e == 0
    for c in range(3):
        e = float(np.max(np.abs(r["queries"][c] - np.load(os.path.join(TINY, "queries_crop%d.npy" % c)))))
        print("train_tiny queries_crop%d err %.2g" % (c, e))
        ok &= e <= 1e-4
    worst = 0.0
    for n in case["trained"]:
        worst = max(worst, rel(r["grads"][n], np.load(os.path.join(TINY, "grad.%s.npy" % n))))
    print("train_tiny worst relative gradient error %.2g" % worst)
    ok &= worst <= 1e-3 and sorted(r["grads"]) == sorted(case["trained"])
    after = torch.load(os.path.join(TINY, "alignseg_after.pth"), map_location="cpu")["state_dict"]
    werr = 0.0
    for n, a in r["after"].items():
        g = r["grads"][n]
        d = np.abs(a - after[n].numpy())
        werr = max(werr, float(np.max(np.where(np.abs(g) > 1e-6, d, 0.0))))
    print("train_tiny weights after AdamW err %.2g (entries with |grad| > 1e-6)" % werr)
    ok &= werr <= 1e-5
    return ok


# ---------------------------------------------------------------- random cases
def random_checkpoint(cfg, gen):
    d, p = cfg["dim"], cfg["patch"]
    grid = cfg["train_size"] // p
    s = {}

    def rn(*shape, scale=1.0, base=0.0):
        return base + scale * torch.randn(*shape, generator=gen)

    def lin(name, out, inp, wscale=1.0):
        s[name + ".weight"] = rn(out, inp, scale=wscale / math.sqrt(inp))
        s[name + ".bias"] = rn(out, scale=0.1)

    def norm(name):
        s[name + ".weight"] = rn(d, scale=0.2, base=1.0)
        s[name + ".bias"] = rn(d, scale=0.1)

    s["backbone.cls_token"] = rn(1, 1, d, scale=0.5)
    s["backbone.pos_embed"] = rn(1, 1 + grid * grid, d, scale=0.5)
    s["backbone.patch_embed.proj.weight"] = rn(d, 3, p, p, scale=1.0 / math.sqrt(3 * p * p))
    s["backbone.patch_embed.proj.bias"] = rn(d, scale=0.1)
    for i in range(cfg["depth"]):
        b = "backbone.blocks.%d." % i
        norm(b + "norm1")
        lin(b + "attn.qkv", 3 * d, d, 2.0)
        lin(b + "attn.proj", d, d)
        norm(b + "norm2")
        lin(b + "mlp.fc1", 4 * d, d)
        lin(b + "mlp.fc2", d, 4 * d)
    norm("backbone.norm")
    s["clsQueries.weight"] = rn(cfg["queries"], d)
    for j in range(cfg["dec_layers"]):
        for kind, sub in (("cross_attention", "multihead_attn"), ("self_attention", "self_attn")):
            pre = "decoder_%s_layers.%d." % (kind, j)
            s[pre + sub + ".in_proj_weight"] = rn(3 * d, d, scale=1.5 / math.sqrt(d))
            s[pre + sub + ".in_proj_bias"] = rn(3 * d, scale=0.1)
            lin(pre + sub + ".out_proj", d, d)
            norm(pre + "norm")
        pre = "decoder_ffn_layers.%d." % j
        lin(pre + "linear1", cfg["dec_hidden"], d)
        lin(pre + "linear2", d, cfg["dec_hidden"])
        norm(pre + "norm")
    return {"epoch": 0, "net": "vit_small", "state_dict": s}


def random_crops(cfg, gen):
    """Smooth random images (a few sinusoids + noise), normalised: the CLS
    attention then has structure and the masks are not all alike."""
    B, S = cfg["batch"], cfg["crop"]
    out = []
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32),
                            torch.arange(S, dtype=torch.float32), indexing="ij")
    for _ in range(1 + cfg["local"]):
        x = torch.zeros(B, 3, S, S)
        for b in range(B):
            for ch in range(3):
                f = torch.rand(4, generator=gen) * 0.4
                ph = torch.rand(2, generator=gen) * 6.28
                x[b, ch] = torch.sin(f[0] * xx + f[1] * yy + ph[0]) + torch.cos(f[2] * xx - f[3] * yy + ph[1])
        x = x + 0.3 * torch.randn(B, 3, S, S, generator=gen)
        out.append(x.numpy().astype(np.float32))
    return out


def options(cfg):
    o = ["--encoder-heads", str(cfg["heads"]), "--decoder-heads", str(cfg["dec_heads"])]
    if cfg["pairing"] != "reference":
        o += ["--pairing", cfg["pairing"]]
    if cfg["negative_pressure"] != 0.11:
        o += ["--negative-pressure", "%g" % cfg["negative_pressure"]]
    return o


def make_case(name, cfg):
    d = os.path.join(OUT, name)
    for attempt in range(50):
        seed = cfg["seed"] * 100 + attempt
        gen = torch.Generator().manual_seed(seed)
        ck = random_checkpoint(cfg, gen)
        crops = random_crops(cfg, gen)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        torch.save(ck, os.path.join(d, "alignseg_before.pth"))
        r = one_step(os.path.join(d, "alignseg_before.pth"), crops, cfg["heads"],
                     cfg["dec_heads"], cfg["pairing"], cfg["negative_pressure"])
        nfg = r["fg"].sum(axis=(1, 2))
        if r["margin"] < MARGIN or nfg.min() == 0 or nfg.max() == r["fg"][0].size:
            print("%s: seed %d rejected (mass margin %.2g, fg %s)" % (name, seed, r["margin"], nfg))
            continue
        break
    else:
        raise SystemExit("%s: no usable seed" % name)
    for c, x in enumerate(crops):
        np.save(os.path.join(d, "crop%d.npy" % c), x)
        np.save(os.path.join(d, "queries_crop%d.npy" % c), r["queries"][c].astype(np.float32))
    np.save(os.path.join(d, "fg_masks.npy"), r["fg"].astype(np.float32))
    for n, g in r["grads"].items():
        np.save(os.path.join(d, "grad.%s.npy" % n), g.astype(np.float32))
    for n in r["grads"]:  # the others stay as in alignseg_before.pth
        np.save(os.path.join(d, "after.%s.npy" % n), r["after"][n].astype(np.float32))
    meta = dict(cfg, seed=seed, options=options(cfg), loss=r["loss"],
                loss_query_ce=r["loss_query_ce"], loss_correlation=r["loss_correlation"],
                trained=sorted(r["grads"]), params=sorted(r["after"]), mass_margin=r["margin"],
                lr=LR, weight_decay=WD)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("%s: seed %d loss %.6f (ce %.6f, corr %.6f), %d trained of %d, fg per crop %s"
          % (name, seed, r["loss"], r["loss_query_ce"], r["loss_correlation"],
             len(r["grads"]), len(r["after"]), nfg.tolist()))


def main():
    torch.set_num_threads(1)
    if not check_tiny():
        raise SystemExit("the PyTorch step does not reproduce train_tiny: nothing written")
    if "--check" in sys.argv:
        return
    os.makedirs(OUT, exist_ok=True)
    for name, cfg in CASES.items():
        make_case(name, cfg)


if __name__ == "__main__":
    main()
