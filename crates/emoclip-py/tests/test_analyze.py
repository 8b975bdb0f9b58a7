"""emoclip.analyze equals `emoclip analyze` (timeline.jsonl, embeddings.npy) on the same video and options."""
import json

import numpy as np

import emoclip
from conftest import VIDEOS, assert_array_contract, assert_bits_equal, model_args, need_media, run_cli


def test_analyze_equals_cli(model, tmp_path):
    video = VIDEOS[2]  # carphone_pristine.mp4: short, small frames
    need_media(video)
    out = tmp_path / "out"
    run_cli("analyze", video, *model_args(), "--out", out, "--prompts", "basic", "--prompts", "sentiment",
            "--window", "1", "--stride", "0.5")
    d = out / video.name
    rows = [json.loads(line) for line in (d / "timeline.jsonl").read_text().splitlines()]
    calls = []
    a = emoclip.analyze(model, video, window=1.0, stride=0.5, prompts=["basic", "sentiment"],
                        progress=lambda k, n: calls.append((k, n)))
    assert isinstance(a, emoclip.VideoAnalysis) and len(a) == len(rows) > 5
    assert calls[-1][0] == calls[-1][1] == a.window.max() + 1
    assert list(a.sources) == ["basic", "sentiment"] and len(a.columns) == 10
    r = len(a)
    for name, dtype, shape in [("window", np.int64, (r,)), ("t_start", np.float64, (r,)), ("t_end", np.float64, (r,)),
                               ("subject", np.int64, (r,)), ("mean_box", np.float32, (r, 4)),
                               ("frames_with_box", np.int64, (r,))]:
        assert_array_contract(getattr(a, name), shape, dtype)
    assert_array_contract(a.scores["basic"], (r, 7))
    assert_array_contract(a.scores["sentiment"], (r, 3))
    assert_array_contract(a.embeddings, (len(a.embedding_window), model.embed_dim))
    for i, want in enumerate(rows):
        got = a.rows()[i]
        for k in ("window", "t_start", "t_end", "subject", "frames_with_box", "flags", "mean_box"):
            assert got[k] == want[k], (i, k, got[k], want[k])
        assert got.get("label") == want.get("label"), i
        cli_scores = np.array(list(want["scores"].values()), np.float32)
        py_scores = np.concatenate([a.scores["basic"][i], a.scores["sentiment"][i]])
        assert list(want["scores"]) == a.columns
        assert_bits_equal(py_scores, cli_scores)
    assert_bits_equal(a.embeddings, np.load(d / "embeddings.npy"))


def test_segment_labels_and_to_pandas(model, tmp_path):
    pd = __import__("pytest").importorskip("pandas")
    video = VIDEOS[2]
    need_media(video)
    segs = tmp_path / "segments.csv"
    segs.write_text('start,end,label\n0,1.5,opening\n2,3.5,"later, again"\n')
    a = emoclip.analyze(model, video, segments=segs, prompts=["sentiment"])
    assert sorted(set(a.window.tolist())) == [0, 1]
    assert [a.label[i] for i in range(len(a))] == ["opening" if w == 0 else "later, again" for w in a.window]
    df = a.to_pandas()
    assert len(df) == len(a) and list(df["label"]) == a.label
    assert list(df["subject"]) == [a.subject_name(i) for i in range(len(a))]
    cols = [c for c in df.columns if c.startswith("sentiment:")]
    assert cols == a.columns
    np.testing.assert_array_equal(df[cols].to_numpy(np.float32), a.scores["sentiment"])
