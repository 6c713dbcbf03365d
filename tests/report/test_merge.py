"""Merging keeps bundles and data apart and puts devices of one bundle side by side."""

from edgemed.report.merge import merge
from tests.report.factory import real_results, variant

OTHER_SHA = "f" * 64


def sections(*results):
    return merge([(f"r{i}.json", r) for i, r in enumerate(results)]).sections


def test_devices_of_one_bundle_share_a_section():
    pi = variant(cpu="Raspberry Pi 5 Model B Rev 1.0", machine="aarch64", latency_scale=4.0)
    (s,) = sections(real_results(), pi)
    assert len(s.entries) == 8
    assert s.devices == ["AMD EPYC · cpu", "Raspberry Pi 5 Model B Rev 1.0 · cpu"]
    assert [e.source.run for e in s.entries] == ["R1"] * 4 + ["R2"] * 4


def test_bundles_datasets_splits_and_subsets_stay_apart():
    got = sections(real_results(), variant(bundle_sha=OTHER_SHA), variant(dataset="breastmnist"),
                   variant(split="val"), variant(n=100))
    assert len(got) == 5
    for s in got:  # every section holds the rows of exactly one file here
        assert len(s.entries) == 4 and len(s.sources) == 1
    assert got[1].bundle_sha256 == OTHER_SHA and got[0].bundle_sha256 != OTHER_SHA
    assert "breastmnist" in got[2].title and "val split" in got[3].title and "n = 100" in got[4].title


def test_rows_within_a_section_are_grouped_by_device_then_fastest_first():
    (s,) = sections(variant(cpu="Zeta CPU", latency_scale=0.5), real_results())
    assert [e.device for e in s.entries][:4] == ["AMD EPYC · cpu"] * 4
    p50 = [e.latency["p50"] for e in s.entries[:4]]
    assert p50 == sorted(p50)


def test_different_machines_with_one_cpu_name_get_distinct_labels():
    other = variant(machine="aarch64")
    (s,) = sections(real_results(), other)
    assert s.devices == ["AMD EPYC · cpu #1", "AMD EPYC · cpu #2"]


def test_the_same_run_given_twice_counts_once():
    m = merge([("a.json", real_results()), ("b.json", real_results())])
    assert len(m.entries) == 4 and "counted once" in m.notes[0]


def test_the_reference_row_is_found():
    (s,) = sections(real_results())
    assert [e.name for e in s.entries if e.is_reference] == ["torch-fp32"]
