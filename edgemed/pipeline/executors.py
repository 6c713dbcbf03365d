"""Where build work runs: local worker processes, or tasks on a Ray cluster (`--executor ray`).

Both pools hand back `concurrent.futures.Future`s, so `optimize` and the recipe sweep wait on
them the same way. The work functions (`optimize.evaluate_candidate`, `sweep.build_stages`) read
and write only files under folders they are given: on a cluster those folders must be on storage
every node mounts at the same path, and every node needs edgemed and the data (EDGEMED_DATA_DIR
is passed on to the tasks). Latency is never measured in the pool: the interleaved timing stays
on the machine that runs the command (the target).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import re
import socket
from contextlib import contextmanager

from edgemed.errors import EdgemedError, missing_extra

EXECUTORS = ("local", "ray")


_RAY_NODE: str | None = None  # in a Ray task: the node it runs on


def where() -> dict:
    """The host and process a piece of work ran in (recorded with every task's result), and in a
    Ray task its node: nodes can share a host name (containers, a test cluster on one machine)."""
    out = {"host": socket.gethostname(), "pid": os.getpid()}
    if _RAY_NODE is not None:
        out["node"] = _RAY_NODE
    return out


def _ray_task(fn, *args):
    """`fn(*args)` as a Ray task that knows its node (a driver that merely uses Ray has none)."""
    global _RAY_NODE
    import ray

    _RAY_NODE = ray.get_runtime_context().get_node_id()
    return fn(*args)


def check_executor(executor: str, workers: int | None = None, address: str | None = None) -> None:
    """Everything about where the work runs that can be wrong, said before any work: the executor's
    name, the worker count, Ray installed, and a cluster address that answers (ray.init retries an
    unreachable one for minutes, printing as it goes)."""
    if executor not in EXECUTORS:
        raise EdgemedError(f"unknown --executor {executor!r}: use {', '.join(EXECUTORS)}")
    if workers is not None and (type(workers) is not int or not 1 <= workers <= 1024):
        raise EdgemedError(f"--workers must be a whole number from 1 to 1024; got {workers!r}")
    if executor != "ray":
        if address:
            raise EdgemedError("--ray-address needs --executor ray: add it, or leave the address out")
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise EdgemedError(str(missing_extra("Ray", "ray")) + " (on every node of the cluster)") from None
    if not address or address in ("auto", "local") or "://" in address:  # Ray's own keywords and client URLs
        return
    m = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", address)  # HOST:PORT, [IPv6]:PORT
    if not m:
        raise EdgemedError(f"--ray-address {address!r} is not HOST:PORT: pass the address `ray start --head` "
                           "prints (e.g. 10.0.0.5:6379), or auto")
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=5).close()
    except OSError as e:
        raise EdgemedError(f"cannot reach the Ray cluster at {address} ({e.__class__.__name__}: {e}): start it "
                           "with `ray start --head` and pass the HOST:PORT it prints (or leave --ray-address out "
                           "for a local instance)") from None


def worker_error(e: BaseException) -> str:
    """The worker's own one-line message. A Ray task error wraps it (and also subclasses its
    class, so it is caught as an EdgemedError) with the worker's traceback in its text."""
    cause = getattr(e, "cause", None) or e
    if isinstance(cause, EdgemedError):
        return str(cause).strip()[:500]
    return (str(cause).strip().splitlines() or [type(cause).__name__])[-1][:300]


@contextmanager
def worker_pool(executor: str = "local", workers: int = 1, address: str | None = None):
    """A pool with `submit(fn, *args, cpus=1) -> Future`. `address`: a running Ray cluster
    (`ray start --head` prints it; "auto" finds the local one); without it, Ray starts a private
    instance on this machine with `workers` CPUs."""
    check_executor(executor, workers, address)
    if executor == "local":
        # fresh interpreters: no forked torch/OpenMP state
        with futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield _LocalPool(pool)
        return
    import ray

    env = {k: os.environ[k] for k in ("EDGEMED_DATA_DIR", "EDGEMED_CONFIG_DIR") if k in os.environ}
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {
            "num_cpus": workers, "include_dashboard": False,
            # a private instance: a small object store (results are small; files stay on disk)
            "object_store_memory": 128 * 2**20}
        try:
            ray.init(log_to_driver=False, runtime_env={"env_vars": env} if env else None, **options)
        except ConnectionError as e:
            raise EdgemedError(f"cannot reach the Ray cluster at {address}: {e}; start it with `ray start --head` "
                               "and pass the address it prints (or leave --ray-address out for a local instance)") from None
    try:
        yield _RayPool(ray)
    finally:
        if started:
            ray.shutdown()


class _LocalPool:
    def __init__(self, pool):
        self._pool = pool

    def submit(self, fn, *args, cpus: int = 1) -> futures.Future:
        return self._pool.submit(fn, *args)


class _RayPool:
    def __init__(self, ray):
        self._ray = ray

    def submit(self, fn, *args, cpus: int = 1) -> futures.Future:
        return self._ray.remote(num_cpus=cpus, max_retries=0)(_ray_task).remote(fn, *args).future()
