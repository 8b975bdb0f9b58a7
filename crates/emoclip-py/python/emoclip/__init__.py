"""emoclip: EmotionCLIP / MER-CLIP emotion embeddings for Python, on the emoclip Rust library.

NumPy in, NumPy out: every embedding and score is a C-contiguous ``float32`` array, equal bit for bit to what
the ``emoclip`` command-line tool computes for the same inputs and options. No PyTorch needed.

>>> import emoclip
>>> model = emoclip.Model.load("EmotionCLIP.pt")             # or "hf:org/name", "random" for a smoke test
>>> v = model.encode_videos(["clip.mp4"])                     # [1, D]
>>> z = model.zero_shot(v, ["a happy person", "a sad person"])
>>> z.probs                                                   # [1, 2], softmax over the prompts

Long calls release the GIL, stop within a fraction of a second on Ctrl-C (``KeyboardInterrupt``), report
progress through ``progress=`` (a callable ``(done, total)`` or ``True`` for a tqdm bar), and raise
``FileNotFoundError`` / ``ValueError`` / ``RuntimeError`` with the CLI's messages. Library warnings (random
weights, person boxes outside the frame, skipped inputs) arrive as :class:`EmoclipWarning`. See docs/python.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import threading
import warnings
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Model",
    "Head",
    "ZeroShotResult",
    "VideoAnalysis",
    "analyze",
    "EmoclipWarning",
    "load_head",
    "__version__",
]


# The shared libraries the extension links (readelf -d), with their Debian 12 packages; FFmpeg's libswscale,
# libswresample, libpostproc come with these. Detection (analyze) loads libonnxruntime.so at run time instead
# (ORT_DYLIB_PATH).
_FFMPEG_PACKAGES = "libavcodec59 libavformat59 libavfilter8 libavutil57"


def _missing_library_message(msg: str) -> Optional[str]:
    """The ImportError text for a loader message naming a missing shared library, or None."""
    m = re.search(r"(lib[A-Za-z0-9_+-]+?)\.so\.(\d+)", msg)
    if m is None:
        return None
    lib, ver = m.group(1), m.group(2)
    if lib.startswith(("libav", "libsw", "libpostproc")):
        hint = (
            f"emoclip needs the FFmpeg shared libraries it was built against: on Debian/Ubuntu "
            f"`sudo apt-get install {lib}{ver}` (Debian 12, FFmpeg 5.1: `sudo apt-get install {_FFMPEG_PACKAGES}`), "
            f"or rebuild the package against this machine's FFmpeg (`pip install ./crates/emoclip-py` after "
            f"`bash scripts/install_deps.sh`)"
        )
    else:
        hint = f"install the package that provides {lib}.so.{ver} (Debian: `apt-file search {lib}.so.{ver}`)"
    return f"cannot load emoclip's native module: {msg}. {hint}"


def _load_native():
    """Imports the extension; a missing shared library becomes an ImportError naming the Debian package."""
    try:
        from . import _emoclip
    except ImportError as e:  # pragma: no cover - only on machines without the libraries
        better = _missing_library_message(str(e))
        if better is None:
            raise
        raise ImportError(better) from e
    return _emoclip


_native = _load_native()

__version__: str = _native.__version__
EmoclipWarning = _native.EmoclipWarning

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[None, bool, Callable[[int, int], Any]]


# ----------------------------------------------------------------------------------------------------------
# helpers

_depth = threading.local()


def _api(fn):
    """Re-emits the library's warnings collected during the call as EmoclipWarning pointing at the caller's
    line (once, from the outermost API call of this thread)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            return fn(*args, **kwargs)
        finally:
            _depth.n -= 1
            if _depth.n == 0:
                for msg in _native._take_warnings():
                    warnings.warn(msg, EmoclipWarning, stacklevel=2)

    return call



def _fspath(p: Any) -> str:
    return os.fspath(p) if isinstance(p, (str, os.PathLike)) else p


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} into box JSON")


