"""The family recipes: sizes, steps, data and optimiser settings, one frozen record each.

Pythia's scheme, shrunk: every size of a family sees the same data in the same order with the
same optimiser settings; sizes differ in depth and width (GPT-NeoX: rotary embeddings on all
head dimensions, parallel attention + MLP residual, untied input/output embeddings, MLP 4x);
checkpoints are kept at step0, powers of two, then evenly spaced steps up to the last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.errors import HarnessError
from harness.family.corpus import Mix


@dataclass(frozen=True)
class Size:
    name: str  # "pico-942k": total parameters, as Pythia names its models
    layers: int
    d_model: int
    heads: int
    init_seed: int | None = None  # None: the recipe's; a seed variant (`pico-s2-16k`) sets its own


@dataclass(frozen=True)
class Recipe:
    family: str
    style: str  # answer style of the corpus: "direct" or "scratchpad"
    sizes: tuple[Size, ...]
    steps: int
    batch_size: int
    seq_len: int  # characters (= tokens) per training row
    save_steps: tuple[int, ...]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    warmup_frac: float = 0.01
    final_lr_frac: float = 0.1  # cosine decay to this fraction of the peak
    grad_clip: float = 1.0
    data_seed: int = 20260
    init_seed: int = 1234
    eval_rows: int = 64
    max_positions: int = 2048
    mix: Mix = field(default_factory=Mix)

    def size(self, name: str) -> Size:
        for size in self.sizes:
            if size.name == name:
                return size
        known = ", ".join(s.name for s in self.sizes)
        raise HarnessError(f"family {self.family} has no size {name!r}; its sizes: {known}")

    def init_seed_of(self, size: Size) -> int:
        """The size's own initialisation seed (a seed variant's), else the recipe's."""
        return self.init_seed if size.init_seed is None else size.init_seed

    def to_json(self) -> dict:
        record = asdict(self)
        record["mix"] = self.mix.to_json()
        # a size on the recipe's seed records no seed of its own (as before seed variants)
        record["sizes"] = [{k: v for k, v in size.items() if not (k == "init_seed" and v is None)}
                           for size in record["sizes"]]
        return record


def pythia_steps(final: int, every: int) -> tuple[int, ...]:
    """step0, powers of two below `every`, then every `every` steps to `final` (Pythia style)."""
    steps = [0]
    power = 1
    while power < min(every, final):
        steps.append(power)
        power *= 2
    steps.extend(range(every, final + 1, every))
    if steps[-1] != final:
        steps.append(final)
    return tuple(steps)


PICO_SIZES = (
    Size("pico-16k", layers=1, d_model=32, heads=2),
    Size("pico-56k", layers=1, d_model=64, heads=2),
    Size("pico-232k", layers=2, d_model=96, heads=3),
    Size("pico-606k", layers=3, d_model=128, heads=4),
    Size("pico-942k", layers=3, d_model=160, heads=5),
)

# Seed variants (PolyPythias' design, shrunk): the three smallest sizes again with other
# initialisation seeds, on the same rows in the same order; `harness.emergence.split_seed` folds
# `pico-s2-16k` back into pico-16k, whose band across seeds the verdicts compare jumps against.
PICO_SEED_SIZES = tuple(
    Size(f"pico-s{seed}-{size.name.split('-', 1)[1]}", size.layers, size.d_model, size.heads,
         init_seed=1234 + seed - 1)
    for seed in (2, 3) for size in PICO_SIZES[:3])

# Committed checkpoints: a log-spaced subset of pythia_steps(4000, 500) chosen to fit the
# families' storage budget (fp16 weights, ~3.8 MB per step across the five sizes, ~1.3 MB for
# the six seed variants).
PICO = Recipe(
    family="pico", style="direct", sizes=PICO_SIZES + PICO_SEED_SIZES, steps=4000, batch_size=16,
    seq_len=512,
    save_steps=(0, 64, 256, 512, 1000, 2000, 4000),
)
PICO_SCRATCHPAD = Recipe(
    family="pico-scratchpad", style="scratchpad", sizes=PICO_SIZES, steps=4000,
    batch_size=16, seq_len=512, save_steps=(0, 256, 1000, 2000, 4000),
)
# CI-sized: trains in well under a minute on a 2-core CPU; tests of the training code and
# end-to-end sweeps use it.
MINI = Recipe(
    family="mini", style="direct",
    sizes=(Size("mini-5k", layers=1, d_model=16, heads=2),
           Size("mini-16k", layers=1, d_model=32, heads=2),
           Size("mini-56k", layers=1, d_model=64, heads=2)),
    steps=120, batch_size=8, seq_len=256, save_steps=pythia_steps(120, 40), eval_rows=16,
    lr=3e-3,
)

MINI_SCRATCHPAD = Recipe(**{**MINI.__dict__, "family": "mini-scratchpad", "style": "scratchpad"})

RECIPES = {r.family: r for r in (PICO, PICO_SCRATCHPAD, MINI, MINI_SCRATCHPAD)}
