"""Weights edgemed ships: FP16 edgemed checkpoints under edgemed/zoo/, made by
benchmarks/pretrained.py (never by hand), each recording its test metrics, data hash and the
command that trained it. Loading is an ordinary checkpoint load (no pickle)."""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import ModelError

ZOO = Path(__file__).resolve().parent.parent / "zoo"


def weights_path(model: str, dataset: str) -> Path:
    return ZOO / f"{model}-{dataset}.safetensors"


def available(model: str | None = None) -> dict[str, list[str]]:
    """{model: [data sets it has shipped weights for]}."""
    out: dict[str, list[str]] = {}
    for f in sorted(ZOO.glob("*.safetensors")):
        name, _, data = f.stem.partition("-")
        if data and (model is None or name == model):
            out.setdefault(name, []).append(data)
    return out


def pretrained_checkpoint(model: str, dataset: str | bool = True) -> Path:
    """The shipped checkpoint of `model` for `dataset` (True: its only one)."""
    from edgemed.models import get_entry

    get_entry(model)  # a registered name: never a path
    sets = available(model).get(model, [])
    if dataset is True:
        if len(sets) != 1:
            raise ModelError(f"{model} has {'no' if not sets else len(sets)} shipped weights"
                             + (f" ({', '.join(sets)}): name one with pretrained=DATASET" if sets else
                                ": models with weights are listed by `edgemed models` (pretrained column)"))
        dataset = sets[0]
    if dataset not in sets:  # only files found in the zoo folder: a name cannot reach outside it
        raise ModelError(f"no shipped weights for {model} on {dataset}"
                         + (f": it has {', '.join(sets)}" if sets else ": see `edgemed models` (pretrained column)"))
    return weights_path(model, dataset)
