#!/usr/bin/env python3
"""Time the full-size EmotionCLIP (official architecture, SAP frame encoder)
in PyTorch on CPU, fp32 (and with --dtype bf16 also in bf16), random weights.

bf16 is timed two ways, the ways a PyTorch user gets it in one line: a bf16
copy of the model (`model.bfloat16()`, bf16 weights and activations) and
`torch.autocast("cpu", dtype=torch.bfloat16)` (fp32 weights, bf16 matrix
products); each figure reports the faster of the two and names it.

Model: open_clip ViT-B-32 backbone (embed 512; vision 224/32, width 768,
12 layers, head width 64; text width 512, 8 heads, 12 layers; GELU) +
transformer temporal head (d 512, 8 heads, ff 2048, 6 layers), 8-frame clips.
The model code is shared with the fixture generator
(scripts/fixtures/emoclip_ref.py).

Prints one JSON line:
  {"impl":"pytorch","threads":N,"s_per_clip":..,"clips_per_s_batch":..,"batch":..,"torch":".."}
(+ "text_s_per_batch8" with --text; with --dtype bf16 also "bf16_s_per_clip",
"bf16_clips_per_s_batch", "bf16_text_s_per_batch8", each with its "_how"
("bfloat16" or "autocast"), and the per-variant figures under "bf16_variants", with
each variant's smallest per-clip cosine similarity to fp32 on the batch, "min_cosine_vs_fp32").

Example: python bench/pytorch_emotionclip.py --threads 2 --batch 4 --iters 5
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import emoclip_ref as ref  # noqa: E402


def make_clip_batch(b: int, gen: torch.Generator):
    video = torch.randn(b, ref.VIDEO_LEN, 3, 224, 224, generator=gen)
    mask = torch.zeros(b, ref.VIDEO_LEN, 224, 224)
    for i in range(b):
        for t in range(ref.VIDEO_LEN):
            r0, c0 = 20 + 6 * t, 30 + 4 * t + 3 * i
            mask[i, t, r0:r0 + 120, c0:c0 + 80] = 1.0
    return video, mask


def make_text(n: int, gen: torch.Generator):
    text = torch.zeros(n, 77, dtype=torch.long)
    for i in range(n):
        k = 5 + 2 * i
        text[i, 0] = 49406
        text[i, 1:1 + k] = torch.randint(1, 49406, (k,), generator=gen)
        text[i, 1 + k] = 49407
    return text


def timeit(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--text", action="store_true", help="also time encode_text of 8 prompts")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: also time model.bfloat16() and torch.autocast bf16 (fp32 is always timed)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    model = ref.EmotionCLIP(ref.VIT_B_32_CFG, variant="sap", temporal_fusion="transformer",
                            head=ref.FULL_HEAD).float().eval()

    v1, m1 = make_clip_batch(1, gen)
    vb, mb = make_clip_batch(args.batch, gen)
    result = {"impl": "pytorch", "threads": args.threads}
    with torch.inference_mode():
        s1 = timeit(lambda: model.encode_video(v1, m1), args.warmup, args.iters)
        sb = timeit(lambda: model.encode_video(vb, mb), args.warmup, args.iters)
        result.update({
            "s_per_clip": round(s1, 4),
            "clips_per_s_batch": round(args.batch / sb, 3),
            "batch": args.batch,
        })
        if args.text:
            text = make_text(8, gen)
            st = timeit(lambda: model.encode_text(text), args.warmup, args.iters)
            result["text_s_per_batch8"] = round(st, 4)
        if args.dtype == "bf16":
            text = make_text(8, gen) if args.text else None
            variants = {}
            model16 = copy.deepcopy(model).bfloat16()
            for how in ("bfloat16", "autocast"):
                if how == "bfloat16":
                    m, cast, ctx = model16, (lambda x: x.bfloat16()), contextlib.nullcontext
                else:
                    m, cast, ctx = model, (lambda x: x), (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
                a1, am1, ab, amb = cast(v1), cast(m1), cast(vb), cast(mb)
                with ctx():
                    r = {
                        "s_per_clip": timeit(lambda: m.encode_video(a1, am1), args.warmup, args.iters),
                        "clips_per_s_batch": args.batch / timeit(lambda: m.encode_video(ab, amb), args.warmup,
                                                                 args.iters),
                    }
                    if text is not None:
                        r["text_s_per_batch8"] = timeit(lambda: m.encode_text(text), args.warmup, args.iters)
                    # accuracy cost, for scale beside emoclip's (tests/it/bf16_model.rs): per-clip cosine to fp32
                    got = m.encode_video(ab, amb).float()
                variants[how] = {k: round(x, 4) for k, x in r.items()}
                want = model.encode_video(vb, mb)
                variants[how]["min_cosine_vs_fp32"] = round(
                    torch.nn.functional.cosine_similarity(got, want, dim=-1).min().item(), 6)
            for key, better in (("s_per_clip", min), ("clips_per_s_batch", max), ("text_s_per_batch8", min)):
                if key in variants["bfloat16"]:
                    how = better(variants, key=lambda h: variants[h][key])
                    result["bf16_" + key] = variants[how][key]
                    result["bf16_" + key + "_how"] = how
            result["bf16_variants"] = variants
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
