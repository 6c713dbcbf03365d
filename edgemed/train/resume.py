"""Epoch-level resume for `fit`: after every epoch the whole training state (weights, the best
weights so far, AdamW moments, RNG states, feature-smoothing centres, the weight average,
counters, history) goes to one safetensors file, so a long run stopped by Ctrl-C or a closed session continues from its last
finished epoch and ends with the same weights an uninterrupted run would have. The file carries a
fingerprint of everything that shapes the result; a file from other settings is ignored."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from edgemed.fileio import atomic_path

FORMAT = "edgemed-fit-state/1"


@dataclass
class FitState:
    epoch: int
    step: int
    best: float
    best_epoch: int
    stale: int
    history: list[dict]
    elapsed_s: float
    model: dict
    best_model: dict | None
    optimizer: dict
    rng: dict
    extra: dict  # feature-smoothing centres; the weight average as ema.<name>
    precision: dict | None = None  # {"bf16", "probe"[, "fp32_from_epoch"]}: kept on resume (auto measured it)


def save_fit_state(path: Path, key: str, state: FitState) -> None:
    """Write the state atomically: an interruption during the write keeps the previous epoch's."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in state.model.items()}
    if state.best_model is not None:
        tensors.update({f"best.{k}": v for k, v in state.best_model.items()})
    tensors.update({f"rng.{k}": v for k, v in state.rng.items()})
    tensors.update({f"extra.{k}": v for k, v in state.extra.items()})
    for idx, slots in state.optimizer["state"].items():
        tensors.update({f"opt.{idx}.{name}": v for name, v in slots.items()})
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    meta = {"format": FORMAT, "fingerprint": key, "epoch": state.epoch, "step": state.step,
            "best": state.best, "best_epoch": state.best_epoch, "stale": state.stale,
            "history": state.history, "elapsed_s": state.elapsed_s, "precision": state.precision,
            "param_groups": state.optimizer["param_groups"]}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"edgemed_fit_state": json.dumps(meta)})


def load_fit_state(path: Path, key: str) -> FitState | None:
    """The saved state if it exists and was written by a fit with the same fingerprint."""
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("edgemed_fit_state", "{}"))
            if meta.get("format") != FORMAT or meta.get("fingerprint") != key:
                return None
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (OSError, ValueError, SafetensorError):
        return None  # a damaged file: start over rather than fail a long run
    groups: dict[str, dict] = {"model": {}, "best": {}, "rng": {}, "extra": {}, "opt": {}}
    for name, tensor in tensors.items():
        head, _, rest = name.partition(".")
        groups[head][rest] = tensor
    opt_state: dict[int, dict] = {}
    for name, tensor in groups["opt"].items():
        idx, _, slot = name.partition(".")
        opt_state.setdefault(int(idx), {})[slot] = tensor
    return FitState(epoch=meta["epoch"], step=meta["step"], best=meta["best"], best_epoch=meta["best_epoch"],
                    stale=meta["stale"], history=meta["history"], elapsed_s=meta["elapsed_s"],
                    model=groups["model"], best_model=groups["best"] or None,
                    optimizer={"state": opt_state, "param_groups": meta["param_groups"]},
                    rng=groups["rng"], extra=groups["extra"], precision=_precision(meta.get("precision")))


def _precision(p) -> dict | None:
    """A state's precision choice, if it is one: the file is ours, but it sits in the user's folder
    and its probe goes into the checkpoint, so only its known small fields are kept."""
    if not (isinstance(p, dict) and isinstance(p.get("bf16"), bool)):
        return None
    switched = p.get("fp32_from_epoch")  # auto's bf16 given up on a resume without native bf16
    switched = ({"fp32_from_epoch": switched} if type(switched) is int and 0 < switched < 10**6 and not p["bf16"]
                else {})
    probe = p.get("probe") if isinstance(p.get("probe"), dict) else {}
    if isinstance(probe.get("skipped"), str) and len(probe["skipped"]) <= 200:  # a run too short to time
        return {"bf16": p["bf16"], "probe": {"skipped": probe["skipped"]}, **switched}
    numbers = {k: float(v) for k, v in probe.items()
               if k in ("fp32_ms_per_step", "bf16_ms_per_step", "margin") and isinstance(v, (int, float))
               and not isinstance(v, bool) and math.isfinite(v) and 0 < v < 1e7}
    return {"bf16": p["bf16"], "probe": numbers if len(numbers) == 3 else None, **switched}
