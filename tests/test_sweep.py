"""Sweep planning: one plan of RunSpecs, and `--shard i/N` partitions it deterministically."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.plan import EvalSettings, ModelOptions, Point, Shard, by_checkpoint, plan
from harness.sweep import expand

SETTINGS = EvalSettings(tasks=("arithmetic/1_digit_addition", "arithmetic/2_digit_addition",
                               "emoji_movie"), shots=(0, 1), limit=5)
POINTS = expand(models="pico-16k,pico-56k,pico-232k", revisions="all")[:15]
N_TASKS = 3


def _runs(specs) -> list[tuple[Point, str, int]]:
    return [(spec.point, spec.task.name, spec.shots) for spec in specs]


def _plan(shard: Shard | None = None):
    return plan(SETTINGS, POINTS, ModelOptions(), shard or Shard())


@pytest.mark.parametrize("count", [1, 2, 3, 7, 30, 90, 100])
def test_shards_are_disjoint_and_their_union_is_the_serial_sweep(count):
    serial = _runs(_plan())
    assert len(POINTS) == 15
    assert len(serial) == len(POINTS) * N_TASKS * len(SETTINGS.shots) == 90
    shards = [_runs(_plan(Shard(i, count))) for i in range(count)]
    seen = [run for shard in shards for run in shard]
    assert len(seen) == len(set(seen)) == len(serial)  # disjoint, nothing lost
    assert seen == serial  # contiguous blocks in the serial order
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_a_shard_is_the_same_on_every_call_and_loads_each_model_once():
    first = by_checkpoint(_plan(Shard(1, 4)))
    assert first == by_checkpoint(_plan(Shard(1, 4)))
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


def test_a_spec_carries_its_prompts_folder_and_identity():
    spec = _plan()[0]
    assert spec.n_examples == 5 and len(spec.resume_keys) == 5
    assert spec.folder.as_posix().endswith(f"runs/{spec.model}@{spec.revision}/"
                                          f"{spec.task.name}/shots0")
    identity = spec.identity({**spec.model_record(), "weights_fingerprint": "w",
                              "tokenizer_fingerprint": "t"})
    assert identity["dtype"] == "float32" and identity["task_sha256"] == spec.task.sha256
    assert "shot_seed" not in identity  # BIG-bench's seed: identities as they always were
    other = plan(EvalSettings(tasks=SETTINGS.tasks, shots=(1,), limit=5, shot_seed=7),
                 POINTS[:1])[0]
    assert other.identity({**spec.model_record(), "weights_fingerprint": "w",
                           "tokenizer_fingerprint": "t"})["shot_seed"] == 7


def test_the_shot_seed_reaches_the_prompts():
    seeded = {seed: plan(EvalSettings(tasks=("emoji_movie",), shots=(1,), limit=5,
                                      shot_seed=seed), POINTS[:1])[0] for seed in (42, 7)}
    assert seeded[42].resume_keys != seeded[7].resume_keys
    default = plan(EvalSettings(tasks=("emoji_movie",), shots=(1,), limit=5), POINTS[:1])[0]
    assert seeded[42].resume_keys == default.resume_keys  # 42 is the default


@pytest.mark.parametrize("settings, message", [
    (EvalSettings(tasks=("emoji_movie",), shots=(100,)), "too many for emoji_movie"),
    (EvalSettings(tasks=("emoji_movie",), limit=0), "must be 1 or more"),
    (EvalSettings(tasks=("no_such_task",)), "no_such_task"),
])
def test_the_plan_is_where_bad_settings_fail(settings, message):
    with pytest.raises(HarnessError, match=message):
        plan(settings, POINTS[:1])


def test_a_bad_checkpoint_fails_before_any_task_is_read():
    with pytest.raises(HarnessError, match="pico-16k has no revision"):
        plan(EvalSettings(tasks=("no_such_task",)), [Point("pico-16k", "step999999")])


def test_a_spec_travels_whole_to_another_process():
    """A scheduler (Ray, a job) pickles specs: everything a run needs comes along."""
    import pickle

    for spec in _plan()[:6]:
        copy = pickle.loads(pickle.dumps(spec))
        assert copy == spec and copy.prompts == spec.prompts
        assert copy.resume_keys == spec.resume_keys and copy.folder == spec.folder
