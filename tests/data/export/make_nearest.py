#!/usr/bin/python3
"""Expected nearest-neighbour resizes for tests/test_eval.c, made with Debian's
python3-pil (Image.resize(NEAREST), as torchvision's Resize(NEAREST) on PIL
images) and python3-torch (F.interpolate(mode='nearest')). Run from this folder:
    /usr/bin/python3 make_nearest.py"""
import numpy as np
from PIL import Image

rng = np.random.default_rng(7)
src = rng.integers(0, 256, (23, 37), dtype=np.uint8)  # (h, w)
np.save("nearest_src_23x37.npy", src)
for (w, h) in [(100, 100), (41, 29), (113, 57), (16, 9)]:
    out = np.array(Image.fromarray(src, mode="L").resize((w, h), Image.NEAREST))
    np.save(f"nearest_pil_{h}x{w}.npy", out)
try:
    import torch
    import torch.nn.functional as F
    for (w, h) in [(100, 100), (41, 29)]:
        t = torch.from_numpy(src.astype(np.float32))[None, None]
        out = F.interpolate(t, size=(h, w), mode="nearest")[0, 0].numpy().astype(np.uint8)
        np.save(f"nearest_torch_{h}x{w}.npy", out)
    # patch grid 28x28 -> 100x100 as the reference evaluation
    g = rng.integers(0, 5, (28, 28), dtype=np.uint8)
    np.save("nearest_grid_28x28.npy", g)
    t = torch.from_numpy(g.astype(np.float32))[None, None]
    np.save("nearest_torch_grid_100x100.npy",
            F.interpolate(t, size=(100, 100), mode="nearest")[0, 0].numpy().astype(np.uint8))
except ImportError:
    print("python3-torch missing: torch files not made")
