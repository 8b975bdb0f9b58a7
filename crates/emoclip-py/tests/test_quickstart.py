"""examples/quickstart.py runs end to end on tiny random weights."""
import subprocess
import sys

from conftest import CONFIG, MEDIA, ROOT, VIDEOS, need_media


def test_quickstart_runs(tmp_path):
    need_media(*VIDEOS)
    p = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--weights", "random@7", "--config", str(CONFIG),
         "--media", str(MEDIA), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "videos (3, 16) float32" in p.stdout, p.stdout
    basic = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert any(f" {label} " in p.stdout for label in basic), p.stdout