def _box_source(b: Any, where: str) -> Optional[Tuple[str, str]]:
    """None, a box file path, or a dict in the box-file format → what the native module takes."""
    if b is None:
        return None
    if isinstance(b, (str, os.PathLike)):
        return ("file", os.fspath(b))
    if isinstance(b, dict):
        return ("json", json.dumps(b, default=_json_default))
    raise TypeError(
        f"{where}: expected None, a box file path or a dict such as {{'boxes': [[x1, y1, x2, y2, conf], ...]}} "
        f"or {{'frames': {{'0': [[x1, y1, x2, y2]], ...}}}}, got {type(b).__name__}"
    )


def _box_args(boxes: Any, n: int) -> Tuple[Optional[list], Optional[str]]:
    """`boxes=` → (one source per input, or a boxes directory)."""
    if boxes is None:
        return None, None
    if isinstance(boxes, (str, os.PathLike)) and os.path.isdir(boxes):
        return None, os.fspath(boxes)
    if isinstance(boxes, (str, os.PathLike, dict)):
        if n != 1:
            raise ValueError(
                f"boxes: one box file/dict for {n} inputs; give a list with one entry per input (None for no "
                f"boxes), or a directory with <stem>.boxes.json files"
            )
        return [_box_source(boxes, "boxes")], None
    if isinstance(boxes, (list, tuple)):
        if len(boxes) != n:
            raise ValueError(f"boxes: {len(boxes)} entries for {n} inputs; give one per input (None for no boxes)")
        return [_box_source(b, f"boxes[{i}]") for i, b in enumerate(boxes)], None
    raise TypeError(f"boxes: expected None, a path, a dict or a list of those, got {type(boxes).__name__}")


def _paths(paths: Any, what: str) -> list:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    if isinstance(paths, np.ndarray):
        raise TypeError(f"{what}: got an array; use encode_images for image arrays and encode_frames for clips")
    try:
        return list(paths)
    except TypeError:
        raise TypeError(f"{what}: expected a path or a list of paths, got {type(paths).__name__}") from None


class _Bar:
    """progress=True: a tqdm bar when tqdm is installed, else one line on stderr per ~10%."""

    def __init__(self, desc: str):
        self.desc = desc
        self.bar = None
        self.shown = -1
        try:
            from tqdm.auto import tqdm  # type: ignore

            self.bar = tqdm(total=None, desc=desc, unit="item")
        except ImportError:
            pass

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()
            return
        step = 10 * done // max(total, 1)
        if step != self.shown and (done == total or step > self.shown):
            self.shown = step
            print(f"{self.desc}: {done}/{total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(progress: Progress, desc: str):
    if progress is None or progress is False:
        return None, None
    if progress is True:
        bar = _Bar(desc)
        return bar, bar
    if callable(progress):
        return progress, None
    raise TypeError("progress: expected None, True (a progress bar) or a callable (done, total)")


def _rows(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what}: expected a numeric array, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what}: expected [N, D] (or [D]), got shape {a.shape}")
    return a


# ----------------------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass(frozen=True)
class ZeroShotResult:
    """Zero-shot scores of N media against P prompts (or classes).

    ``scores[i, j] = exp(logit_scale) · cos(media_i, prompt_j)`` and ``probs`` their softmax over the prompts,
    both float32 ``[N, P]``. ``files`` names the media when they were given as paths.
    """

    labels: List[str]
    scores: np.ndarray
    probs: np.ndarray
    files: Optional[List[str]] = None

    def top(self) -> List[str]:
        """The most probable label of each media item."""
        return [self.labels[j] for j in self.probs.argmax(axis=1)] if len(self.labels) else []

    def to_pandas(self, what: str = "probs"):
        """A DataFrame (``what`` = "probs" or "scores"), one row per media item, one column per label."""
        try:
            import pandas as pd  # type: ignore
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        if what not in ("probs", "scores"):
            raise ValueError('what: use "probs" or "scores"')
        return pd.DataFrame(getattr(self, what), columns=list(self.labels), index=self.files)


