"""Benchmark harness: latency, throughput, memory and accuracy of bundle artifacts (no torch)."""

from edgemed._verbs import callable_package

__all__ = ["bench"]


def bench(*args, **kwargs):
    """See edgemed.bench.harness.bench."""
    from edgemed.bench.harness import bench as _bench

    return _bench(*args, **kwargs)


callable_package(__name__, "edgemed.bench.harness:bench")
