"""Errors raise FileNotFoundError / ValueError / TypeError / RuntimeError with the CLI's messages."""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

import emoclip
from conftest import CONFIG, ROOT, VIDEOS, WEIGHTS, cli_embed, cli_failures, model_args, need_media, run_cli


def cli_item_error(*inputs, weights=WEIGHTS, config=CONFIG):
    """The CLI's message for an input that fails (embed skips it and lists it at the end)."""
    out = Path(tempfile.mkdtemp()) / "x.npy"
    p = run_cli("embed", *inputs, *model_args(weights, config), "--out", out, check=False)
    return cli_failures(p)


def cli_fatal_error(*args):
    p = run_cli(*args, check=False)
    assert p.returncode == 2, p.stderr
    line = [l for l in p.stderr.splitlines() if l.startswith("error: ")][-1]
    return line[len("error: ") :]


def test_missing_media_is_file_not_found(model, tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError) as e:
        model.encode_videos([missing])
    assert [str(e.value)] == cli_item_error(missing)
    with pytest.raises(FileNotFoundError):
        model.encode_images([tmp_path / "nope.jpg"])


def test_bad_media_is_value_error(model, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(ValueError) as e:
        model.encode([txt])
    assert [str(e.value)] == cli_item_error(txt)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(ValueError) as e:
        model.encode_videos([bad])
    assert [str(e.value)] == cli_item_error(bad)
    assert "cannot open as a video" in str(e.value)


def test_errors_skip_leaves_nan_rows_and_warns(model, tmp_path):
    need_media(*VIDEOS)
    missing = tmp_path / "nope.mp4"
    with pytest.warns(emoclip.EmoclipWarning, match="nope.mp4: file not found"):
        got = model.encode_videos([VIDEOS[0], missing, VIDEOS[1]], errors="skip")
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    # the CLI skips the same input and embeds the rest of the batch together: the same bits
    want = cli_embed(tmp_path, [VIDEOS[0], missing, VIDEOS[1]], check=False)
    assert np.array_equal(got[[0, 2]], want)


def test_load_errors_equal_cli(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        emoclip.Model.load(tmp_path / "w.pt")
    assert str(e.value) == cli_fatal_error("embed-text", "x", "--weights", tmp_path / "w.pt")
    with pytest.raises(ValueError) as e:
        emoclip.Model.load("random:foo")
    assert str(e.value) == cli_fatal_error("embed-text", "x", "--weights", "random:foo")
    with pytest.raises(ValueError) as e, pytest.warns(emoclip.EmoclipWarning):
        emoclip.Model.load(WEIGHTS, config=CONFIG, frames=3)
    need_media(VIDEOS[0])
    assert str(e.value) == cli_fatal_error("embed", VIDEOS[0], *model_args(), "--frames", "3")
    with pytest.raises(FileNotFoundError):
        emoclip.Model.load(WEIGHTS, config=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="dtype"):
        emoclip.Model.load(WEIGHTS, config=CONFIG, dtype="f64")
    with pytest.raises(ValueError, match="threads=0"):
        emoclip.Model.load(WEIGHTS, config=CONFIG, threads=0)


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="dtype float32"):
        model.encode_frames(np.zeros((8, 10, 10, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \[8, 10, 10, 4\]"):
        model.encode_frames(np.zeros((8, 10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="use encode_images"):
        model.encode_videos([ROOT / "media" / "person.jpg"])
    with pytest.raises(ValueError, match="use encode_videos"):
        model.encode_images([ROOT / "media" / "vtest.avi"])
    with pytest.raises(TypeError, match="expected a path"):
        model.encode_videos([3])
    with pytest.raises(ValueError, match="batch_size=0"):
        model.encode_videos([], batch_size=0)
    with pytest.raises(ValueError, match="2 entries for 1 inputs"):
        model.encode_frames(np.zeros((8, 10, 10, 3), np.uint8), boxes=[None, None])
    # a malformed box dict: the library's box-file message, naming the entry
    with pytest.raises(ValueError, match=r"<boxes\[0\]>: invalid boxes: unknown key `box`"):
        model.encode_frames(np.zeros((8, 10, 10, 3), np.uint8), boxes={"box": []})
    with pytest.raises(ValueError, match="masks of shape"):
        model.encode_frames(np.zeros((8, 10, 10, 3), np.uint8), masks=np.ones((8, 5, 5), np.float32))
    with pytest.raises(ValueError, match="dimension 3"):
        model.similarity(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="template"):
        model.zero_shot(np.ones((1, model.embed_dim), np.float32), ["a", "b"], templates=["no placeholder"])
    with pytest.raises(FileNotFoundError):
        model.zero_shot(np.ones((1, model.embed_dim), np.float32), str(tmp_path / "prompts.txt"))
    with pytest.raises(FileNotFoundError):
        emoclip.load_head(tmp_path / "none.head.json")
    head = emoclip.load_head(ROOT / "fixtures" / "analyze" / "heads" / "ridge.head.json")
    with pytest.raises(ValueError, match="expects 12-dimensional features, got 3"):
        head.predict(np.ones(3))


def _nan_checkpoint(src, dst):
    """A copy of a safetensors checkpoint with one projection matrix set to NaN."""
    raw = src.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = bytearray(raw[8 + n :])
    key = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32" and k.endswith("proj"))
    s, e = header[key]["data_offsets"]
    data[s:e] = np.full((e - s) // 4, np.nan, np.float32).tobytes()
    dst.write_bytes(raw[: 8 + n] + bytes(data))


def test_non_finite_output_is_runtime_error(tmp_path):
    src = ROOT / "fixtures" / "models" / "emotionclip_saam.safetensors"
    ck = tmp_path / "nan.safetensors"
    _nan_checkpoint(src, ck)
    img = ROOT / "fixtures" / "media" / "person_small.jpg"
    m = emoclip.Model.load(ck)
    with pytest.raises(RuntimeError, match="non-finite") as e:
        m.encode_images([img])
    assert [str(e.value)] == cli_item_error(img, weights=ck, config=None)


def test_missing_ffmpeg_library_names_the_debian_package():
    loader = "libavcodec.so.59: cannot open shared object file: No such file or directory"
    msg = emoclip._missing_library_message(loader)
    assert loader in msg and "apt-get install libavcodec59" in msg and "libavformat59" in msg
    assert "libfoo.so.3" in emoclip._missing_library_message("libfoo.so.3: cannot open shared object file")
    assert emoclip._missing_library_message("undefined symbol: PyFoo") is None


def test_library_warnings_point_at_the_callers_line(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        emoclip.Model.load(WEIGHTS, config=CONFIG)
    assert [x.category for x in w] == [emoclip.EmoclipWarning], [str(x.message) for x in w]
    assert w[0].filename == __file__ and "RANDOM weights" in str(w[0].message)
