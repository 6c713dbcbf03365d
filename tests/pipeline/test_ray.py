"""Sweeps on a local Ray instance (ray.init with this machine's cores): the tiny optimize search
and a two-recipe sweep, each task recording the host it ran on, timing kept in this process."""

import json
import os
import socket

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.export import load_bundle
from tests.conftest import assert_clean_error, needs_data

pytestmark = [needs_data, pytest.mark.filterwarnings("ignore")]
pytest.importorskip("ray")

RECIPE = """\
name: {name}
model: {{zoo: resnet18_micro}}
dataset: breastmnist
threads: 1
stages:
  train: {{epochs: 1, batch_size: 32, limit_train: 96, limit_eval: 48, seed: {seed}}}
  export: {{formats: [onnx], precision: [fp32], parity_images: 16}}
  bench: {{threads: 1, iterations: 10, limit: 48, memory: false, large_batch: 0}}
  report: {{}}
"""


def test_optimize_builds_candidates_as_ray_tasks(tiny_checkpoint, tmp_path):
    from edgemed.compress.calibration import build_calibration
    from edgemed.pipeline.optimize import optimize

    calib = build_calibration("pneumoniamnist", size=32, out=tmp_path / "c.json")
    r = optimize(tiny_checkpoint, max_drop=2.0, budget_minutes=8, out=tmp_path / "opt", calib=calib,
                 formats=["onnx"], prune_levels=(None,), presets=("performance",), threads=(1,), rounds=10,
                 val_limit=64, workers=2, progress=False, executor="ray")
    s = json.loads((r.out / "optimize.json").read_text())
    assert s["candidates"] and all(c["ok"] for c in s["candidates"])
    # each candidate ran in a Ray worker process on this host; the timing ran here
    assert {c["host"] for c in s["candidates"]} == {socket.gethostname()}
    assert os.getpid() not in {c["pid"] for c in s["candidates"]}
    assert all(p["p50_ms"] > 0 for p in s["points"])
    assert load_bundle(r.out / "recommended").recommended == r.recommended["artifact"]


def test_two_recipes_build_on_ray_and_bench_here(tmp_path):
    recipes = []
    for i, name in enumerate(("sweep_a", "sweep_b")):
        recipes.append(tmp_path / f"{name}.yaml")
        recipes[-1].write_text(RECIPE.format(name=name, seed=i))
    r = CliRunner().invoke(app, ["run", *map(str, recipes), "--executor", "ray", "--run-dir", str(tmp_path / "runs"),
                                 "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert r.output.count(f"built on {socket.gethostname()}") == 2
    for name in ("sweep_a", "sweep_b"):
        run = tmp_path / "runs" / name
        stages = {s: json.loads((run / s / "stage.json").read_text()) for s in ("train", "export", "bench", "report")}
        # the build stages ran once (in the task) and were reused here; bench and report ran here
        assert all(stages[s]["status"] == "done" for s in stages)
        assert (run / "report" / "report" / "report.html").is_file()
    assert "skipped (cached)" in r.output


def test_bad_executor_and_duplicate_names_fail_before_work(tmp_path, tiny_checkpoint):
    from edgemed.pipeline.optimize import optimize
    from edgemed.pipeline.sweep import run_sweep

    with pytest.raises(EdgemedError, match="unknown --executor 'dask'"):
        optimize(tiny_checkpoint, executor="dask", out=tmp_path / "o", progress=False)
    a = tmp_path / "a.yaml"
    a.write_text(RECIPE.format(name="same", seed=0))
    b = tmp_path / "b.yaml"
    b.write_text(RECIPE.format(name="same", seed=1))
    with pytest.raises(EdgemedError, match="two recipes share the name 'same'"):
        run_sweep([a, b], root=tmp_path / "runs", executor="ray")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "o").exists()
    assert_clean_error(CliRunner().invoke(app, ["run", str(a), "--executor", "dask"]), "unknown --executor 'dask'")
    # the worker count, and a cluster that does not answer, are said at once (ray.init retried an
    # unreachable address for minutes, printing as it went)
    for workers in (0, -1):
        with pytest.raises(EdgemedError, match="--workers must be a whole number from 1"):
            optimize(tiny_checkpoint, workers=workers, out=tmp_path / "o", progress=False)
        assert_clean_error(CliRunner().invoke(app, ["run", str(a), str(b), "--executor", "ray", "--workers",
                                                    str(workers)]), "--workers must be")
    import time

    t0 = time.monotonic()
    with pytest.raises(EdgemedError, match="cannot reach the Ray cluster at 127.0.0.1:1 .*ray start --head"):
        optimize(tiny_checkpoint, executor="ray", ray_address="127.0.0.1:1", out=tmp_path / "o", progress=False)
    assert time.monotonic() - t0 < 30
    from edgemed.pipeline.executors import check_executor

    for address in ("myhost", "10.0.0.5", "host:port"):  # said as what it is, not as a failed connection
        with pytest.raises(EdgemedError, match="is not HOST:PORT"):
            check_executor("ray", 2, address)
    for address in ("auto", "local", "ray://10.0.0.5:10001"):  # Ray's own keywords and client URLs pass
        check_executor("ray", 2, address)
    with pytest.raises(EdgemedError, match=r"cannot reach the Ray cluster at \[::1\]:1 "):
        check_executor("ray", 2, "[::1]:1")  # IPv6 in brackets, as Ray prints it
    with pytest.raises(EdgemedError, match="--ray-address needs --executor ray"):
        optimize(tiny_checkpoint, ray_address="127.0.0.1:1", out=tmp_path / "o", progress=False)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "o").exists()


