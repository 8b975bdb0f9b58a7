"""Python results equal the `emoclip` CLI's bit for bit on the same inputs and options."""
import json
import subprocess

import numpy as np
import pytest

import emoclip
from conftest import (
    CONFIG,
    IMAGE,
    VIDEOS,
    WEIGHTS,
    assert_bits_equal,
    cli_embed,
    cli_embed_text,
    model_args,
    need_media,
    read_bmp,
    run_cli,
    write_bmp,
)


@pytest.mark.parametrize("batch", [4, 1])
def test_videos_equal_cli(model, tmp_path, batch):
    need_media(*VIDEOS)
    got = model.encode_videos(VIDEOS, batch_size=batch)
    want = cli_embed(tmp_path, VIDEOS, "--batch", batch)
    assert_bits_equal(got, want)


def test_videos_with_boxes_equal_cli(model, tmp_path, vtest_boxes):
    need_media(VIDEOS[0])
    box_file, box_dict = vtest_boxes
    want = cli_embed(tmp_path, [VIDEOS[0]], "--boxes", box_file)
    assert_bits_equal(model.encode_videos(VIDEOS[0], boxes=box_file), want)
    assert_bits_equal(model.encode_videos([VIDEOS[0]], boxes=[box_dict]), want)
    # a boxes directory, as --boxes-dir (the other inputs have no box file: empty masks, one warning)
    with pytest.warns(emoclip.EmoclipWarning, match="no <stem>.boxes.json"):
        got = model.encode_videos(VIDEOS, boxes=box_file.parent)
    assert_bits_equal(got, cli_embed(tmp_path, VIDEOS, "--boxes-dir", box_file.parent))
    # the boxes change the embedding (the subject mask is used)
    assert not np.array_equal(got[0], model.encode_videos(VIDEOS[0])[0])


def test_image_path_and_mix_equal_cli(model, tmp_path):
    need_media(IMAGE, *VIDEOS)
    assert_bits_equal(model.encode_images([IMAGE]), cli_embed(tmp_path, [IMAGE]))
    mix = [VIDEOS[0], IMAGE, VIDEOS[2]]
    assert_bits_equal(model.encode(mix), cli_embed(tmp_path, mix))


def test_image_arrays_equal_cli_on_the_same_pixels(model, tmp_path):
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (53, 77, 3), dtype=np.uint8), rng.integers(0, 256, (90, 40, 3), dtype=np.uint8)]
    files = []
    for i, im in enumerate(imgs):
        files.append(tmp_path / f"img{i}.bmp")
        write_bmp(files[-1], im)
    want = cli_embed(tmp_path, files)
    assert_bits_equal(model.encode_images(imgs), want)
    # a non-contiguous view gives the same result as its copy
    big = np.zeros((53, 154, 3), np.uint8)
    big[:, ::2] = imgs[0]
    assert_bits_equal(model.encode_images([big[:, ::2], imgs[1]]), want)
    # a stacked [N, H, W, 3] batch
    assert_bits_equal(model.encode_images(np.stack([imgs[0], imgs[0]])), want[[0, 0]])


def extract_frames(video, out_dir, n):
    out_dir.mkdir()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(video), "-frames:v", str(n), "-start_number", "0", str(out_dir / "%04d.bmp")],
        check=True,
    )
    return np.stack([read_bmp(p) for p in sorted(out_dir.glob("*.bmp"))])


def test_frames_equal_cli_frame_dir(model, tmp_path):
    need_media(VIDEOS[0], VIDEOS[1])
    a = extract_frames(VIDEOS[0], tmp_path / "clip_a", 21)  # 21 frames: 8 sampled with repeats-free linspace
    b = extract_frames(VIDEOS[1], tmp_path / "clip_b", 5)  # fewer than 8: frames repeat, as in a frame dir
    assert a.shape[0] == 21 and b.shape[0] == 5
    want = cli_embed(tmp_path, [tmp_path / "clip_a", tmp_path / "clip_b"], "--frame-dirs")
    assert_bits_equal(model.encode_frames([a, b]), want)
    assert_bits_equal(model.encode_frames(np.stack([a, a]))[1], want[0])
    assert_bits_equal(model.encode_frames(a), cli_embed(tmp_path, [tmp_path / "clip_a"], "--frame-dirs"))
    # frame directories through encode_videos too
    assert_bits_equal(model.encode_videos([tmp_path / "clip_a", tmp_path / "clip_b"]), want)


