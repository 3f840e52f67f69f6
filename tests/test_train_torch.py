#!/usr/bin/python3
"""Checkpoints written by `alignseg train` must load with PyTorch: torch.load,
the published key names and shapes (load_state_dict(strict=True) into a
decoder module built with the published attribute names), the frozen encoder
unchanged, and an AdamW optimizer with the published parameter groups that
accepts the saved optimizer state. Also: unreadable images are reported by
name and skipped. Skips (exit 77) when torch, numpy or PIL are missing."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    from PIL import Image
except Exception as e:  # noqa: BLE001
    print("skipping: %s" % e)
    sys.exit(77)

DATA = os.environ.get("ALIGNSEG_TESTDATA", "tests/data")
BIN = os.environ.get("ALIGNSEG_BIN", "build/app/alignseg")
BEFORE = os.path.join(DATA, "reference/train_tiny/alignseg_before.pth")
Q, H = 4, 96
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what)


class Cross(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.norm = nn.LayerNorm(d)


class Self(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.norm = nn.LayerNorm(d)


class FFN(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.linear1 = nn.Linear(d, hidden)
        self.linear2 = nn.Linear(hidden, d)
        self.norm = nn.LayerNorm(d)


class Decoder(nn.Module):
    """Attribute names of the published AlignSegmentor's decoder part."""

    def __init__(self, d, q, hidden, heads=3, layers=1):
        super().__init__()
        self.clsQueries = nn.Embedding(q, d)
        self.decoder_cross_attention_layers = nn.ModuleList(Cross(d, heads) for _ in range(layers))
        self.decoder_self_attention_layers = nn.ModuleList(Self(d, heads) for _ in range(layers))
        self.decoder_ffn_layers = nn.ModuleList(FFN(d, hidden) for _ in range(layers))


def published_groups(named, wd, lr):
    """The published training's three AdamW parameter groups."""
    params, excluded, queries = [], [], []
    for name, p in named:
        if name.endswith(".bias") or len(p.shape) == 1:
            excluded.append(p)
        elif "clsQueries" in name:
            queries.append(p)
        else:
            params.append(p)
    return [{"params": params, "weight_decay": wd, "lr": lr},
            {"params": excluded, "weight_decay": 0.0, "lr": lr},
            {"params": queries, "weight_decay": 0.0, "lr": lr}]


