"""reproduce and load_results: the experiment as `basin reproduce` runs it, its stored runs,
and an interrupted run that resumes."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

import basin


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig3") / "out"
    seen = []
    r = basin.reproduce("fig3-mnist", out=out, quick=True, jobs=2, progress=lambda d, t: seen.append((d, t)))
    return out, r, seen


def test_reproduce_returns_the_summary_it_writes(quick_run):
    out, r, seen = quick_run
    assert sorted(seen) == [(d, 6) for d in range(1, 7)]
    assert (r.computed, r.skipped) == (6, 0)
    assert r.out == str(out)
    with open(out / "summary.json") as f:
        assert json.load(f) == r.summary
    assert (out / "report.md").exists()
    assert any("runs" in line for line in r.highlights)


def test_load_results_gives_every_stored_run(quick_run):
    out, r, _ = quick_run
    runs = basin.load_results(out)
    assert len(runs) == 6
    with open(out / "results.jsonl") as f:
        stored = {json.loads(line)["id"] for line in f if line.strip()}
    assert {run["id"] for run in runs} == stored
    assert all(run["train_error"] == 0.0 for run in runs)
    frame = basin.load_results(out, as_frame=True)
    assert len(frame) == 6
    assert "measures.sharpness" in frame.columns
    assert sorted(frame["id"]) == sorted(run["id"] for run in runs)


def test_a_rerun_reuses_the_stored_runs(quick_run):
    out, r, _ = quick_run
    again = basin.reproduce("fig3-mnist", out=out, quick=True, jobs=1)
    assert (again.computed, again.skipped) == (0, 6)
    assert again.summary == r.summary


def test_ctrl_c_stops_a_run_that_then_resumes_to_the_same_summary(tmp_path, quick_run):
    _, whole, _ = quick_run
    out = tmp_path / "interrupted"
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            basin.reproduce("fig3-mnist", out=out, quick=True, jobs=1)
    finally:
        timer.cancel()
    resumed = basin.reproduce("fig3-mnist", out=out, quick=True, jobs=2)
    assert resumed.computed + resumed.skipped == 6
    assert resumed.summary == whole.summary


def test_an_unknown_spec_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="spec"):
        basin.reproduce("no-such-spec", out=tmp_path / "x")


def test_load_results_of_a_missing_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="missing is not a folder"):
        basin.load_results(tmp_path / "missing")
    assert basin.load_results(tmp_path) == []


def test_a_corrupt_store_is_a_basin_error(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"id": "a"}\n{"id": "b"}\n')
    with pytest.raises(basin.BasinError, match="results.jsonl, line 1: run a"):
        basin.load_results(tmp_path)
