"""emoclip from Python in five steps: load a model, embed videos and an image, score them zero-shot, analyse a
video window by window, and plot its emotion timeline.

    python examples/quickstart.py --weights emotionclip.pt            # the released EmotionCLIP checkpoint
    python examples/quickstart.py                                     # random weights: runs, means nothing

Needs `pip install ./crates/emoclip-py` (and numpy); matplotlib for the plot, pandas for the table (both optional).
CI runs it on tiny random weights (crates/emoclip-py/tests/test_quickstart.py).
"""
import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

import emoclip

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=os.environ.get("EMOCLIP_WEIGHTS", "random"), help="checkpoint or spec")
    ap.add_argument("--config", default=None, help="model config JSON (optional)")
    ap.add_argument("--media", default=str(ROOT / "media"), help="folder with the sample videos and person.jpg")
    ap.add_argument("--out", default=str(ROOT / "out" / "quickstart"), help="where the plot goes")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    # 1. Load. Random weights warn (emoclip.EmoclipWarning): the numbers below then mean nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emoclip.EmoclipWarning)
        model = emoclip.Model.load(args.weights, config=args.config, threads=args.threads)
    print(model, f"embed_dim={model.embed_dim} logit_scale={model.logit_scale:.2f}")

    media = Path(args.media)
    videos = sorted(p for p in media.iterdir() if p.suffix.lower() in (".avi", ".mp4") and "bugy" not in p.name)
    image = media / "person.jpg"
    if not videos:
        print(f"no sample videos in {media}: run scripts/fetch_media.sh", file=sys.stderr)
        return 1

    # 2. Embed: float32 [N, D], one L2-normalised row per input; Ctrl-C stops a long call.
    v = model.encode_videos(videos, progress=True)
    print(f"videos {v.shape} {v.dtype}")
    if image.exists():
        print(f"image  {model.encode_images([image]).shape}")
    t = model.encode_text(["a person who is happy", "a person who is angry"])
    print(f"text   {t.shape}; cosine(video 0, texts) = {np.round(v[0] @ t.T, 3)}")

    # 3. Zero-shot: the built-in 7 basic emotions, ensembled over templates.
    z = model.zero_shot(v, "basic")
    for name, label, p in zip(videos, z.top(), z.probs.max(axis=1)):
        print(f"  {name.name:28s} {label:9s} {p:.1%}")
    try:
        print(z.to_pandas().round(3).to_string())
    except ImportError:
        pass

    # 4. Analyse one video window by window (4 s windows every 2 s): scores per window and person.
    if hasattr(emoclip, "analyze"):
        a = emoclip.analyze(model, videos[0], window=4.0, stride=2.0, prompts="basic", progress=True)
        print(f"analysis of {videos[0].name} ({a.duration:.0f} s): {len(a)} rows, columns {a.columns[:3]}...")
        scene = a.subject < 0  # the scene rows (persons too when a detector or boxes are given)
        times = 0.5 * (a.t_start + a.t_end)[scene]
        labels, probs = a.sources["basic"], a.scores["basic"][scene]
    else:
        print("emoclip.analyze is not available in this build; plotting the per-video scores instead")
        times, labels, probs = np.arange(len(videos), dtype=np.float32), z.labels, z.probs

    # 5. Plot the timeline (matplotlib optional).
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3))
    for j, lab in enumerate(labels):
        ax.plot(times, probs[:, j], marker="o", label=lab)
    ax.set_xlabel("time (s)" if hasattr(emoclip, "analyze") else "video")
    ax.set_ylabel("probability")
    ax.legend(fontsize="small", ncol=4)
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=100)
    print(f"wrote {out / 'timeline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
