"""The Parquet results index: one row per run, replaced in place, safe under parallel shards."""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
from pathlib import Path

import pytest

from harness import index
from harness.errors import HarnessError
from harness.results import run_dir

REPO = Path(__file__).resolve().parents[1]
# One committed summary (a real pico run) as the template the tests vary.
TEMPLATE = json.loads(next((REPO / "results" / "runs").glob(
    "pico-*@step*/arithmetic/2_digit_addition/shots0/summary.json")).read_text())


def _summary(revision: str, task: str = "arithmetic/2_digit_addition",
             exact: float = 0.25) -> dict:
    summary = copy.deepcopy(TEMPLATE)
    summary["model"]["revision"] = revision
    summary["task"]["name"] = task
    summary["metrics"]["exact_str_match"]["mean"] = exact
    return summary


def _write_run(out: Path, summary: dict) -> Path:
    folder = run_dir(out, summary["model"], summary["task"]["name"], summary["shots"])
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_row_carries_identity_scale_provenance_and_every_metric():
    row = index.row(TEMPLATE, "runs/x")
    model = TEMPLATE["model"]
    assert row["run_dir"] == "runs/x" and row["model"] == model["name"]
    assert row["weights_fingerprint"] == model["weights_fingerprint"]
    assert row["task_sha256"] == TEMPLATE["task"]["sha256"]
    assert row["non_embedding_params"] == model["non_embedding_params"]
    assert row["step"] == int(model["revision"].removeprefix("step"))
    assert row["git_commit"] == TEMPLATE["provenance"]["git"]["commit"]
    for metric, entry in TEMPLATE["metrics"].items():
        for field in ("mean", "ci_low", "ci_high"):
            value = row[f"{metric}.{field}"]
            assert value == entry[field] or (math.isnan(value) and math.isnan(entry[field]))


def test_update_inserts_then_replaces_rows_in_place(tmp_path):
    assert index.update(tmp_path, [_summary("step1"), _summary("step2")]) == 2
    assert index.update(tmp_path, [_summary("step2", exact=0.75)]) == 2
    frame = index.load(tmp_path).set_index("revision")
    assert sorted(frame.index) == ["step1", "step2"]
    assert frame.loc["step2", "exact_str_match.mean"] == 0.75
    assert frame.loc["step1", "exact_str_match.mean"] == 0.25


def test_runs_with_other_metrics_get_null_columns(tmp_path):
    fewer = _summary("step3")
    fewer["metrics"] = {"target_logprob": fewer["metrics"]["target_logprob"]}
    index.update(tmp_path, [fewer])
    index.update(tmp_path, [_summary("step4")])
    frame = index.load(tmp_path).set_index("revision")
    assert math.isnan(frame.loc["step3", "exact_str_match.mean"])
    assert frame.loc["step4", "exact_str_match.mean"] == 0.25


def test_rebuild_from_run_folders_equals_incremental_updates(tmp_path):
    summaries = [_summary(f"step{k}", exact=k / 10) for k in range(5)]
    for summary in summaries:
        _write_run(tmp_path / "a", summary)
        index.update(tmp_path / "b", [summary])
    assert index.rebuild(tmp_path / "a") == 5
    rebuilt = index.load(tmp_path / "a").sort_values("run_dir").reset_index(drop=True)
    updated = index.load(tmp_path / "b").sort_values("run_dir").reset_index(drop=True)
    assert list(rebuilt["run_dir"]) == list(updated["run_dir"])
    assert list(rebuilt["exact_str_match.mean"]) == [k / 10 for k in range(5)]
    assert rebuilt.equals(updated[rebuilt.columns])


def _update_many(out: str, first: int) -> None:
    for k in range(first, first + 10):
        index.update(Path(out), [_summary(f"step{k}")])


def test_parallel_writers_lose_no_rows(tmp_path):
    # shards of one sweep update the same index at once; without the lock, a writer's
    # read-modify-write overwrites another's rows
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_update_many, args=(str(tmp_path), 100 * w))
               for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(index.load(tmp_path)) == 40


def test_missing_or_damaged_index_is_one_clear_error(tmp_path):
    with pytest.raises(HarnessError, match=r"no index at .*; run `harness index"):
        index.load(tmp_path)
    (tmp_path / index.INDEX_FILE).write_bytes(b"not parquet")
    with pytest.raises(HarnessError, match=r"not a readable Parquet index") as info:
        index.load(tmp_path)
    assert "\n" not in str(info.value)


def test_records_keep_none_and_columns_are_checked(tmp_path):
    no_step = _summary("main")
    no_step["model"]["name"] = "someone/else"
    index.update(tmp_path, [no_step, _summary("step5")])
    rows = {r["revision"]: r for r in index.records(tmp_path, ["revision", "step", "family"])}
    assert rows["main"]["step"] is None and rows["step5"]["step"] == 5
    assert set(rows["main"]) == {"revision", "step", "family"}
    with pytest.raises(HarnessError, match=r"has no column\(s\) \['nope'\]"):
        index.load(tmp_path, ["nope"])


def test_the_registry_is_the_one_place_that_knows_a_models_family():
    from harness.models.registry import resolve

    source = resolve("pico-16k", "step64")
    family = json.loads((REPO / "families" / "pico" / "family.json").read_text())
    per_step = family["recipe"]["batch_size"] * family["recipe"]["seq_len"]
    assert source.lineage.to_json() == {"family": "pico", "size": "pico-16k", "step": 64,
                                        "tokens_seen": 64 * per_step}
    # the index reads the same lineage back from a stored record (a portable source path)
    stored = {"name": "pico-16k", "revision": "step64", "source": "families/pico/pico-16k/step64"}
    assert index.family_info(stored) == source.lineage.to_json()
    pythia = resolve("pythia-410m-deduped", "main").lineage
    assert (pythia.family, pythia.size, pythia.step) == ("pythia-deduped", "410m", 143000)
    assert pythia.tokens_seen == 143000 * 2_097_152
    assert index.family_info({"name": "smollm2-135m", "revision": "main", "source": "x.gguf"}) == {
        "family": "ladder", "size": "smollm2-135m", "step": None, "tokens_seen": None}
    assert index.family_info({"name": "x", "revision": "main", "source": "x.gguf"})["family"] is None