def test_a_failure_on_a_worker_is_the_workers_own_line():
    """Ray wraps a task's exception in a class that also subclasses the original (so it is caught
    as an EdgemedError) and whose text is the worker's traceback: the user sees the original line."""
    from ray.exceptions import RayTaskError

    from edgemed.errors import CheckpointError
    from edgemed.pipeline.executors import worker_error

    cause = CheckpointError("m.safetensors: weight x holds NaN or infinite values: the file is damaged")
    wrapped = RayTaskError("_ray_task", "Traceback (most recent call last):\n  File ...\n", cause).as_instanceof_cause()
    assert isinstance(wrapped, EdgemedError) and "File ..." in str(wrapped)  # the worker's traceback
    assert worker_error(wrapped) == str(cause)
    assert worker_error(RayTaskError("f", "Traceback ...\nValueError: bad", ValueError("bad"))) == "bad"


def test_two_recipes_build_on_two_nodes_of_a_cluster(tmp_path):
    """A real two-node cluster (a head and a worker node, one CPU each, on this machine, as
    `ray start --head` and `ray start --address` would make): each recipe's build runs on its own
    node, reached through the address, and every task says which node it ran on."""
    from ray.cluster_utils import Cluster

    from edgemed.pipeline.sweep import run_sweep

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                             "object_store_memory": 96 * 2**20})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=96 * 2**20)
        cluster.wait_for_nodes()
        recipes = []
        for i, name in enumerate(("node_a", "node_b")):
            recipes.append(tmp_path / f"{name}.yaml")
            recipes[-1].write_text(RECIPE.format(name=name, seed=i))
        done = run_sweep(recipes, root=tmp_path / "runs", executor="ray", address=cluster.address)
        nodes = {o.node for o in done}
        assert None not in nodes and len(nodes) == 2, nodes  # one build per node
        assert {o.node for o in done} <= {n["NodeID"] for n in _alive_nodes(cluster)}
        assert all(s.status in ("done", "skipped (cached)") for o in done for s in o.result.stages)
    finally:
        cluster.shutdown()


def _alive_nodes(cluster) -> list[dict]:
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        return [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
