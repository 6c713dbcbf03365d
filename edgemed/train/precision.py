"""`--precision auto`: bf16 autocast where it trains this model faster on this CPU, measured.

Native bf16 is no promise of speed. On a 2-core Intel Xeon with AMX, mednext_small trained at
28² and 128² 0.81-0.87x as fast in bf16 as in FP32 while convnext_med trained 1.39x (128²) to
2.03x (224²) as fast (benchmarks/results/train_precision.md). So auto times a few training steps
in both precisions before training and keeps bf16 only where it wins clearly."""

from __future__ import annotations

from collections.abc import Callable

BF16_MARGIN = 1.10  # bf16 must be this much faster than FP32: below it, its lower precision is not worth it
PROBE_STEPS = 3  # timed steps per precision, after one warm-up step each
PROBE_MIN_STEPS = 50  # a shorter run trains in FP32: the probe would cost too large a share of it


def has_bf16() -> bool:
    """True on CPUs with native bf16 (AVX512-BF16 / AMX): the only ones where auto tries bf16."""
    from edgemed.bench.system import isa_flags

    return bool({"avx512_bf16", "amx_bf16"} & set(isa_flags()))


def train_step(net, x, y, bf16: bool, teacher=None) -> Callable[[], None]:
    """One training step (forward, cross-entropy, backward, AdamW update) of a copy of `net` on the
    batch (x, y), as a callable: what the probe and benchmarks/train_precision time. With a
    distillation `teacher`, its forward pass too, in the same precision as training runs it."""
    import copy

    import torch
    import torch.nn.functional as F

    m = copy.deepcopy(net).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = m(x)
            if teacher is not None:
                with torch.no_grad():
                    teacher(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_ms(net, x, y, steps: int, warmup: int = 1, teacher=None) -> dict[str, float]:
    """Median ms per training step in FP32 and in bf16 autocast, timed in turns (the project's one
    timing rule, edgemed.bench.latency) on their own copies of the model."""
    from edgemed.bench.latency import interleaved, median_ms

    calls = {"fp32": train_step(net, x, y, False, teacher), "bf16": train_step(net, x, y, True, teacher)}
    return median_ms(interleaved(calls, warmup=warmup, iterations=steps, turn_seconds=0))


def prefers_bf16(ms: dict[str, float]) -> bool:
    return ms["fp32"] >= BF16_MARGIN * ms["bf16"]


def choose(requested: str, net, x, y, total_steps: int, teacher=None) -> tuple[bool, dict | None]:
    """(train in bf16?, what auto measured, or None where it measured nothing). An explicit
    fp32/bf16 is kept; auto is FP32 without native bf16 or for runs under PROBE_MIN_STEPS steps.
    A distillation teacher's forward pass is timed with the student's step: it can be the larger
    share of the step, and its best precision can differ.
    The probe leaves the global RNG as it found it (drop path draws from it), so the training that
    follows is what it would have been without the probe."""
    if requested != "auto":
        return requested == "bf16", None
    if not has_bf16():
        return False, None
    if total_steps < PROBE_MIN_STEPS:
        return False, {"skipped": f"{total_steps} steps < {PROBE_MIN_STEPS}: FP32"}
    import torch

    rng = torch.get_rng_state()
    try:
        ms = step_ms(net, x.contiguous(memory_format=torch.channels_last), y, PROBE_STEPS, teacher=teacher)
    finally:
        torch.set_rng_state(rng)
    return prefers_bf16(ms), {"fp32_ms_per_step": round(ms["fp32"], 1), "bf16_ms_per_step": round(ms["bf16"], 1),
                              "margin": BF16_MARGIN}
