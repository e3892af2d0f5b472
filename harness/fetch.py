"""Download a sweep's hub checkpoints into the Hugging Face cache, for sweeps offline.

On a machine with internet: `harness fetch --family pythia --sizes 70m,160m --revisions
step1000,main` fills the cache (HF_HOME, default ~/.cache/huggingface) exactly as
`from_pretrained` would; copy or share that folder with compute nodes that have none, and
run the sweep there with HF_HUB_OFFLINE=1. Only what the hf backend loads is fetched: the
config, tokenizer files and safetensors weights (pickled *.bin weights only with
allow_pickle, as loading them does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.models.registry import resolve

PATTERNS = ("*.json", "*.txt", "*.model", "*.safetensors")
PICKLED = ("*.bin",)


@dataclass(frozen=True)
class Fetched:
    repo_id: str
    revision: str
    folder: str  # the snapshot folder in the cache (this machine's; never committed)


def hub_points(points: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """(repo id, revision) of every hub checkpoint among `points`; local ones need no fetch."""
    wanted = []
    for name, revision in points:
        source = resolve(name, revision)
        if source.kind != "hub":
            raise HarnessError(f"{name} is not a hub model (it is a local {source.kind}); "
                               "only hub checkpoints are fetched")
        wanted.append((source.location, source.revision))
    return list(dict.fromkeys(wanted))


def fetch(points: Sequence[tuple[str, str | None]], allow_pickle: bool = False,
          on_done: Callable[[Fetched], None] | None = None) -> list[Fetched]:
    """Download each (model, revision) into the Hugging Face cache; stop at the first failure."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    patterns = list(PATTERNS + (PICKLED if allow_pickle else ()))
    done = []
    for repo_id, revision in hub_points(points):
        try:
            folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
        except OfflineModeIsEnabled:
            raise HarnessError(f"cannot fetch {repo_id}@{revision}: HF_HUB_OFFLINE is set; unset "
                               "it on a machine with internet") from None
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HarnessError(f"cannot fetch {repo_id}@{revision} from the Hugging Face Hub "
                               f"({reason}); run `harness fetch` on a machine with internet, then "
                               "copy its Hugging Face cache (HF_HOME) to this one") from exc
        fetched = Fetched(repo_id, revision, folder)
        done.append(fetched)
        if on_done is not None:
            on_done(fetched)
    return done
