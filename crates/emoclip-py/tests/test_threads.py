"""Long calls release the GIL, stop on Ctrl-C (KeyboardInterrupt) without waiting for the batch, and report
progress; the model stays usable after an interrupt."""
import _thread
import faulthandler
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import emoclip
from conftest import VIDEOS, assert_bits_equal, need_media

LONG = [VIDEOS[1]] * 12  # Megamind.avi: decoding 8 frames of each takes a while


@pytest.fixture
def sigint_raises():
    """Python's own Ctrl-C handler for the test: a process started in the background by a non-interactive shell
    (`nohup … &`, some CI runners) inherits SIGINT as ignored, and `_thread.interrupt_main` then does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_gil_is_released_during_a_call(model, tmp_path, vtest_boxes):
    # The call (on a second thread) reads its box file from a FIFO; this thread runs Python code to write it.
    # That can only happen while the call has released the GIL: holding it would deadlock (the watchdog turns a
    # hang into a failure).
    need_media(VIDEOS[0])
    _, box_dict = vtest_boxes
    fifo = tmp_path / "boxes.json"
    os.mkfifo(fifo)
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("emb", model.encode_videos(VIDEOS[0], boxes=fifo)))
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        worker.start()
        with open(fifo, "w") as f:
            f.write(json.dumps(box_dict))
        worker.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert_bits_equal(out["emb"], model.encode_videos(VIDEOS[0], boxes=box_dict))


def test_python_threads_run_during_a_long_call(model):
    need_media(VIDEOS[1])
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("emb", model.encode_videos(LONG, batch_size=12)))
    worker.start()
    spins = 0
    while worker.is_alive():  # this thread runs Python while the other one is inside the call
        spins += 1
    worker.join()
    print(f"{spins} loop iterations on this thread during the call")
    assert out["emb"].shape == (12, model.embed_dim)


def test_ctrl_c_interrupts_within_a_batch(model, sigint_raises):
    need_media(VIDEOS[1])
    seen = []
    t_interrupt = []

    def progress(done, total):
        seen.append(done)
        if done == 0:  # Ctrl-C as soon as the call starts: one batch of 12 long videos is in flight
            t_interrupt.append(time.perf_counter())
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        model.encode_videos(LONG, batch_size=len(LONG), progress=progress)
    latency = time.perf_counter() - t_interrupt[0]
    print(f"KeyboardInterrupt {latency * 1000:.0f} ms after Ctrl-C")
    assert seen == [0], seen  # it did not wait for the batch to finish
    # the model still works, with the same results
    assert_bits_equal(model.encode_videos(VIDEOS[:1]), model.encode_videos(VIDEOS[:1]))


def test_interrupt_from_a_timer_thread(model, sigint_raises):
    need_media(VIDEOS[1])
    done = []
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.encode_videos(LONG * 4, batch_size=1, progress=lambda d, t: done.append(d))
    timer.join()
    assert max(done) < len(LONG) * 4, done


def test_progress_callback_sees_every_batch(model):
    need_media(*VIDEOS)
    calls = []
    model.encode_videos(VIDEOS, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 3), (2, 3), (3, 3)]


def test_progress_callback_exception_propagates(model):
    need_media(*VIDEOS)

    def boom(done, total):
        if done:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        model.encode_videos(VIDEOS, batch_size=1, progress=boom)


def test_progress_true_without_tqdm_prints(model, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *a, **k):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    model.encode_frames(np.zeros((2, 8, 4, 4, 3), np.uint8), progress=True)
    assert "clips: 2/2" in capsys.readouterr().err


def test_concurrent_calls_from_threads_agree(model):
    need_media(*VIDEOS)
    want = model.encode_videos(VIDEOS)
    results = [None] * 3

    def go(i):
        results[i] = model.encode_videos(VIDEOS)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_bits_equal(r, want)