# ----------------------------------------------------------------------------------------------------------
# model


class Model:
    """A loaded EmotionCLIP (or plain CLIP) encoder with its preprocessing. Create one with :meth:`Model.load`.

    Thread-safe: several Python threads may call one model at once. Each model owns its thread pool when
    loaded with ``threads=N``; two models never share settings.
    """

    __slots__ = ("_m",)

    def __init__(self, native: Any):
        if not isinstance(native, _native.Model):
            raise TypeError("use emoclip.Model.load(weights, ...) to create a Model")
        self._m = native

    @classmethod
    @_api
    def load(
        cls,
        weights: PathLike,
        config: Optional[PathLike] = None,
        *,
        model: str = "emotionclip",
        device: str = "cpu",
        dtype: str = "f32",
        threads: Optional[int] = None,
        norm: str = "imagenet",
        frames: int = 8,
    ) -> "Model":
        """Loads weights, as the CLI's ``--weights/--config/--model/--device/--dtype/--norm/--frames``.

        weights: a ``.pt/.pth/.bin/.safetensors`` file or a directory (EmotionCLIP, open_clip or Hugging Face
            CLIP), ``hf:<org>/<name>`` (local Hugging Face cache), or ``random[:CONFIG][@SEED]`` (seeded random
            weights for smoke tests; CONFIG ViT-B-32, ViT-B-16 or ViT-L-14, or the ``config`` file).
        config: model config JSON (default: the one beside the weights, else inferred from tensor shapes).
        model: "emotionclip" (subject-aware frame encoder + temporal head) or "clip" (plain CLIP baseline).
        device: "cpu", "cuda" or "cuda:N" (CUDA only in a package built with ``--features cuda``).
        dtype: "f32", "f16" or "bf16" (on the CPU bf16 keeps f32 weights and multiplies in bf16).
        threads: size of this model's own thread pool (None: all cores, shared process-wide pool).
        norm: "imagenet" (official EmotionCLIP) or "clip" pixel statistics.
        frames: frames sampled uniformly per video (the temporal head takes exactly 8).
        """
        return cls(
            _native.Model.load(
                _fspath(weights),
                None if config is None else os.fspath(config),
                model=model,
                device=device,
                dtype=dtype,
                threads=threads,
                norm=norm,
                frames=frames,
            )
        )

    @property
    def embed_dim(self) -> int:
        """Embedding dimension D."""
        return self._m.embed_dim

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)``: multiplies cosine similarities into zero-shot scores."""
        return self._m.logit_scale

    @property
    def image_size(self) -> int:
        """Model input size in pixels (frames are resized and centre-cropped to it)."""
        return self._m.image_size

    @property
    def frames(self) -> int:
        """Frames sampled per video clip."""
        return self._m.frames

    @property
    def context_length(self) -> int:
        """Text context length in tokens."""
        return self._m.context_length

    @property
    def threads(self) -> Optional[int]:
        """Size of this model's own thread pool (None: the shared pool, all cores)."""
        return self._m.threads

    def __repr__(self) -> str:
        return repr(self._m)

    def _encode(self, items, kind, boxes, masks, batch_size, errors, progress, desc) -> np.ndarray:
        box_list, box_dir = _box_args(boxes, len(items))
        cb, bar = _progress(progress, desc)
        try:
            return self._m._encode(
                items,
                kind,
                boxes=box_list,
                boxes_dir=box_dir,
                masks=masks,
                batch_size=batch_size,
                errors=errors,
                progress=cb,
            )
        finally:
            if bar is not None:
                bar.close()

    @_api
    def encode(
        self,
        paths: Union[PathLike, Sequence[PathLike]],
        boxes: Any = None,
        *,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Progress = None,
    ) -> np.ndarray:
        """Embeds media files of any kind (videos, images, frame directories), as ``emoclip embed``.

        Returns float32 ``[N, D]``, one L2-normalised row per path, in order. See :meth:`encode_videos` for
        ``boxes``, ``batch_size``, ``errors`` and ``progress``.
        """
        items = _paths(paths, "paths")
        return self._encode(items, "any", boxes, None, batch_size, errors, progress, "embedding")

    @_api
    def encode_videos(
        self,
        paths: Union[PathLike, Sequence[PathLike]],
        boxes: Any = None,
        *,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Progress = None,
    ) -> np.ndarray:
        """Embeds videos (and frame directories: one clip each), ``frames`` frames sampled uniformly.

        paths: a path or a list of paths (str or os.PathLike).
        boxes: person boxes for the subject masks: None (empty masks), a directory holding
            ``<stem>.boxes.json`` per input (``--boxes-dir``), or one entry per input, each None, a box-file
            path or a dict in the box-file format (``{"boxes": [[x1, y1, x2, y2, conf], ...]}`` or
            ``{"frames": {"<frame index>": [...]}}``); one file/dict alone for a single input.
        batch_size: clips per forward pass. Results equal ``emoclip embed --batch batch_size`` bit for bit
            (4 is the CLI default; other batch sizes can differ in the last bits: batched matrix products
            round differently).
        errors: "raise" (the first bad input raises) or "skip" (its row is NaN and an EmoclipWarning names it,
            as the CLI skips and reports).
        progress: None, True (a progress bar) or a callable ``progress(done, total)``.

        Returns float32 ``[N, D]``, L2-normalised rows, in the order of ``paths``.
        """
        items = _paths(paths, "paths")
        return self._encode(items, "video", boxes, None, batch_size, errors, progress, "videos")

    @_api
    def encode_images(
        self,
        images: Any,
        boxes: Any = None,
        *,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Progress = None,
    ) -> np.ndarray:
        """Embeds still images: paths, uint8 RGB arrays ``[H, W, 3]``, a list mixing both, or ``[N, H, W, 3]``.

        Arrays are preprocessed exactly as the CLI preprocesses a decoded image file (Pillow-exact bicubic
        resize of the short side, centre crop, normalisation). ``boxes`` as in :meth:`encode_videos` (boxes in
        the image's pixels). Returns float32 ``[N, D]``.
        """
        if isinstance(images, np.ndarray):
            items = [images] if images.ndim == 3 else list(images) if images.ndim == 4 else [images]
        else:
            items = _paths(images, "images")
        return self._encode(items, "image", boxes, None, batch_size, errors, progress, "images")

    @_api
    def encode_frames(
        self,
        frames: Any,
        boxes: Any = None,
        *,
        masks: Any = None,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Progress = None,
    ) -> np.ndarray:
        """Embeds clips you decoded yourself: uint8 RGB ``[T, H, W, 3]`` (one clip), ``[N, T, H, W, 3]``, or a
        list of ``[T, H, W, 3]`` arrays (sizes may differ between clips).

        Each clip is treated exactly as ``emoclip embed --frame-dirs`` treats a directory of its T frames
        (frame i numbered i): ``frames`` of them sampled uniformly (``np.linspace(0, T-1, frames, dtype=int)``),
        then resized, centre-cropped and normalised like video frames.

        boxes: per clip as in :meth:`encode_videos`; per-frame boxes are keyed by frame index 0..T-1.
        masks: instead of boxes, subject masks in model input space: float32 ``[T, S, S]`` per clip
            (``S = image_size``; 1 = subject), or ``[N, T, S, S]``.
        Returns float32 ``[N, D]`` (``[1, D]`` for a single clip).
        """
        if isinstance(frames, np.ndarray):
            if frames.ndim == 4:
                items = [frames]
            elif frames.ndim == 5:
                items = list(frames)
            else:
                raise ValueError(f"frames: expected [T, H, W, 3] or [N, T, H, W, 3], got shape {frames.shape}")
        elif isinstance(frames, (list, tuple)):
            items = list(frames)
        else:
            raise TypeError(f"frames: expected a uint8 array or a list of arrays, got {type(frames).__name__}")
        mask_list = None
        if masks is not None:
            if isinstance(masks, np.ndarray) and masks.ndim == 3 and len(items) == 1:
                mask_list = [masks]
            elif isinstance(masks, np.ndarray) and masks.ndim == 4:
                mask_list = list(masks)
            else:
                mask_list = list(masks)
            mask_list = [None if m is None else np.ascontiguousarray(m, dtype=np.float32) for m in mask_list]
            if boxes is not None:
                raise ValueError("give boxes or masks, not both")
        return self._encode(items, "video", boxes, mask_list, batch_size, errors, progress, "clips")

    @_api
    def encode_text(self, texts: Union[str, Sequence[str]], *, truncation: str = "eot") -> np.ndarray:
        """Embeds texts, as ``emoclip embed-text``; float32 ``[N, D]`` (``[1, D]`` for one string).

        truncation: "eot" (over-long texts end with the end-of-text token; the CLI default) or "plain" (the
            official EmotionCLIP tokenizer, ``--plain-truncation``).
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts: expected a string or a list of strings")
        return self._m._encode_text(texts, truncation)

    @_api
    def similarity(self, media_embeddings: Any, text_embeddings: Any) -> np.ndarray:
        """``exp(logit_scale) · cos`` of every media row with every text row: float32 ``[N, P]``, computed as
        ``emoclip similarity`` computes its scores. Inputs ``[N, D]`` and ``[P, D]`` (or 1-D single rows),
        L2-normalised as the encoders return them."""
        m = _rows(media_embeddings, "media_embeddings")
        t = _rows(text_embeddings, "text_embeddings")
        return self._m._similarity(m, t)

    @_api
    def zero_shot(
        self,
        media: Any,
        prompts: Union[str, Sequence[str]],
        *,
        templates: Optional[Sequence[str]] = None,
        boxes: Any = None,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Progress = None,
    ) -> ZeroShotResult:
        """Zero-shot emotion scores: media against text prompts.

        media: embeddings ``[N, D]`` (from an encode method) or media paths (embedded with :meth:`encode`).
        prompts: a list of texts, or a prompt set: "basic" (7 emotions), "emotic" (26 categories),
            "sentiment", or a prompts file (one class per line; see ``emoclip analyze --prompts``).
        templates: with a list of class names, texts with ``{}`` to write each class into; the class's
            template embeddings are averaged (prompt ensembling, as ``emoclip analyze``). Without templates
            each prompt is embedded as it is and scored as ``emoclip similarity --out`` (bit for bit).

        Returns a :class:`ZeroShotResult` (labels, scores and softmax probs, float32 ``[N, P]``).
        """
        files = None
        if isinstance(media, np.ndarray) and media.dtype.kind == "f":
            emb = _rows(media, "media")
        else:
            items = _paths(media, "media")
            files = [os.fspath(p) for p in items]
            emb = self.encode(items, boxes, batch_size=batch_size, errors=errors, progress=progress)
        if isinstance(prompts, (str, os.PathLike)):
            labels, scores, probs = self._m._zero_shot(
                emb, None, None if templates is None else list(templates), os.fspath(prompts)
            )
        else:
            plist = list(prompts)
            if not plist or not all(isinstance(p, str) for p in plist):
                raise ValueError("prompts: give a non-empty list of strings, or a prompt set name / prompts file")
            labels, scores, probs = self._m._zero_shot(
                emb, plist, None if templates is None else list(templates), None
            )
        return ZeroShotResult(labels=list(labels), scores=scores, probs=probs, files=files)


# ----------------------------------------------------------------------------------------------------------
# video analysis


@dataclasses.dataclass(frozen=True)
class VideoAnalysis:
    """One video's analysis: a row per window × subject (the scene, and each tracked person), as the rows of
    ``emoclip analyze``'s ``timeline.jsonl``.

    Per row (R rows): ``window`` int64, ``t_start`` / ``t_end`` float64 seconds, ``subject`` int64 (-1 = the
    scene, else the person's track id), ``mean_box`` float32 ``[R, 4]`` (NaN without a box),
    ``frames_with_box`` int64, ``flags`` (list of lists of str), ``label`` (the caption sentence or segment
    label of the row's window, else None), ``scores[source]`` float32 ``[R, C]`` per score
    source (prompt sets, then heads; labels in ``sources[source]``). ``embeddings`` float32 ``[E, D]`` with
    ``embedding_window`` / ``embedding_subject`` saying which window and subject each row is.
    """

    path: str
    video_id: str
    duration: float
    frame_size: Tuple[int, int]
    window: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    subject: np.ndarray
    mean_box: np.ndarray
    frames_with_box: np.ndarray
    flags: List[List[str]]
    label: List[Optional[str]]
    sources: dict
    source_kinds: dict
    scores: dict
    embeddings: np.ndarray
    embedding_window: np.ndarray
    embedding_subject: np.ndarray
    warnings: List[str]
    stats: dict

    def __len__(self) -> int:
        return len(self.window)

    @property
    def columns(self) -> List[str]:
        """Score column names ``<source>:<label>``, in order."""
        return [f"{s}:{label}" for s, labels in self.sources.items() for label in labels]

    def subject_name(self, i: int) -> str:
        """``scene`` or ``person-<id>`` for row ``i``."""
        return "scene" if self.subject[i] < 0 else f"person-{self.subject[i]}"

    def rows(self) -> List[dict]:
        """The rows as dicts (keys as in timeline.jsonl; scores flattened to ``<source>:<label>``)."""
        out = []
        for i in range(len(self)):
            box = self.mean_box[i]
            row = {
                "window": int(self.window[i]),
                "t_start": float(self.t_start[i]),
                "t_end": float(self.t_end[i]),
                "subject": self.subject_name(i),
                "mean_box": None if np.isnan(box).any() else [float(x) for x in box],
                "frames_with_box": int(self.frames_with_box[i]),
                "flags": list(self.flags[i]),
            }
            if self.label[i] is not None:
                row["label"] = self.label[i]
            for s, labels in self.sources.items():
                for j, label in enumerate(labels):
                    row[f"{s}:{label}"] = float(self.scores[s][i, j])
            out.append(row)
        return out

    def to_pandas(self):
        """The rows as a DataFrame (needs pandas)."""
        try:
            import pandas as pd  # type: ignore
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        df = pd.DataFrame(self.rows())
        if len(df) and "label" not in df.columns:  # fixed windows: the column is there, empty
            df.insert(int(df.columns.get_loc("flags")) + 1, "label", self.label)
        return df


@_api
def analyze(
    model: Model,
    path: PathLike,
    *,
    window: float = 4.0,
    stride: float = 2.0,
    segments: Optional[PathLike] = None,
    detector: Optional[PathLike] = None,
    boxes: Optional[PathLike] = None,
    prompts: Union[str, Sequence[str]] = "basic",
    templates: Optional[Sequence[str]] = None,
    head: Union[None, PathLike, Sequence[PathLike]] = None,
    persons: bool = True,
    batch_size: int = 8,
    progress: Progress = None,
) -> VideoAnalysis:
    """Analyses one video window by window, as ``emoclip analyze`` (without writing files).

    window, stride: fixed windows in seconds (``--window --stride``); segments: a CSV/JSON(L) file of explicit
        windows instead (``--segments``).
    detector: a YOLO ONNX person detector (needs libonnxruntime, ``ORT_DYLIB_PATH``); boxes: a box file for the
        video or a directory of ``<stem>.boxes.json`` (``--boxes`` / ``--boxes-dir``); none: the scene only.
    prompts: prompt sets ("basic", "emotic", "sentiment" or prompts files), one or a list; templates replace
        their templates. head: one or more ``*.head.json`` files (``--head``).
    persons: encode each tracked person as well as the scene. batch_size: clips per forward pass (``--batch``).
    """
    box_file = box_dir = None
    if boxes is not None:
        if os.path.isdir(boxes):
            box_dir = os.fspath(boxes)
        else:
            box_file = os.fspath(boxes)
    if isinstance(prompts, (str, os.PathLike)):
        prompts = [prompts]
    heads = [] if head is None else [head] if isinstance(head, (str, os.PathLike)) else list(head)
    cb, bar = _progress(progress, "windows")
    try:
        d = _native._analyze(
            model._m,
            os.fspath(path),
            window=window,
            stride=stride,
            segments=None if segments is None else os.fspath(segments),
            detector=None if detector is None else os.fspath(detector),
            boxes=box_file,
            boxes_dir=box_dir,
            prompts=[os.fspath(p) for p in prompts],
            templates=None if templates is None else list(templates),
            heads=[os.fspath(h) for h in heads],
            persons=persons,
            batch_size=batch_size,
            progress=cb,
        )
    finally:
        if bar is not None:
            bar.close()
    names = [s[0] for s in d["sources"]]
    return VideoAnalysis(
        path=os.fspath(d["path"]),
        video_id=d["video_id"],
        duration=d["duration"],
        frame_size=tuple(d["frame_size"]),
        window=d["window"],
        t_start=d["t_start"],
        t_end=d["t_end"],
        subject=d["subject"],
        mean_box=d["mean_box"],
        frames_with_box=d["frames_with_box"],
        flags=d["flags"],
        label=list(d["label"]),
        sources={s[0]: list(s[1]) for s in d["sources"]},
        source_kinds={s[0]: s[2] for s in d["sources"]},
        scores=dict(zip(names, d["scores"])),
        embeddings=d["embeddings"],
        embedding_window=d["embedding_window"],
        embedding_subject=d["embedding_subject"],
        warnings=list(d["warnings"]),
        stats=json.loads(d["stats"]) if d["stats"] else {},
    )


# ----------------------------------------------------------------------------------------------------------
# heads


class Head:
    """A linear head saved by ``emoclip probe --save-head`` (``*.head.json``). Create it with
    :func:`load_head`."""

    __slots__ = ("_h",)

    def __init__(self, native: Any):
        if not isinstance(native, _native.Head):
            raise TypeError("use emoclip.load_head(path) to create a Head")
        self._h = native

    @property
    def name(self) -> str:
        """e.g. ``meld/emotion``."""
        return self._h.name

    @property
    def task(self) -> str:
        """"logistic" (one label), "one_vs_rest" (multi-label) or "ridge" (regression)."""
        return self._h.task

    @property
    def labels(self) -> List[str]:
        """Class names (classification) or target names (regression)."""
        return self._h.labels

    @property
    def dim(self) -> int:
        """Feature dimension the head takes."""
        return self._h.dim

    @property
    def encoder_fingerprint(self) -> str:
        """Fingerprint of the encoder the head was fitted on."""
        return self._h.encoder_fingerprint

    def __repr__(self) -> str:
        return repr(self._h)

    def predict_proba(self, features: Any) -> np.ndarray:
        """scikit-learn's ``predict_proba`` on the (L2-normalised) features: float32 ``[N, C]`` class
        probabilities (``logistic``: rows sum to 1; ``one_vs_rest``: independent), or the regression values
        (``ridge``). A 1-D input gives a 1-D output."""
        x = _rows(features, "features")
        out = self._h._predict_proba(x)
        return out[0] if np.ndim(features) == 1 else out

    def predict(self, features: Any) -> np.ndarray:
        """scikit-learn's ``predict``: int64 class indices ``[N]`` (``logistic``; names in :attr:`labels`),
        bool ``[N, C]`` (``one_vs_rest``) or float32 ``[N, C]`` (``ridge``). A 1-D input gives one row."""
        x = _rows(features, "features")
        out = self._h._predict(x)
        return out[0] if np.ndim(features) == 1 else out


@_api
def load_head(path: PathLike) -> Head:
    """Reads a head file written by ``emoclip probe --save-head``."""
    return Head(_native.load_head(os.fspath(path)))
