"""A MOSEI-sized MMSA `aligned_50.pkl` with random float32 features, to measure the Rust reader's peak memory
and load time (`cargo run --release -p emoclip --example mmsa_load -- FILE` under `/usr/bin/time -v`).

MMSA's aligned CMU-MOSEI: 16,326 / 1,871 / 4,659 utterances, L = 50, GloVe text 300, Facet vision 35,
COVAREP audio 74 (about 1.9 GB of float32). `--scale 0.25` writes a quarter of the utterances.
The values are random (not real features); a few audio values are -inf like MMSA's COVAREP.

Run: .venv-fixtures/bin/python bench/mmsa_big.py /tmp/mosei_big.pkl [--scale 0.25] [--protocol 4]
Not a fixture: do not commit the output (GBs).
"""
import argparse
import pickle

import numpy as np

SIZES = {"train": 16326, "valid": 1871, "test": 4659}
L, DT, DV, DA = 50, 300, 35, 74


def split(rng, n):
    audio = rng.standard_normal((n, L, DA), dtype=np.float32)
    audio[rng.integers(0, n, 16), rng.integers(0, L, 16), rng.integers(0, DA, 16)] = -np.inf
    reg = (np.round(rng.uniform(-3, 3, n) * 3) / 3).astype(np.float32)
    ids = np.zeros((n, L), np.float32)
    ids[:, 0], ids[:, 1:L - 1], ids[:, L - 1] = 101, rng.integers(1000, 30000, (n, L - 2)), 102
    return {
        "raw_text": np.array([f"utterance {i}" for i in range(n)], dtype=object),
        "audio": audio,
        "vision": rng.standard_normal((n, L, DV), dtype=np.float32),
        "id": np.array([f"video{i // 7}$_${i % 7}" for i in range(n)], dtype=object),
        "text": rng.standard_normal((n, L, DT), dtype=np.float32),
        "text_bert": np.stack([ids, np.ones((n, L), np.float32), np.zeros((n, L), np.float32)], 1),
        "annotations": np.array(["Positive" if r > 0 else "Negative" if r < 0 else "Neutral" for r in reg], dtype=object),
        "classification_labels": np.where(reg > 0, 2, np.where(reg < 0, 0, 1)).astype(np.float32),
        "regression_labels": reg,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--protocol", type=int, default=4)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    data = {}
    for name, n in SIZES.items():
        data[name] = split(rng, max(1, int(n * a.scale)))
    with open(a.out, "wb") as f:
        pickle.dump(data, f, protocol=a.protocol)
    total = sum(v.nbytes for d in data.values() for v in d.values() if v.dtype != object)
    print(f"wrote {a.out}: {total / 1e9:.2f} GB of arrays, N = {[len(d['id']) for d in data.values()]}")


if __name__ == "__main__":
    main()
