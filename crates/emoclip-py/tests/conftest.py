"""Shared fixtures: the repository's sample media, the `emoclip` CLI binary of the same build (EMOCLIP_CLI, set by
scripts/test_python.sh) and a tiny seeded random model (fixtures/cli/micro_random.json) for fast runs."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import emoclip

ROOT = Path(__file__).resolve().parents[3]
MEDIA = ROOT / "media"
CONFIG = ROOT / "fixtures" / "cli" / "micro_random.json"
WEIGHTS = "random@7"
VIDEOS = [MEDIA / "vtest.avi", MEDIA / "Megamind.avi", MEDIA / "carphone_pristine.mp4"]
IMAGE = MEDIA / "person.jpg"


def need_media(*paths):
    """Skips (fails when CI is set, as the Rust tests do) when the sample media are missing."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        msg = f"sample media missing ({', '.join(missing)}); run scripts/fetch_media.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def cli_binary() -> str:
    exe = os.environ.get("EMOCLIP_CLI") or str(ROOT / "target" / "debug" / "emoclip")
    if not Path(exe).is_file():
        pytest.fail(f"emoclip CLI binary not found at {exe}; run scripts/test_python.sh (it builds it and sets EMOCLIP_CLI)")
    return exe


def run_cli(*args, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([cli_binary(), *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"emoclip {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def model_args(weights=WEIGHTS, config=CONFIG, extra=()):
    out = ["--weights", weights]
    if config is not None:
        out += ["--config", config]
    return out + list(extra)


def cli_embed(tmp_path, inputs, *extra, weights=WEIGHTS, config=CONFIG, check=True) -> np.ndarray:
    out = tmp_path / f"cli_{len(list(tmp_path.iterdir()))}.npy"
    run_cli("embed", *inputs, *model_args(weights, config), *extra, "--out", out, check=check)
    return np.load(out)


def cli_embed_text(tmp_path, texts, *extra) -> np.ndarray:
    out = tmp_path / f"cli_text_{len(list(tmp_path.iterdir()))}.npy"
    run_cli("embed-text", *texts, *model_args(), *extra, "--out", out)
    return np.load(out)


def cli_failures(p: subprocess.CompletedProcess):
    """The messages under "N input(s) failed:" of an embed run."""
    lines = p.stderr.splitlines()
    i = next(k for k, l in enumerate(lines) if l.endswith("input(s) failed:"))
    return [l.strip() for l in lines[i + 1 :] if l.startswith("  ")]


def bits(a: np.ndarray) -> np.ndarray:
    """The raw float32 bit patterns (so `==` compares bit for bit, NaN included)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = bits(a) != bits(b)
    assert not diff.any(), f"{diff.sum()} of {diff.size} values differ; max |Δ| = {np.nanmax(np.abs(a - b))}"


def assert_array_contract(a, shape, dtype=np.float32):
    assert isinstance(a, np.ndarray), type(a)
    assert a.dtype == dtype, a.dtype
    assert a.shape == tuple(shape), (a.shape, shape)
    assert a.flags.c_contiguous, a.flags


def write_bmp(path: Path, rgb: np.ndarray) -> None:
    """A 24-bit BMP (bottom-up BGR rows padded to 4 bytes), a lossless format the CLI reads."""
    h, w, _ = rgb.shape
    row = (w * 3 + 3) // 4 * 4
    data = np.zeros((h, row), np.uint8)
    data[:, : w * 3] = rgb[::-1, :, ::-1].reshape(h, w * 3)
    header = b"BM" + (54 + data.size).to_bytes(4, "little") + b"\0\0\0\0" + (54).to_bytes(4, "little")
    info = (40).to_bytes(4, "little") + w.to_bytes(4, "little", signed=True) + h.to_bytes(4, "little", signed=True)
    info += (1).to_bytes(2, "little") + (24).to_bytes(2, "little") + b"\0" * 24
    path.write_bytes(header + info + data.tobytes())


def read_bmp(path: Path) -> np.ndarray:
    """A 24-bit uncompressed BMP (as ffmpeg writes them) → uint8 [H, W, 3] RGB."""
    b = path.read_bytes()
    off = int.from_bytes(b[10:14], "little")
    w = int.from_bytes(b[18:22], "little", signed=True)
    h = int.from_bytes(b[22:26], "little", signed=True)
    assert int.from_bytes(b[28:30], "little") == 24, "expected a 24-bit BMP"
    row = (w * 3 + 3) // 4 * 4
    px = np.frombuffer(b, np.uint8, count=row * abs(h), offset=off).reshape(abs(h), row)[:, : w * 3]
    px = px.reshape(abs(h), w, 3)[:, :, ::-1]
    return np.ascontiguousarray(px[::-1] if h > 0 else px)


@pytest.fixture(scope="session")
def model():
    with pytest.warns(emoclip.EmoclipWarning, match="RANDOM weights"):
        return emoclip.Model.load(WEIGHTS, config=CONFIG)


@pytest.fixture(scope="session")
def vtest_boxes(tmp_path_factory):
    """A per-frame box file for vtest.avi (768x576) and the same boxes as a dict."""
    boxes = {"frames": {"0": [[100.5, 50.25, 300, 400, 0.9]], "300": [[380, 20, 700, 560]], "600": []}}
    p = tmp_path_factory.mktemp("boxes") / "vtest.boxes.json"
    p.write_text(json.dumps(boxes))
    return p, boxes
