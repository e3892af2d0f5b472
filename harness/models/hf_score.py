"""Log-likelihood scoring for the `hf` backend (a mixin of `HFBackend`).

Three paths, chosen per context: a context with one continuation is scored in one pass over
context + continuation (`_score_single`); a context with several is encoded once, with a KV
cache (`_score_groups`), and the continuations' tails are packed into rows behind the cached
context, each attending to the context and to itself only (`_score_packed`): periodic_elements/
subtask_0 scores 118 choices per prompt in one row of about 140 tokens instead of 118 rows.
Where the logits are just the output layer on the last hidden state, that layer runs only on
the scored positions (`_score_hidden`). All log-softmaxes are taken in float32.

Uses from `HFBackend`: `model`, `tokenizer`, `device`, `pad_id`, `start_id`, `token_budget`,
`max_rows`, `encode_pair`, `_left_pad`, `_split_after_oom`, `_cache_of`, `_cache_arg`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.models.base import LoglikRequest, Progress, TokenScores
from harness.models.scheduling import group_by_context, plan_batches

# Most continuation tokens packed into one row behind a shared context (see _score_groups).
PACK_TOKENS = 512
# Positions per call of the output layer when it runs apart from the model (_score_hidden).
HEAD_SLICE = 1024


class LoglikelihoodScoring:
    """`loglikelihood` of the Backend protocol, and the scoring paths behind it."""

    _split_head: bool | None = None  # decided on first use: see _head_is_separable

    def loglikelihood(self, requests: Sequence[LoglikRequest],
                      progress: Progress | None = None) -> list[TokenScores]:
        encoded = [self.encode_pair(r.context, r.continuation) for r in requests]
        groups = group_by_context([tuple(ctx) for ctx, _ in encoded])
        results: list[TokenScores | None] = [None] * len(requests)
        # A context with one continuation is scored in one pass over context + continuation;
        # a context with several is encoded once and its continuations scored on its cache.
        single = [g for g in groups if len(g) == 1]
        shared = [g for g in groups if len(g) > 1]
        queue: list[tuple[str, list[list[int]]]] = []
        for batch in plan_batches([len(encoded[g[0]][0]) + len(encoded[g[0]][1]) for g in single],
                                  self.token_budget, self.max_rows):
            queue.append(("single", [single[i] for i in batch]))
        for batch in plan_batches([len(encoded[g[0]][0]) for g in shared], self.token_budget,
                                  self.max_rows):
            queue.append(("shared", [shared[i] for i in batch]))
        while queue:
            kind, batch_groups = queue.pop(0)
            try:
                if kind == "single":
                    self._score_single(batch_groups, encoded, results)
                else:
                    self._score_groups(batch_groups, encoded, results)
            except torch.cuda.OutOfMemoryError:
                queue[:0] = [(kind, part) for part in self._split_after_oom(batch_groups)]
                continue
            if progress:
                progress(sum(len(g) for g in batch_groups))
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_single(self, batch_groups: list[list[int]], encoded: list, results: list) -> None:
        """One forward pass over left-padded context + continuation[:-1] rows."""
        indices = [g[0] for g in batch_groups]
        rows = [encoded[i][0] + encoded[i][1][:-1] for i in indices]
        keep = max(1, max(len(encoded[i][1]) for i in indices))
        ids, mask, positions = self._left_pad(rows)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            logits_to_keep=keep).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        greedy = logits.argmax(-1)
        targets = torch.zeros((len(indices), keep), dtype=torch.long)
        for row, i in enumerate(indices):
            cont = encoded[i][1]
            if cont:  # rows are right-aligned: the last len(cont) positions predict cont
                targets[row, keep - len(cont):] = torch.tensor(cont)
        targets = targets.to(self.device)
        token_lp = logprobs.gather(-1, targets[..., None]).squeeze(-1).cpu().tolist()
        is_greedy = (greedy == targets).cpu().tolist()
        for row, i in enumerate(indices):
            cont = encoded[i][1]
            if not cont:
                results[i] = TokenScores((), (), ())
                continue
            n = len(cont)
            results[i] = self._finish(cont, list(zip(token_lp[row][keep - n:],
                                                     is_greedy[row][keep - n:])))

    @torch.inference_mode()
    def _score_groups(self, batch_groups: list[list[int]], encoded: list, results: list) -> None:

        contexts = [encoded[g[0]][0] for g in batch_groups]
        ids, mask, positions = self._left_pad(contexts)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (groups, vocab)
        first_greedy = first.argmax(-1)
        cache = self._cache_of(out)
        context_lengths = mask.sum(-1)

        # Token 0 of every continuation comes from its context's last position.
        tails: dict[int, list[int]] = {}  # group row -> requests with tokens 1..m-1 to score
        for row, group in enumerate(batch_groups):
            for index in group:
                cont = encoded[index][1]
                if not cont:
                    results[index] = TokenScores((), (), ())
                    continue
                results[index] = (float(first[row, cont[0]]), bool(first_greedy[row] == cont[0]))
                if len(cont) > 1:
                    tails.setdefault(row, []).append(index)
                else:
                    results[index] = self._finish(cont, [results[index]])
        if not tails:
            return
        width = ids.shape[1]
        # Pack the tails of one context into one row, each tail attending to the context and to
        # itself only (a block-diagonal causal mask after the shared prefix): no copy of the
        # context's cache per continuation, and long rows instead of many short ones.
        cap = PACK_TOKENS if self.token_budget is None else max(
            1, min(PACK_TOKENS, self.token_budget - width))
        packed: list[tuple[int, list[int]]] = []  # (group row, requests), tails <= cap tokens
        for row, indices in tails.items():
            current, length = [], 0
            for index in indices:
                n = len(encoded[index][1]) - 1
                if current and length + n > cap:
                    packed.append((row, current))
                    current, length = [], 0
                current.append(index)
                length += n
            packed.append((row, current))
        lengths = [sum(len(encoded[i][1]) - 1 for i in members) for _, members in packed]
        for chunk in plan_batches([width + n for n in lengths], self.token_budget, self.max_rows):
            self._score_packed([packed[i] for i in chunk], encoded, results, cache, mask,
                               context_lengths)

    def _score_packed(self, items: list[tuple[int, list[int]]], encoded: list, results: list,
                      cache, context_mask: torch.Tensor, context_lengths: torch.Tensor) -> None:
        from transformers import DynamicCache

        select = torch.tensor([row for row, _ in items], device=self.device)
        chunk_cache = DynamicCache(
            [(layer.keys.index_select(0, select), layer.values.index_select(0, select))
             for layer in cache.layers])
        inputs, targets, offsets, segment, spans = _pack_tails(items, encoded, self.pad_id)
        additive = _packed_mask(segment, context_mask.index_select(0, select).bool().cpu(),
                                self.model.dtype).to(self.device)
        pos = context_lengths.index_select(0, select)[:, None] + offsets.to(self.device)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        kwargs = {"input_ids": inputs, "attention_mask": additive, "position_ids": pos,
                  "use_cache": False, self._cache_arg: chunk_cache}
        if self._head_is_separable():
            # the output layer only where a token is scored, a slice at a time: no
            # (rows x steps x vocab) logits in memory
            hidden = self.model.base_model(**kwargs).last_hidden_state
            real = (segment >= 0).to(self.device)
            scored_lp, scored_greedy = self._score_hidden(hidden[real], targets[real])
            token_lp = torch.zeros(targets.shape, dtype=torch.float32)
            greedy_mask = torch.zeros(targets.shape, dtype=torch.bool)
            token_lp[real.cpu()] = scored_lp
            greedy_mask[real.cpu()] = scored_greedy
            token_lp, greedy = token_lp.tolist(), greedy_mask.tolist()
        else:
            logits = self.model(**kwargs).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            token_lp = logprobs.gather(-1, targets[..., None]).squeeze(-1).cpu().tolist()
            greedy = (logits.argmax(-1) == targets).cpu().tolist()
        for r, row_spans in enumerate(spans):
            for index, start, n in row_spans:
                cont = encoded[index][1]
                head = results[index]
                results[index] = self._finish(
                    cont, [head, *zip(token_lp[r][start:start + n], greedy[r][start:start + n])])

    def _head_is_separable(self) -> bool:
        """Whether the logits are the output layer applied to the base model's last hidden
        state (checked once, numerically, on a 3-token input): then scoring may run the output
        layer on the scored positions only. False for models that do more (soft-capping, ...)."""
        if self._split_head is None:
            head, base = self.model.get_output_embeddings(), self.model.base_model
            self._split_head = False
            if head is not None and base is not self.model:
                ids = torch.tensor([[self.start_id, self.pad_id, self.start_id]], device=self.device)
                with torch.inference_mode():
                    full = self.model(input_ids=ids).logits.float()
                    split = head(base(input_ids=ids).last_hidden_state).float()
                self._split_head = full.shape == split.shape and bool(
                    torch.allclose(full, split, rtol=0, atol=1e-6))
        return self._split_head

    def _score_hidden(self, hidden: torch.Tensor, targets: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-prob (float32) and is-greedy of each target after its hidden state, (n, d) -> (n,)."""
        head = self.model.get_output_embeddings()
        logprobs, greedy = [], []
        for start in range(0, hidden.shape[0], HEAD_SLICE):
            logits = head(hidden[start:start + HEAD_SLICE]).float()
            wanted = targets[start:start + HEAD_SLICE]
            logprobs.append(torch.log_softmax(logits, dim=-1).gather(-1, wanted[:, None])[:, 0])
            greedy.append(logits.argmax(-1) == wanted)
        return torch.cat(logprobs).cpu(), torch.cat(greedy).cpu()

    def _finish(self, cont: list[int], pairs: list[tuple[float, bool]]) -> TokenScores:
        return TokenScores(tokens=tuple(self.tokenizer.convert_ids_to_tokens(cont)),
                           logprobs=tuple(p[0] for p in pairs),
                           is_greedy=tuple(p[1] for p in pairs))


