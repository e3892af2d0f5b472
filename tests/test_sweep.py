"""Sweep planning: `--shard i/N` partitions a sweep's runs deterministically."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.sweep import Point, Shard, plan
from harness.tasks import load_tasks

TASKS = load_tasks("arithmetic/1_digit_addition,arithmetic/2_digit_addition,emoji_movie")
POINTS = [Point(f"pico-{size}", f"step{step}") for size in ("a", "b", "c")
          for step in (0, 1, 2, 4, 8)]
SHOTS = (0, 1)


def _runs(work) -> list[tuple[Point, str, int]]:
    return [(point, task.name, shots) for point, runs in work for task, shots in runs]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 30, 90, 100])
def test_shards_are_disjoint_and_their_union_is_the_serial_sweep(count):
    serial = _runs(plan(POINTS, TASKS, SHOTS))
    assert len(serial) == len(POINTS) * len(TASKS) * len(SHOTS) == 90
    shards = [_runs(plan(POINTS, TASKS, SHOTS, Shard(i, count))) for i in range(count)]
    seen = [run for shard in shards for run in shard]
    assert len(seen) == len(set(seen)) == len(serial)  # disjoint, nothing lost
    assert seen == serial  # contiguous blocks in the serial order
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_a_shard_is_the_same_on_every_call_and_loads_each_model_once():
    first = plan(POINTS, TASKS, SHOTS, Shard(1, 4))
    assert first == plan(POINTS, TASKS, SHOTS, Shard(1, 4))
    points = [point for point, _ in first]
    assert len(points) == len(set(points))
    # 90 runs in 4 blocks of 22-23 runs, 6 runs per checkpoint: 4 or 5 checkpoints each
    assert len(points) in (4, 5)


@pytest.mark.parametrize("text, expected", [("0/1", Shard(0, 1)), ("3/8", Shard(3, 8))])
def test_shard_parse(text, expected):
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["", "1", "2/2", "-1/4", "a/b", "1/0", "1/2/3", "0/-1"])
def test_bad_shard_is_one_clear_error(text):
    with pytest.raises(HarnessError, match=r"is not i/N with 0 <= i < N") as info:
        Shard.parse(text)
    assert "\n" not in str(info.value)
