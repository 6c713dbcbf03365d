"""Training and evaluation (needs the `train` extra: torch, safetensors)."""

from edgemed.train.evaluate import evaluate
from edgemed.train.loop import TrainResult, predict_logits, train

__all__ = ["TrainResult", "evaluate", "predict_logits", "train"]

from edgemed._verbs import callable_package  # noqa: E402

callable_package(__name__, "edgemed.train.loop:train")
