"""Every returned array is a C-contiguous NumPy array of the documented dtype and shape; heads agree with
scikit-learn."""
import json

import numpy as np
import pytest

import emoclip
from conftest import IMAGE, ROOT, VIDEOS, assert_array_contract, need_media

HEADS = ROOT / "fixtures" / "analyze" / "heads"
EXPECTED = ROOT / "fixtures" / "analyze" / "heads_expected.json"


def test_model_properties(model):
    assert model.embed_dim == 16 and model.image_size == 64 and model.frames == 8 and model.context_length == 77
    assert isinstance(model.logit_scale, float) and model.logit_scale > 0
    assert model.threads is None
    assert "random@7" in repr(model)


def test_encoders_return_float32_c_contiguous(model):
    need_media(IMAGE, *VIDEOS)
    d = model.embed_dim
    assert_array_contract(model.encode_videos(VIDEOS), (3, d))
    assert_array_contract(model.encode_videos(VIDEOS[0]), (1, d))
    assert_array_contract(model.encode_videos([]), (0, d))
    assert_array_contract(model.encode_images([IMAGE]), (1, d))
    assert_array_contract(model.encode_images(np.zeros((2, 9, 7, 3), np.uint8)), (2, d))
    assert_array_contract(model.encode(VIDEOS + [IMAGE]), (4, d))
    assert_array_contract(model.encode_frames(np.zeros((3, 10, 12, 3), np.uint8)), (1, d))
    assert_array_contract(model.encode_frames(np.zeros((2, 3, 10, 12, 3), np.uint8)), (2, d))
    assert_array_contract(model.encode_text(["a", "b", "c"]), (3, d))
    assert_array_contract(model.encode_text("a"), (1, d))
    v = model.encode_videos(VIDEOS)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    t = model.encode_text(["a", "b"])
    assert_array_contract(model.similarity(v, t), (3, 2))
    # Fortran-ordered and float64 inputs are accepted (converted)
    assert_array_contract(model.similarity(np.asfortranarray(v.astype(np.float64)), t[0]), (3, 1))
    z = model.zero_shot(v, ["x", "y"])
    assert_array_contract(z.scores, (3, 2))
    assert_array_contract(z.probs, (3, 2))
    z = model.zero_shot(v, "sentiment")
    assert_array_contract(z.scores, (3, 3))
    assert_array_contract(z.probs, (3, 3))
    assert z.top() == [z.labels[j] for j in z.probs.argmax(1)]


def test_zero_shot_to_pandas(model):
    pd = pytest.importorskip("pandas")
    z = model.zero_shot(np.eye(2, model.embed_dim, dtype=np.float32), ["x", "y", "z"])
    df = z.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["x", "y", "z"] and df.shape == (2, 3)


@pytest.mark.parametrize("name", ["logistic", "binary", "ovr", "ridge"])
def test_heads_match_scikit_learn(name):
    exp = json.loads(EXPECTED.read_text())
    feats = np.array(exp["features"], np.float32)
    want = exp["heads"][name]
    head = emoclip.load_head(HEADS / f"{name}.head.json")
    assert head.dim == feats.shape[1] and head.task in ("logistic", "one_vs_rest", "ridge")
    proba = head.predict_proba(feats)
    c = len(want["proba"][0])
    assert_array_contract(proba, (len(feats), c))
    np.testing.assert_allclose(proba, np.array(want["proba"]), rtol=1e-6, atol=1e-6)
    pred = head.predict(feats)
    if head.task == "logistic":
        assert_array_contract(pred, (len(feats),), np.int64)
        assert pred.tolist() == want["predict"]
    elif head.task == "one_vs_rest":
        assert_array_contract(pred, (len(feats), c), np.bool_)
        assert pred.astype(int).tolist() == want["predict"]
    else:
        assert_array_contract(pred, (len(feats), c))
        np.testing.assert_allclose(pred, np.array(want["predict"]), rtol=1e-6, atol=1e-6)
    # one row in, one row out
    assert np.array_equal(head.predict_proba(feats[0]), proba[0])
