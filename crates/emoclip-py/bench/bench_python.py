#!/usr/bin/env python3
"""Benchmark of the emoclip Python package (a script, not a test): run by crates/emoclip-py/bench/run_bench.sh,
which builds the release extension + CLI and runs this with .venv-fixtures' Python (torch, open_clip).

A. Per-call overhead of the binding: an empty call (worker thread + channel + GIL release/re-acquire).
B. Python against the CLI on the sample videos, full-size EmotionCLIP (ViT-B/32 + temporal head, random
   weights `random@0`): `emoclip embed` wall time per run (process start, model init, decode, encode, write)
   against `Model.load` once + `encode_videos` per call; the embeddings are compared bit for bit.
C. `encode_frames` from NumPy against PyTorch in the same process, on the same uint8 frames (8 per clip,
   sampled as emoclip samples them): the project's reference EmotionCLIP (scripts/fixtures/emoclip_ref.py,
   open_clip backbone) loaded with the SAME weights (exported to a .pt that emoclip loads), and plain open_clip
   ViT-B-32 against emoclip's `model="clip"`; fp32 and bf16 (torch: autocast and `.bfloat16()`, the faster
   reported). PyTorch times include its preprocessing (PIL bicubic resize, centre crop, normalise: the
   official pipeline) and are also given model-only.

Prints a Markdown table and one JSON line.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def timeit(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def read_frames(video: Path, n: int, tmp: Path):
    """The first n frames of a video as uint8 [n, H, W, 3] (ffmpeg CLI → BMP → PIL)."""
    import numpy as np
    from PIL import Image

    d = tmp / video.stem
    d.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-frames:v", str(n), str(d / "%04d.bmp")], check=True)
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(d.glob("*.bmp"))])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cli", required=True, help="the release emoclip binary")
    ap.add_argument("--frames-per-video", type=int, default=32, help="frames of each clip handed to encode_frames")
    args = ap.parse_args()
    # as `emoclip --threads N`: rayon and candle read this
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch

    import emoclip

    torch.set_num_threads(args.threads)
    import warnings

    warnings.simplefilter("ignore", emoclip.EmoclipWarning)
    videos = [ROOT / "media" / v for v in ("vtest.avi", "Megamind.avi", "carphone_pristine.mp4")]
    res = {"threads": args.threads, "torch": torch.__version__, "emoclip": emoclip.__version__}
    rows = []

    # A. per-call overhead
    micro = emoclip.Model.load("random@7", config=ROOT / "fixtures" / "cli" / "micro_random.json")
    empty = timeit(lambda: micro.encode_videos([]), 20, 200)
    res["empty_call_us"] = round(empty * 1e6, 1)
    rows.append(("A", "empty encode_videos([]) call (thread + channel + GIL)", f"{empty * 1e6:.0f} µs", ""))

    # B. Python vs CLI on the sample videos, full size
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "cli.npy"
        cmd = [args.cli, "--threads", str(args.threads), "embed", *map(str, videos), "--weights", "random@0",
               "--out", str(out)]
        cli_s = timeit(lambda: subprocess.run(cmd, check=True, capture_output=True), args.warmup, args.iters)
        cli_emb = np.load(out)
    t0 = time.perf_counter()
    model = emoclip.Model.load("random@0", threads=args.threads)
    load_s = time.perf_counter() - t0
    py_s = timeit(lambda: model.encode_videos(videos), args.warmup, args.iters)
    same = bool(np.array_equal(model.encode_videos(videos).view(np.uint32), cli_emb.view(np.uint32)))
    res.update(cli_embed_s=round(cli_s, 3), py_load_s=round(load_s, 3), py_encode_videos_s=round(py_s, 3),
               py_equals_cli=same)
    rows.append(("B", "`emoclip embed` 3 sample videos (process + init + decode + encode + write)", f"{cli_s:.2f} s", ""))
    rows.append(("B", "`Model.load('random@0')` (once)", f"{load_s:.2f} s", ""))
    rows.append(("B", "`model.encode_videos(3 videos)` per call", f"{py_s:.2f} s",
                 f"bit-identical to the CLI: {same}"))

    # C. encode_frames vs PyTorch on the same frames
    sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
    import emoclip_ref as ref
    import open_clip
    from PIL import Image
    from torchvision import transforms as T

    with tempfile.TemporaryDirectory() as td:
        clips = [read_frames(v, args.frames_per_video, Path(td)) for v in videos]
        ref_model = ref.EmotionCLIP(ref.VIT_B_32_CFG, variant="sap", temporal_fusion="transformer",
                                    head=ref.FULL_HEAD).float().eval()
        ck = Path(td) / "ref.pt"
        torch.save(ref_model.state_dict(), ck)
        models = {"f32": emoclip.Model.load(ck, threads=args.threads),
                  "bf16": emoclip.Model.load(ck, threads=args.threads, dtype="bf16")}
    idx = [np.linspace(0, len(c) - 1, 8, dtype=int) for c in clips]
    pre = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                     T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def torch_pre():
        return torch.stack([torch.stack([pre(Image.fromarray(c[i])) for i in ix]) for c, ix in zip(clips, idx)])

    video = torch_pre()
    mask = torch.zeros(video.shape[0], 8, 224, 224)
    # same weights, same frames: how far apart are the two implementations?
    with torch.inference_mode():
        want = torch.nn.functional.normalize(ref_model.encode_video(video, mask), dim=-1).numpy()
    got = models["f32"].encode_frames(clips, batch_size=len(clips))
    res["max_abs_diff_vs_reference"] = float(np.abs(got - want).max())
    rows.append(("C", "emoclip vs reference embeddings (same weights, same uint8 frames)",
                 f"max abs diff {res['max_abs_diff_vs_reference']:.1e}", ""))

    def bf16_variants(m, fn):
        """(seconds, how): the faster of autocast and .bfloat16()."""
        out = {}
        m16 = copy.deepcopy(m).bfloat16()
        for how, mm, ctx, cast in (("autocast", m, lambda: torch.autocast("cpu", dtype=torch.bfloat16), lambda x: x),
                                   ("bfloat16", m16, contextlib.nullcontext, lambda x: x.bfloat16())):
            with ctx():
                out[how] = fn(mm, cast)
        how = min(out, key=out.get)
        return out[how], how

    n = len(clips)
    with torch.inference_mode():
        ref_f32 = timeit(lambda: ref_model.encode_video(torch_pre(), mask), args.warmup, args.iters)
        ref_f32_model = timeit(lambda: ref_model.encode_video(video, mask), args.warmup, args.iters)
        ref_bf16, ref_how = bf16_variants(
            ref_model, lambda m, c: timeit(lambda: m.encode_video(c(torch_pre()), c(mask)), args.warmup, args.iters))
        ref_bf16_model, ref_how_m = bf16_variants(
            ref_model, lambda m, c: timeit(lambda: m.encode_video(c(video), c(mask)), args.warmup, args.iters))
    ec = {k: timeit(lambda m=m: m.encode_frames(clips, batch_size=n), args.warmup, args.iters)
          for k, m in models.items()}
    res.update(ec_frames_f32_s=round(ec["f32"], 3), ec_frames_bf16_s=round(ec["bf16"], 3),
               ref_f32_s=round(ref_f32, 3), ref_f32_model_s=round(ref_f32_model, 3),
               ref_bf16_s=round(ref_bf16, 3), ref_bf16_how=ref_how, ref_bf16_model_s=round(ref_bf16_model, 3))
    rows += [
        ("C", f"EmotionCLIP, {n} clips × 8 frames, fp32: emoclip `encode_frames` (incl. preprocessing)",
         f"{ec['f32']:.2f} s", ""),
        ("C", "… PyTorch reference, preprocessing + model / model only", f"{ref_f32:.2f} s / {ref_f32_model:.2f} s",
         f"emoclip {ref_f32 / ec['f32']:.2f}× the reference's speed"),
        ("C", "EmotionCLIP bf16: emoclip `dtype='bf16'`", f"{ec['bf16']:.2f} s", ""),
        ("C", f"… PyTorch reference bf16 ({ref_how}), preprocessing + model / model only",
         f"{ref_bf16:.2f} s / {ref_bf16_model:.2f} s", f"emoclip {ref_bf16 / ec['bf16']:.2f}×"),
    ]

    # open_clip ViT-B-32 (plain CLIP, frame features averaged) vs emoclip model="clip"
    oc = open_clip.create_model("ViT-B-32").eval()
    with tempfile.TemporaryDirectory() as td:
        ck = Path(td) / "oc.pt"
        torch.save(oc.state_dict(), ck)
        clip_models = {"f32": emoclip.Model.load(ck, model="clip", threads=args.threads),
                       "bf16": emoclip.Model.load(ck, model="clip", threads=args.threads, dtype="bf16")}

    def oc_video(m, v):
        b = v.shape[0]
        return m.encode_image(v.reshape(b * 8, 3, 224, 224)).reshape(b, 8, -1).mean(1)

    with torch.inference_mode():
        oc_f32 = timeit(lambda: oc_video(oc, torch_pre()), args.warmup, args.iters)
        oc_bf16, oc_how = bf16_variants(
            oc, lambda m, c: timeit(lambda: oc_video(m, c(torch_pre())), args.warmup, args.iters))
    ecc = {k: timeit(lambda m=m: m.encode_frames(clips, batch_size=n), args.warmup, args.iters)
           for k, m in clip_models.items()}
    res.update(ec_clip_f32_s=round(ecc["f32"], 3), ec_clip_bf16_s=round(ecc["bf16"], 3),
               open_clip_f32_s=round(oc_f32, 3), open_clip_bf16_s=round(oc_bf16, 3), open_clip_bf16_how=oc_how)
    rows += [
        ("C", f"plain CLIP ViT-B-32, {n} clips × 8 frames, fp32: emoclip `model='clip'` / open_clip",
         f"{ecc['f32']:.2f} s / {oc_f32:.2f} s", f"emoclip {oc_f32 / ecc['f32']:.2f}×"),
        ("C", f"… bf16: emoclip / open_clip ({oc_how})", f"{ecc['bf16']:.2f} s / {oc_bf16:.2f} s",
         f"emoclip {oc_bf16 / ecc['bf16']:.2f}×"),
    ]

    print(f"\n{args.threads} threads, median of {args.iters} (after {args.warmup} warm-up), torch {torch.__version__}\n")
    print("| | what | time | note |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
