"""Type stub of the native module `emoclip._emoclip` (Rust, PyO3). The public API is the `emoclip` package
(`emoclip/__init__.py`), which wraps these classes; call them directly only if you need the raw layer."""
from os import PathLike
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class EmoclipWarning(UserWarning):
    """Warnings from the emoclip library (random weights, person boxes outside the frame, skipped inputs)."""

_Path = Union[str, PathLike[str]]
_BoxSource = Optional[Tuple[str, str]]  # ("file", path) or ("json", text)

class Model:
    """A loaded encoder with its preprocessing (see `emoclip.Model`)."""

    @staticmethod
    def load(
        weights: str,
        config: Optional[str] = None,
        model: str = "emotionclip",
        device: str = "cpu",
        dtype: str = "f32",
        threads: Optional[int] = None,
        norm: str = "imagenet",
        frames: int = 8,
    ) -> "Model":
        """Loads weights (a path, `hf:<org>/<name>` or `random[:CONFIG][@SEED]`); GIL released, Ctrl-C aware."""
    @property
    def embed_dim(self) -> int:
        """Embedding dimension D."""
    @property
    def logit_scale(self) -> float:
        """`exp(logit_scale)`."""
    @property
    def image_size(self) -> int:
        """Model input size in pixels."""
    @property
    def frames(self) -> int:
        """Frames sampled per clip."""
    @property
    def context_length(self) -> int:
        """Text context length in tokens."""
    @property
    def threads(self) -> Optional[int]:
        """Size of the model's own thread pool, None for the shared pool."""
    def _encode(
        self,
        items: Sequence[Union[_Path, npt.NDArray[np.uint8]]],
        kind: str,
        boxes: Optional[Sequence[_BoxSource]] = None,
        boxes_dir: Optional[_Path] = None,
        masks: Optional[Sequence[Optional[npt.NDArray[np.float32]]]] = None,
        batch_size: int = 4,
        errors: str = "raise",
        progress: Optional[Callable[[int, int], object]] = None,
    ) -> npt.NDArray[np.float32]:
        """Embeds paths or uint8 frames (`kind`: "video", "image" or "any"); float32 `[N, D]`."""
    def _encode_text(self, texts: List[str], truncation: str = "eot") -> npt.NDArray[np.float32]:
        """Embeds texts; float32 `[N, D]`."""
    def _similarity(
        self, media: npt.NDArray[np.float32], text: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """`exp(logit_scale) · cos`, float32 `[N, P]`."""
    def _zero_shot(
        self,
        media: npt.NDArray[np.float32],
        prompts: Optional[List[str]],
        templates: Optional[List[str]] = None,
        prompt_set: Optional[str] = None,
    ) -> Tuple[List[str], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(labels, scores, probs) of media embeddings against prompts or a prompt set."""

class Head:
    """A linear head saved by `emoclip probe --save-head` (see `emoclip.Head`)."""

    @property
    def name(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def dim(self) -> int: ...
    @property
    def encoder_fingerprint(self) -> str: ...
    def _predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """`[N, D]` → float32 `[N, C]`."""
    def _predict(self, x: npt.NDArray[np.float32]) -> np.ndarray:
        """`[N, D]` → int64 `[N]`, bool `[N, C]` or float32 `[N, C]` by task."""

def load_head(path: _Path) -> Head:
    """Reads a `*.head.json` file."""

def _take_warnings() -> List[str]:
    """The library warnings collected since the last call (the `emoclip` layer emits them as EmoclipWarning)."""

def _analyze(
    model: Model,
    path: str,
    window: float = 4.0,
    stride: float = 2.0,
    segments: Optional[str] = None,
    detector: Optional[str] = None,
    boxes: Optional[str] = None,
    boxes_dir: Optional[str] = None,
    prompts: List[str] = ...,
    templates: Optional[List[str]] = None,
    heads: List[str] = ...,
    persons: bool = True,
    batch_size: int = 8,
    progress: Optional[Callable[[int, int], object]] = None,
) -> dict:
    """One video through the library's Analyzer; a dict of arrays (see `emoclip.analyze`)."""