def _pack_tails(items: list[tuple[int, list[int]]], encoded: list, pad_id: int):
    """Row tensors for packed tails: inputs, targets, position offsets after the context, and
    the segment (which tail; -1 for padding) of every position; plus each row's spans
    (request, start, length)."""
    steps = max(sum(len(encoded[i][1]) - 1 for i in members) for _, members in items)
    n_rows = len(items)
    inputs = torch.full((n_rows, steps), pad_id, dtype=torch.long)
    targets = torch.zeros((n_rows, steps), dtype=torch.long)
    offsets = torch.zeros((n_rows, steps), dtype=torch.long)  # position after the context
    segment = torch.full((n_rows, steps), -1, dtype=torch.long)  # which tail; -1: padding
    spans: list[list[tuple[int, int, int]]] = []  # per row: (request, start, length)
    for r, (_, members) in enumerate(items):
        start, row_spans = 0, []
        for k, index in enumerate(members):
            cont = encoded[index][1]
            n = len(cont) - 1
            inputs[r, start:start + n] = torch.tensor(cont[:-1])
            targets[r, start:start + n] = torch.tensor(cont[1:])
            offsets[r, start:start + n] = torch.arange(n)
            segment[r, start:start + n] = k
            row_spans.append((index, start, n))
            start += n
        spans.append(row_spans)
    return inputs, targets, offsets, segment, spans


def _packed_mask(segment: torch.Tensor, context_mask: torch.Tensor, dtype: torch.dtype
                 ) -> torch.Tensor:
    """Additive attention mask (rows, 1, steps, width + steps) for packed tails behind a
    cached context of `width` positions (`context_mask`: its real tokens, per row)."""
    n_rows, steps = segment.shape
    width = context_mask.shape[1]
    # query q sees the context's real tokens, and the tail tokens of its own segment up to
    # itself; a padding query sees only itself (a row of -inf would give NaN)
    same = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    causal = torch.ones(steps, steps, dtype=torch.bool).tril()
    own = (same & causal) | torch.eye(steps, dtype=torch.bool)
    sees_context = context_mask[:, None, :].expand(
        n_rows, steps, width) & (segment[:, :, None] >= 0)
    allowed = torch.cat([sees_context, own], dim=-1)[:, None]  # (rows, 1, steps, width+steps)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
