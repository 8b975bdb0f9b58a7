#!/usr/bin/env python3
"""How far PyTorch's bf16 EmotionCLIP is from its fp32 (for scale beside emoclip's
tests/it/bf16_model.rs): minimum cosine similarity per row between fp32 and bf16
outputs of encode_video / encode_image / encode_text, bf16 run two ways:
`model.bfloat16()` (bf16 weights and activations) and
`torch.autocast("cpu", dtype=torch.bfloat16)` (fp32 weights, bf16 matrix products).

Models: the committed tiny parity checkpoints (fixtures/models/emotionclip_sap.pt,
emotionclip_saam.safetensors, inputs from io.safetensors), and the full-size
ViT-B/32 EmotionCLIP (SAP) with PyTorch's random initialisation on inputs built
like the Rust test's (smooth images + noise, a subject box, 4 prompts as token ids).
The model code is scripts/fixtures/emoclip_ref.py.

Example: .venv-fixtures/bin/python bench/pytorch_bf16_accuracy.py
Prints one line per output and a JSON summary line.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import emoclip_ref as ref  # noqa: E402


def min_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1).min())


def compare(name: str, model, fn, inputs, out: dict):
    with torch.inference_mode():
        want = fn(model, *inputs)
        m16 = copy.deepcopy(model).bfloat16()
        got16 = fn(m16, *[x.bfloat16() if x.is_floating_point() else x for x in inputs]).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            gota = fn(model, *inputs).float()
    c16, ca = min_cos(got16, want), min_cos(gota, want)
    print(f"{name}: min cosine bfloat16() {c16:.6f}, autocast {ca:.6f}")
    out[name] = {"bfloat16": round(c16, 6), "autocast": round(ca, 6)}


def full_size_inputs():
    s, t, b = 224, ref.VIDEO_LEN, 2
    ys = torch.arange(s, dtype=torch.float32)[:, None]
    xs = torch.arange(s, dtype=torch.float32)[None, :]
    video = torch.zeros(b, t, 3, s, s)
    mask = torch.zeros(b, t, s, s)
    gen = torch.Generator().manual_seed(0)
    for clip in range(b):
        for f in range(t):
            for c in range(3):
                smooth = (torch.sin(xs * 0.05 + c + f * 0.3) + torch.cos(ys * 0.07 - clip)) * 0.8
                video[clip, f, c] = smooth + (torch.rand(s, s, generator=gen) - 0.5) * 0.4
            mask[clip, f, s // 4 + 3 * f:3 * s // 4, s // 3:2 * s // 3 + 2 * clip] = 1.0
    text = torch.zeros(4, 77, dtype=torch.long)
    for i, k in enumerate([6, 8, 1, 3]):
        text[i, 0] = 49406
        text[i, 1:1 + k] = torch.randint(1, 49406, (k,), generator=gen)
        text[i, 1 + k] = 49407
    return video, mask, text


def main():
    torch.manual_seed(0)
    out: dict = {}
    io = load_file(str(ROOT / "fixtures" / "models" / "io.safetensors"))
    for file, variant in (("emotionclip_sap.pt", "sap"), ("emotionclip_saam.safetensors", "saam")):
        m = ref.EmotionCLIP(ref.TINY_OPEN_CLIP_CFG, variant=variant, temporal_fusion="transformer",
                            head=ref.TINY_HEAD).float().eval()
        path = ROOT / "fixtures" / "models" / file
        if file.endswith(".pt"):
            sd = torch.load(path, map_location="cpu", weights_only=False)["model"]
        else:
            sd = load_file(str(path))
        missing, _ = m.load_state_dict(sd, strict=False)
        assert not missing, f"{file}: missing {missing}"
        compare(f"{file} encode_video", m, lambda mm, v, k: mm.encode_video(v, k),
                (io["video"], io["video_mask"]), out)
        compare(f"{file} encode_image", m, lambda mm, v, k: mm.encode_image(v, k),
                (io["image"], io["image_mask"]), out)
        compare(f"{file} encode_text", m, lambda mm, x: mm.encode_text(x), (io["text"],), out)
    m = ref.EmotionCLIP(ref.VIT_B_32_CFG, variant="sap", temporal_fusion="transformer",
                        head=ref.FULL_HEAD).float().eval()
    video, mask, text = full_size_inputs()
    compare("ViT-B/32 encode_video", m, lambda mm, v, k: mm.encode_video(v, k), (video, mask), out)
    frames = video[:, :2].reshape(4, 3, 224, 224)
    fmask = mask[:, :2].reshape(4, 224, 224)
    compare("ViT-B/32 encode_image", m, lambda mm, v, k: mm.encode_image(v, k), (frames, fmask), out)
    compare("ViT-B/32 encode_text", m, lambda mm, x: mm.encode_text(x), (text,), out)
    print(json.dumps({"torch": torch.__version__, "min_cosine": out}))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