def test_frames_with_per_frame_boxes_equal_cli(model, tmp_path):
    need_media(VIDEOS[0])
    a = extract_frames(VIDEOS[0], tmp_path / "clip", 16)
    boxes = {"frames": {"0": [[10, 20, 200, 300, 0.8]], "6": [[300, 40, 600, 500]], "12": []}}
    (tmp_path / "clip.boxes.json").write_text(json.dumps(boxes))
    want = cli_embed(tmp_path, [tmp_path / "clip"], "--frame-dirs", "--boxes", tmp_path / "clip.boxes.json")
    assert_bits_equal(model.encode_frames(a, boxes=boxes), want)
    assert not np.array_equal(model.encode_frames(a), want)


def test_masks_in_model_space_match_the_box_masks(model, tmp_path):
    # A box covering the whole frame gives all-ones masks: the same embedding as masks=ones.
    need_media(VIDEOS[0])
    a = extract_frames(VIDEOS[0], tmp_path / "clip", 8)
    full = {"boxes": [[0, 0, a.shape[2], a.shape[1]]]}
    s = model.image_size
    assert_bits_equal(model.encode_frames(a, masks=np.ones((8, s, s), np.float32)), model.encode_frames(a, boxes=full))


def test_text_equal_cli(model, tmp_path):
    texts = ["a person who is happy", "someone furious!", "", "naïve café " * 40]
    assert_bits_equal(model.encode_text(texts), cli_embed_text(tmp_path, texts))
    assert_bits_equal(model.encode_text(texts, truncation="plain"), cli_embed_text(tmp_path, texts, "--plain-truncation"))
    assert_bits_equal(model.encode_text(texts[0]), cli_embed_text(tmp_path, texts[:1]))


def test_similarity_and_zero_shot_equal_cli(model, tmp_path):
    need_media(IMAGE, *VIDEOS)
    media = [VIDEOS[0], IMAGE, VIDEOS[1]]
    prompts = ["a person who is happy", "a person who is sad", "an angry person"]
    out = tmp_path / "sim.json"
    args = [a for p in prompts for a in ("--prompt", p)]
    run_cli("similarity", *media, *model_args(), *args, "--out", out)
    want = json.loads(out.read_text())
    z = model.zero_shot(media, prompts)
    assert z.labels == prompts and z.files == [str(m) for m in media]
    assert_bits_equal(z.scores, np.array([r["scores"] for r in want["results"]], np.float32))
    assert_bits_equal(z.probs, np.array([r["probs"] for r in want["results"]], np.float32))
    assert np.float32(model.logit_scale) == np.float32(want["logit_scale"])
    # the same from embeddings, and similarity() gives the scores
    emb = model.encode(media)
    assert_bits_equal(model.zero_shot(emb, prompts).scores, z.scores)
    text = model.encode_text(prompts)
    assert_bits_equal(model.similarity(emb, text), z.scores)


def test_prompt_ensembling_matches_the_definition(model):
    # templates: each class's template embeddings normalised, averaged, normalised (analyze's scoring)
    need_media(VIDEOS[0])
    emb = model.encode_videos(VIDEOS[0])
    classes, templates = ["joy", "anger"], ["{}", "a person feeling {}."]
    z = model.zero_shot(emb, classes, templates=templates)
    t = model.encode_text([tp.format(c) for c in classes for tp in templates]).astype(np.float64).reshape(2, 2, -1)
    t /= np.linalg.norm(t, axis=2, keepdims=True)
    c = t.mean(axis=1)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    v = emb[0].astype(np.float64) / np.linalg.norm(emb[0])
    logits = model.logit_scale * (c @ v)
    np.testing.assert_allclose(z.scores[0], logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(z.probs[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-6, atol=1e-7)
    basic = model.zero_shot(emb, "basic")
    assert basic.labels == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert basic.probs.shape == (1, 7) and abs(float(basic.probs.sum()) - 1) < 1e-5


def test_threads_and_two_models_keep_their_settings(tmp_path):
    need_media(*VIDEOS)
    with pytest.warns(emoclip.EmoclipWarning):
        a = emoclip.Model.load(WEIGHTS, config=CONFIG, threads=1)
        b = emoclip.Model.load("random@8", config=CONFIG, threads=2, norm="clip")
    assert (a.threads, b.threads) == (1, 2)
    want_a = cli_embed(tmp_path, VIDEOS)
    want_b = cli_embed(tmp_path, VIDEOS, "--norm", "clip", weights="random@8")
    got_b = b.encode_videos(VIDEOS)
    got_a = a.encode_videos(VIDEOS)
    assert_bits_equal(got_a, want_a)
    assert_bits_equal(got_b, want_b)
    assert_bits_equal(b.encode_videos(VIDEOS), want_b)
