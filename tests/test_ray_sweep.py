"""Sweeps on a real local Ray cluster: the same summaries as the serial sweep, also when a
worker dies mid-run (Ray retries its checkpoint, the run writer resumes it).

One cluster (`ray.init(num_cpus=2)`) serves the module; the mini family (3 sizes, trained
once per test session) is swept at two training steps on two arithmetic subtasks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from harness import index
from harness.cli import main
from harness.errors import HarnessError
from harness.runner import EvalSettings
from harness.sweep import expand, run_sweep

TASKS = ("arithmetic/1_digit_addition", "arithmetic/2_digit_addition")
REVISIONS = "step40,step120"
LIMIT = 6
CHUNK = 2  # examples per write: a worker killed after its first write leaves a partial run
VICTIM = "mini-56k"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def families(mini_family, monkeypatch) -> Path:
    # the driver's HARNESS_* variables travel with every Ray task to its worker
    monkeypatch.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
    return mini_family


def _settings(out: Path) -> EvalSettings:
    return EvalSettings(tasks=TASKS, limit=LIMIT, out=out, chunk_size=CHUNK)


def _sweep_argv(out: Path, *extra: str) -> list[str]:
    return ["sweep", "--family", "mini", "--revisions", REVISIONS, "--tasks", ",".join(TASKS),
            "--limit", str(LIMIT), "--chunk-size", str(CHUNK), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def serial(mini_family, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_FAMILIES_DIR", str(mini_family.parent))
        run_sweep(expand(family="mini", revisions=REVISIONS), _settings(out), progress=False)
    return out


def _numbers(root: Path) -> dict[str, tuple[int, dict]]:
    """Each run's n and every metric's mean and CI (not timings or provenance)."""
    numbers = {}
    for path in root.glob("runs/**/summary.json"):
        summary = json.loads(path.read_text())
        metrics = {f"{m}.{field}": e[field] for m, e in summary["metrics"].items()
                   for field in ("mean", "ci_low", "ci_high")}
        numbers[path.parent.relative_to(root).as_posix()] = (summary["n"], metrics)
    return numbers


def _assert_same_numbers(root: Path, serial: Path) -> None:
    expected, got = _numbers(serial), _numbers(root)
    assert len(expected) == 3 * 2 * len(TASKS)
    assert set(got) == set(expected)
    for run, (n, metrics) in expected.items():
        assert got[run][0] == n, run
        assert got[run][1] == pytest.approx(metrics, nan_ok=True, rel=1e-6, abs=1e-9), run


def test_distributed_sweep_equals_the_serial_one(ray_cluster, families, serial, tmp_path, capsys):
    assert main(_sweep_argv(tmp_path, "--ray")) == 0
    assert f"{3 * 2 * len(TASKS)} run(s) evaluated" in capsys.readouterr().out
    _assert_same_numbers(tmp_path, serial)
    frame = index.load(tmp_path)  # one row per run, added as each checkpoint finished
    assert sorted(frame["run_dir"]) == sorted(_numbers(serial))
    # a second sweep finds every checkpoint finished and submits nothing
    assert main(_sweep_argv(tmp_path, "--ray")) == 0
    assert "0 run(s) evaluated" in capsys.readouterr().out


def test_a_killed_worker_is_retried_and_resumes_without_duplicates(ray_cluster, families,
                                                                   serial, tmp_path):
    from harness.ray_sweep import RayOptions, run_sweep_ray
    from harness.sweep import run_checkpoint

    marker = tmp_path / "killed"

    def dies_once(specs):
        """The real unit, except that the first worker to run one of VICTIM's checkpoints
        exits abruptly (as the OOM killer would) once its first chunk is on disk."""

        class Bar:
            written = 0

            def update(self, n: int) -> None:
                self.written += n
                if specs[0].point.model != VICTIM or self.written < CHUNK:
                    return
                try:  # created by exactly one worker, even when two race
                    handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return
                os.write(handle, specs[0].point.revision.encode())
                os.close(handle)
                os._exit(1)

            def set_postfix_str(self, *args, **kwargs) -> None:
                pass

        return run_checkpoint(specs, Bar())

    out = tmp_path / "out"
    summaries = run_sweep_ray(expand(family="mini", revisions=REVISIONS), _settings(out),
                              cluster=RayOptions(max_retries=2), progress=False, unit=dies_once)
    assert marker.exists()  # a worker did die mid-run
    assert len(summaries) == 3 * 2 * len(TASKS)
    _assert_same_numbers(out, serial)
    for examples in out.glob("runs/**/examples.jsonl"):
        indices = [json.loads(line)["idx"] for line in examples.read_text().splitlines()]
        assert len(indices) == len(set(indices)) == LIMIT, examples
    # the killed run was resumed, not restarted: its one finished session reused the chunk
    # the dead worker had written
    first_run = out / "runs" / f"{VICTIM}@{marker.read_text()}" / TASKS[0] / "shots0"
    sessions = json.loads((first_run / "manifest.json").read_text())["sessions"]
    assert [(s["reused_examples"], s["new_examples"]) for s in sessions] == [(CHUNK, LIMIT - CHUNK)]


def test_a_worker_that_always_dies_is_one_clear_error(ray_cluster, families, tmp_path):
    from harness.ray_sweep import RayOptions, run_sweep_ray

    def always_dies(specs):
        os._exit(1)

    with pytest.raises(HarnessError, match=r"mini-5k@step40: its Ray task failed .*rerun"):
        run_sweep_ray(expand(models="mini-5k", revisions="step40"), _settings(tmp_path),
                      cluster=RayOptions(max_retries=0), progress=False, unit=always_dies)


def test_each_checkpoint_gets_as_many_torch_threads_as_cpus(ray_cluster, families, tmp_path):
    from harness.ray_sweep import RayOptions, run_sweep_ray

    def records_threads(specs):
        import torch

        spec = specs[0]
        (spec.settings.out / f"{spec.point.revision}.threads").write_text(
            str(torch.get_num_threads()))
        return []

    settings = _settings(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    # idle workers are reused across these sweeps: each task must still get its CPUs' worth
    for cpus, revision in ((1, "step40"), (2, "step120"), (1, "step80")):
        run_sweep_ray(expand(models="mini-5k", revisions=revision), settings,
                      cluster=RayOptions(cpus_per_unit=cpus), progress=False,
                      unit=records_threads)
        assert (tmp_path / f"{revision}.threads").read_text() == str(cpus)


def test_asking_for_a_gpu_the_cluster_lacks_is_one_line(ray_cluster, families, tmp_path, capsys):
    assert main(_sweep_argv(tmp_path, "--ray", "--ray-gpus", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 GPU(s) but the cluster has 0" in err


def test_a_head_address_where_nothing_listens_is_one_line(ray_cluster, families, tmp_path,
                                                          capsys):
    assert main(_sweep_argv(tmp_path, "--ray", "127.0.0.1:1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no Ray head answers at 127.0.0.1:1" in err


def test_without_ray_installed_the_flag_says_how_to_get_it(families, tmp_path, capsys,
                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert main(_sweep_argv(tmp_path, "--ray")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "harness: error: --ray needs Ray: pip install 'emergence-harness[ray]'"