def main(tmp):
    imgs = os.path.join(tmp, "images")
    run = os.path.join(tmp, "run")
    os.makedirs(imgs)
    rng = np.random.default_rng(1)
    for i in range(5):
        w, h = int(rng.integers(70, 160)), int(rng.integers(70, 160))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a[h // 4:h // 2, w // 3:w // 2] = (250, 20, 20)
        Image.fromarray(a).save(os.path.join(imgs, "im%d.%s" % (i, "png" if i % 2 else "jpg")))
    with open(os.path.join(imgs, "zz_broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nnot really")
    cmd = [BIN, "train", "-b", BEFORE, "--encoder-heads", "3", "--images", imgs, "-o", run,
           "--batch", "2", "--epochs", "2", "--crop-size", "64", "--queries", str(Q),
           "--hidden", str(H), "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(r.stderr)
    check(r.returncode == 0, "alignseg train exit status %d" % r.returncode)
    check("zz_broken.png" in r.stderr and "skipping" in r.stderr, "broken image not reported")

    ck = torch.load(os.path.join(run, "epoch2.pth"), map_location="cpu")
    check(set(ck.keys()) >= {"epoch", "net", "state_dict", "optimizer"}, "top-level keys")
    check(ck["epoch"] == 2, "epoch field %r" % ck.get("epoch"))
    sd = ck["state_dict"]
    before = torch.load(BEFORE, map_location="cpu")["state_dict"]
    enc = [k for k in before if k.startswith("backbone.")]
    check([k for k in sd if k.startswith("backbone.")] == enc, "encoder keys / order")
    for k in enc:
        check(k in sd and sd[k].shape == before[k].shape and torch.equal(sd[k], before[k]),
              "frozen encoder tensor %s changed" % k)
    d = before["clsQueries.weight"].shape[1]
    dec = Decoder(d, Q, H)
    dec_sd = {k: v for k, v in sd.items() if not k.startswith("backbone.")}
    check(list(dec_sd.keys()) == list(dec.state_dict().keys()), "decoder key order")
    try:
        dec.load_state_dict(dec_sd, strict=True)
    except Exception as e:  # noqa: BLE001
        check(False, "load_state_dict(strict=True): %s" % e)
    named = list(dec.named_parameters())
    opt = torch.optim.AdamW(published_groups(named, 0.04, 5e-4), weight_decay=0.04)
    try:
        opt.load_state_dict(ck["optimizer"])
    except Exception as e:  # noqa: BLE001
        check(False, "AdamW.load_state_dict: %s" % e)
    with open(os.path.join(run, "train_log.csv")) as f:
        rows = f.read().strip().splitlines()[1:]
    check(len(rows) == 6, "6 steps logged (got %d)" % len(rows))
    st = ck["optimizer"]["state"]
    check(len(st) == len(named), "optimizer state for every parameter")
    for i, s in st.items():
        check(float(s["step"]) == len(rows), "step count of state %d" % i)
    groups = ck["optimizer"]["param_groups"]
    check([g["weight_decay"] for g in groups] == [0.04, 0.0, 0.0], "group weight decays")
    check(all(abs(g["initial_lr"] - 5e-4) < 1e-12 for g in groups), "initial_lr")
    # the moments are those of the stored parameters, in the optimizer's order
    order = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(order):
        check(st[i]["exp_avg"].shape == p.shape, "exp_avg shape of state %d" % i)
    # --resume continues exactly: stop after 2 steps, resume twice, compare
    run2 = os.path.join(tmp, "run2")
    r = subprocess.run(cmd[:cmd.index("-o") + 1] + [run2] + cmd[cmd.index("-o") + 2:] +
                       ["--max-steps", "2"], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0 and os.path.exists(os.path.join(run2, "interrupted.pth")),
          "--max-steps run: %s" % r.stderr)
    for extra in (["--max-steps", "2"], []):
        r = subprocess.run([BIN, "train", "--resume", os.path.join(run2, "interrupted.pth"),
                            "--images", imgs, "-o", run2, "--threads", "1"] + extra,
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, "resume: %s" % r.stderr)
    ck2 = torch.load(os.path.join(run2, "epoch2.pth"), map_location="cpu")
    for k, v in sd.items():
        check(k in ck2["state_dict"] and torch.equal(v, ck2["state_dict"][k]),
              "resumed run differs in %s" % k)
    for i, s1 in st.items():
        s2 = ck2["optimizer"]["state"].get(i)
        check(s2 is not None and torch.equal(s1["exp_avg"], s2["exp_avg"]) and
              torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"]) and
              float(s1["step"]) == float(s2["step"]), "resumed optimizer state %d differs" % i)
    check(not os.path.exists(os.path.join(run2, "interrupted.pth")),
          "interrupted.pth left after the run finished")
    with open(os.path.join(run2, "train_log.csv")) as f:
        rows2 = f.read().strip().splitlines()[1:]
    cut = [",".join(x.split(",")[:7]) for x in rows]
    cut2 = [",".join(x.split(",")[:7]) for x in rows2]
    check(cut == cut2, "resumed run logged other losses:\n%s\nvs\n%s" % (cut, cut2))

    if failures:
        print("%d failures" % len(failures))
        return 1
    print("train checkpoints load in PyTorch %s: ok" % torch.__version__)
    return 0


if __name__ == "__main__":
    import shutil
    TMP = tempfile.mkdtemp(prefix="alignseg_train_torch_")
    try:
        rc = main(TMP)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
