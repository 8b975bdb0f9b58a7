"""Reads the shards `emoclip prepare` wrote with the Python `webdataset` package (what the official-style
training pipelines use) and checks them against emoclip's index: one sample per kept caption, every frame a JPEG that
webdataset's PIL decoder opens at the stored size, the `json` member's numbers equal to the index's.

    python scripts/check_webdataset.py OUT_DIR     (OUT_DIR: the --out of `emoclip prepare`)
"""
import glob
import json
import os
import sys

import webdataset as wds


def main(out):
    shards = sorted(glob.glob(os.path.join(out, "shards", "*.tar")))
    assert shards, f"no shards under {out}/shards"
    kept = {}
    for f in glob.glob(os.path.join(out, "index", "*.jsonl")):
        for line in open(f):
            c = json.loads(line)
            if c["kept"]:
                kept[f"{c['video_id']}_{c['index']:05d}"] = c
    n = 0
    for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode("pil"):
        key = s["__key__"]
        assert key in kept, f"{key}: a sample the index does not keep"
        meta = s["json"]
        c = kept.pop(key)
        assert meta["text"] == c["text"] and meta["emotion_logits"] == c["emotion_logits"], key
        assert abs(meta["neutral"] - c["neutral"]) == 0, key
        frames = sorted(k for k in s if k.startswith("frame") and k.endswith(".jpg"))
        assert len(frames) == len(meta["frame_times"]) == len(meta["boxes"]) == c["n_frames"], key
        for k in frames:
            img = s[k]
            assert img.mode == "RGB" and min(img.size) == 256, (key, k, img.size, img.mode)
        n += 1
    assert not kept, f"kept in the index but not in the shards: {sorted(kept)}"
    assert n > 0, "no samples"
    print(f"webdataset {wds.__version__ if hasattr(wds, '__version__') else ''}: read {n} sample(s) from "
          f"{len(shards)} shard(s), all consistent with the index")


if __name__ == "__main__":
    main(sys.argv[1])
