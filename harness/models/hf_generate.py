"""Greedy generation for the `hf` backend (a mixin of `HFBackend`).

Batched with left padding and a KV cache; a row leaves the batch (and its cache) as soon as
it stops: at an end-of-sequence token, at its token budget, or once the request's `StopRule`
says the post-processed answer can no longer change.

Uses from `HFBackend`: `model`, `tokenizer`, `device`, `eos_ids`, `start_id`, `max_length`,
`generation_token_budget`, `max_rows`, `_left_pad`, `_split_after_oom`, `_cache_of`, `_cache_arg`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.models.base import Generation, GenRequest, Progress
from harness.models.scheduling import plan_batches


class GreedyGeneration:
    """`generate` of the Backend protocol."""

    def generate(self, requests: Sequence[GenRequest],
                 progress: Progress | None = None) -> list[Generation]:
        contexts = []
        for request in requests:
            ids = self.tokenizer(request.context, add_special_tokens=True)["input_ids"] or [
                self.start_id]
            room = self.max_length - request.max_new_tokens
            contexts.append(ids[-room:] if len(ids) > room else ids)
        results: list[Generation | None] = [None] * len(requests)
        batches = plan_batches([len(c) + r.max_new_tokens for c, r in zip(contexts, requests)],
                               self.generation_token_budget, self.max_rows)
        queue = [list(b) for b in batches]
        while queue:
            batch = queue.pop(0)
            try:
                self._generate_batch(batch, contexts, requests, results)
            except torch.cuda.OutOfMemoryError:
                queue[:0] = self._split_after_oom(batch)
                continue
            if progress:
                progress(len(batch))
        return results  # type: ignore[return-value]

    def _decode_new(self, context: list[int], new: list[int]) -> str:
        # Decode with a few context tokens in front, then drop their text: tokenizers that
        # mark word starts (SentencePiece) otherwise lose the leading space.
        anchor = context[-4:]
        full = self.tokenizer.decode(anchor + new, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        head = self.tokenizer.decode(anchor, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        return full[len(head):] if full.startswith(head) else full

    @torch.inference_mode()
    def _generate_batch(self, batch: list[int], contexts: list, requests: Sequence[GenRequest],
                        results: list) -> None:
        ids, mask, positions = self._left_pad([contexts[i] for i in batch])
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        cache = self._cache_of(out)
        logits = out.logits[:, -1]
        last_pos = positions[:, -1]
        active = list(batch)
        new_tokens: dict[int, list[int]] = {i: [] for i in batch}
        while active:
            next_ids = logits.float().argmax(-1)
            keep = []
            for row, index in enumerate(active):
                token = int(next_ids[row])
                request = requests[index]
                reason = None
                if token in self.eos_ids:
                    reason = "eos"
                else:
                    new_tokens[index].append(token)
                    text = self._decode_new(contexts[index], new_tokens[index])
                    if request.stop is not None and request.stop.is_final(text):
                        reason = "rule"
                    elif len(new_tokens[index]) >= request.max_new_tokens:
                        reason = "max_new_tokens"
                if reason:
                    results[index] = Generation(
                        text=self._decode_new(contexts[index], new_tokens[index]),
                        n_tokens=len(new_tokens[index]), stop_reason=reason)
                else:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < len(active):
                select = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(select)
                mask, last_pos, next_ids = mask[select], last_pos[select], next_ids[select]
                active = [active[r] for r in keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            last_pos = last_pos + 1
            out = self.model(input_ids=next_ids[:, None], attention_mask=mask,
                             position_ids=last_pos[:, None], use_cache=True,
                             **{self._cache_arg: cache})
            cache, logits = self._cache_of(out), out.logits[:, -1]
