"""The shared accuracy-control search as a pure function over a build-and-score callable."""

import pytest

from edgemed.compress.accuracy_control import revert_limit, revert_until_within

COST = {"b": 0.02, "a": 0.001}  # what quantizing each layer costs; the rest cost nothing


def builder():
    calls = []

    def build(float_layers):
        calls.append(list(float_layers))
        return 0.90 - sum(c for layer, c in COST.items() if layer not in float_layers), f"file{len(calls)}"

    return build, calls


def ranked():
    return list("bacdefgh"), revert_limit(8)


def test_reverts_most_sensitive_first_until_within():
    build, calls = builder()
    found = revert_until_within(build, keep=[], first=(0.879, "plain"), reference=0.90, max_drop=0.005, ranked=ranked)
    assert found.float_layers == ["b"] and found.score == pytest.approx(0.899) and calls == [["b"]]
    assert [a["by"] for a in found.attempts] == ["sensitivity-ranked revert"]


def test_unreachable_bound_keeps_and_rebuilds_the_best():
    build, calls = builder()
    found = revert_until_within(build, keep=["z"], first=(0.879, "plain"), reference=0.90, max_drop=0.0,
                                ranked=lambda: (list("zbacd"), 2))
    assert found.float_layers == ["z", "b", "a"] and found.score == pytest.approx(0.90)
    assert calls == [["z", "b"], ["z", "b", "a"]]  # never more than the limit, `keep` never reverted again


def test_learned_layers_first_and_ranking_only_when_needed():
    build, calls = builder()
    asked = []
    found = revert_until_within(build, keep=[], first=(0.879, "plain"), reference=0.90, max_drop=0.005,
                                ranked=lambda: asked.append(1) or ranked(), learned=["b"])
    assert calls == [["b"]] and not asked and found.float_layers == ["b"]
    build, calls = builder()
    found = revert_until_within(build, keep=[], first=(0.879, "plain"), reference=0.90, max_drop=0.005,
                                ranked=ranked, learned=["c"])
    assert calls == [["c"], ["b"]] and found.float_layers == ["b"] and found.result == "file2"


def test_the_plain_build_stays_when_nothing_helps():
    calls = []

    def worse(layers):
        calls.append(layers)
        return (0.8, "plain again") if not layers else (0.5, "worse")

    found = revert_until_within(worse, keep=[], first=(0.8, "plain"), reference=0.9, max_drop=0.0,
                                ranked=lambda: (["a", "b"], 2))
    # the attempts overwrote the plain file: it is built again, last
    assert found.result == "plain again" and found.float_layers == [] and calls == [["a"], ["a", "b"], []]
