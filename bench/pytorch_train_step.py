#!/usr/bin/env python3
"""Time one full-size EmotionCLIP pre-training step in PyTorch on CPU (fp32, random weights), the
step `emoclip bench --train` times on our side.

Model: the official architecture as in bench/pytorch_emotionclip.py (open_clip ViT-B-32 backbone, SAP
frame encoder, 6-layer transformer temporal head, dropout 0.1, train mode), shared with the fixture
generator (scripts/fixtures/emoclip_ref.py).
Step: encode_video(B clips x 8 frames) + encode_text(B captions), L2 normalisation, SNCE loss (official
ReweightedClipLoss: w = 1/|KL(p_j||p_i)|, 0 on the diagonal, beta 10, same w both directions), backward,
torch.optim.AdamW with the official 7 parameter groups (betas (0.98, 0.9), eps 1e-6; gains/biases
lr 5e-5 wd 0, other weights lr 1e-8 wd 0.1), then the logit-scale clamp to [0, ln 100].
Each phase is timed separately (forward / loss / backward / optimiser); the median of --iters steps
after --warmup steps is reported.

Prints one JSON line:
  {"impl":"pytorch","threads":N,"batch":B,"step_s":..,"forward_s":..,"loss_s":..,"backward_s":..,
   "optimizer_s":..,"cpu_s":..,"sys_s":..,"torch":".."}
(cpu_s: process CPU seconds of the step, user + system, all threads; sys_s: the system part.)

Example: python bench/pytorch_train_step.py --threads 2 --batch 2 --iters 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import emoclip_ref as ref  # noqa: E402
from pytorch_emotionclip import make_clip_batch, make_text  # noqa: E402


def snce(v, t, scale, e, beta=10.0):
    """Official loss_v2.ReweightedClipLoss (gathered features = local ones on one process)."""
    p = e.softmax(-1)
    logp = p.log()
    kl = torch.einsum("jk,ijk->ij", p, logp[None, :, :] - logp[:, None, :])  # KL(p_j || p_i)
    w = 1.0 / kl.abs()
    w.fill_diagonal_(0.0)
    v2t = scale * v @ t.T - beta * w
    t2v = scale * t @ v.T - beta * w
    labels = torch.arange(v.shape[0])
    return (F.cross_entropy(v2t, labels) + F.cross_entropy(t2v, labels)) / 2


def official_groups(model):
    """main.py's seven groups: {visual, text, head} x {gain/bias, rest} + logit_scale."""
    groups = {k: [] for k in ("v_gb", "v_rest", "t_gb", "t_rest", "h_gb", "h_rest", "scale")}
    seen = set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        gb = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        if name.endswith("logit_scale"):
            groups["scale"].append(p)
        elif name.startswith("backbone.visual"):
            groups["v_gb" if gb else "v_rest"].append(p)
        elif name.startswith("backbone"):
            groups["t_gb" if gb else "t_rest"].append(p)
        else:
            groups["h_gb" if gb else "h_rest"].append(p)
    lr = {"gb": 5e-5, "rest": 1e-8}
    out = []
    for k, ps in groups.items():
        kind = "gb" if k.endswith("gb") else "rest"
        if k == "scale":
            out.append({"params": ps, "lr": 1e-8, "weight_decay": 0.0})
        else:
            out.append({"params": ps, "lr": lr[kind], "weight_decay": 0.0 if kind == "gb" else 0.1})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: torch.autocast mixed precision (the official trainer's AMP), fp32 master weights")
    args = ap.parse_args()
    dev = torch.device(args.device)
    amp = args.precision == "bf16"

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = ref.EmotionCLIP(ref.VIT_B_32_CFG, variant="sap", temporal_fusion="transformer",
                            head=ref.FULL_HEAD).float().train().to(dev)
    opt = torch.optim.AdamW(official_groups(model), betas=(0.98, 0.9), eps=1e-6)
    video, mask = make_clip_batch(args.batch, gen)
    text = make_text(args.batch, gen)
    emotion = 2.0 * torch.randn(args.batch, 7, generator=gen)
    video, mask, text, emotion = video.to(dev), mask.to(dev), text.to(dev), emotion.to(dev)

    def step():
        sync()
        c0 = os.times()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            v = F.normalize(model.encode_video(video, mask), dim=-1)
            t = F.normalize(model.encode_text(text), dim=-1)
        sync()
        t1 = time.perf_counter()
        loss = snce(v.float(), t.float(), model.logit_scale.exp(), emotion)
        float(loss)
        t2 = time.perf_counter()
        loss.backward()
        sync()
        t3 = time.perf_counter()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        sync()
        t4 = time.perf_counter()
        c1 = os.times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        return (t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, cpu, c1.system - c0.system)

    for _ in range(args.warmup):
        step()
    runs = [step() for _ in range(max(1, args.iters))]
    med = lambda k: round(statistics.median(r[k] for r in runs), 4)  # noqa: E731
    print(json.dumps({
        "impl": "pytorch", "threads": args.threads, "batch": args.batch,
        "step_s": med(0), "forward_s": med(1), "loss_s": med(2), "backward_s": med(3), "optimizer_s": med(4),
        "cpu_s": med(5), "sys_s": med(6),
        "steps_s": [round(r[0], 4) for r in runs], "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
