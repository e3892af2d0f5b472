"""Word-level tokenizer, GPT-NeoX config and a fast exact forward for the grok family.

The model reads the task's prompts exactly as the harness renders them at 0 shots
(`\\nQ: What is (12 + 34) mod 97?\\nA: `): one token per number 0..p and per word, space,
line break and punctuation mark, so decode(encode(prompt)) == prompt.

Training a 1-layer model on a fixed template does not need the full HF forward: every row is
the same tokens at the same positions except the two operands (and the answer), and in one
layer a position's query, key, value and MLP output depend only on (token, position). So each
distinct (token, position) is computed once per step (about 3 x 97 + 26 of them instead of
rows x 26), and attention runs only from the positions the loss reads. `answer_logits` is
checked against `GPTNeoXForCausalLM.forward` in tests/test_grok.py; it uses the model's own
modules, so the trained weights are the HF model's.
"""

from __future__ import annotations

from dataclasses import dataclass

SPECIAL_TOKENS = ("<|pad|>", "<|unk|>", "<|endoftext|>")
EOS = "<|endoftext|>"
# Everything in the rendered prompt that is not a number: BIG-bench's "\nQ: " / "\nA: " and
# the question's words.
FORMAT_TOKENS = ("\n", " ", "Q", "A", ":", "What", "is", "(", ")", "+", "mod", "?")
# One pre-token per number, word, whitespace character or punctuation mark.
PRETOKEN_REGEX = r"\d+|[A-Za-z]+|\s|[^\sA-Za-z0-9]"


def vocabulary(modulus: int) -> dict[str, int]:
    words = [*SPECIAL_TOKENS, *FORMAT_TOKENS, *(str(n) for n in range(modulus + 1))]
    return {word: i for i, word in enumerate(words)}


def build_tokenizer(modulus: int):
    """Word-level `PreTrainedTokenizerFast`, saved with every checkpoint."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocabulary(modulus), unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKEN_REGEX), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>",
                                   unk_token="<|unk|>", eos_token=EOS, model_max_length=64)


@dataclass(frozen=True)
class GrokSize:
    name: str  # "grok-<total params>", as the other families name sizes
    layers: int = 1
    d_model: int = 128
    heads: int = 4
    mlp: int = 512


def build_config(size: GrokSize, modulus: int):
    from transformers import GPTNeoXConfig

    vocab = vocabulary(modulus)
    return GPTNeoXConfig(
        vocab_size=len(vocab), hidden_size=size.d_model, num_hidden_layers=size.layers,
        num_attention_heads=size.heads, intermediate_size=size.mlp, hidden_act="gelu",
        rotary_pct=1.0, max_position_embeddings=64, use_parallel_residual=True,
        tie_word_embeddings=False, bos_token_id=vocab[EOS], eos_token_id=vocab[EOS],
        pad_token_id=vocab["<|pad|>"], attention_dropout=0.0, hidden_dropout=0.0,
    )


@dataclass(frozen=True)
class Template:
    """Rows that share every token but a few slots, and the positions the loss reads.

    `units` lists each distinct (token, position) once; `unit_of[r][t]` is row r's unit at
    position t; `query_positions` are the positions whose next-token logits are scored.
    """

    units: tuple[tuple[int, int], ...]
    unit_of: tuple[tuple[int, ...], ...]
    query_positions: tuple[int, ...]


def make_template(rows: list[list[int]], query_positions: tuple[int, ...]) -> Template:
    """Index equal-length token rows by their distinct (token, position) units."""
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"rows of one template must have one length, got {sorted(lengths)}")
    index: dict[tuple[int, int], int] = {}
    unit_of = []
    for row in rows:
        unit_of.append(tuple(index.setdefault((tok, pos), len(index))
                             for pos, tok in enumerate(row)))
    return Template(units=tuple(index), unit_of=tuple(unit_of),
                    query_positions=tuple(query_positions))


def answer_logits(model, units, unit_of, query_positions: tuple[int, ...]):
    """Next-token logits (rows, len(query_positions), vocab) of a 1-layer GPTNeoXForCausalLM.

    `units` (U, 2) long tensor of (token, position); `unit_of` (rows, T) long tensor. Equal to
    `model(input_ids).logits[:, query_positions]` for the rows the template describes.
    """
    import torch
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    neox = model.gpt_neox
    if len(neox.layers) != 1 or not model.config.use_parallel_residual:
        raise ValueError("answer_logits is exact only for 1-layer parallel-residual GPT-NeoX")
    layer = neox.layers[0]
    heads = model.config.num_attention_heads
    x = neox.embed_in(units[:, 0]).unsqueeze(0)  # (1, U, d): units as one "sequence"
    positions = units[:, 1].unsqueeze(0)
    cos, sin = neox.rotary_emb(x, positions)
    qkv = layer.attention.query_key_value(layer.input_layernorm(x))
    qkv = qkv.view(1, x.shape[1], heads, -1).transpose(1, 2)  # (1, H, U, 3 * head)
    q, k, v = qkv.chunk(3, dim=-1)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    mlp = layer.mlp(layer.post_attention_layernorm(x))[0]  # (U, d)
    query_units = unit_of[:, list(query_positions)]  # (R, Q)
    queries = q[0].transpose(0, 1)[query_units]  # (R, Q, H, head)
    k, v = k[0].transpose(0, 1), v[0].transpose(0, 1)  # (U, H, head)
    # Positions every row shares are attended through one (T_c, H, head) key/value block;
    # only the varying slots are gathered per row (the costly part of a naive gather).
    shared = (unit_of == unit_of[:1]).all(dim=0)
    shared_pos, slot_pos = shared.nonzero()[:, 0], (~shared).nonzero()[:, 0]
    shared_units, slot_units = unit_of[0, shared_pos], unit_of[:, slot_pos]
    scale = queries.shape[-1] ** -0.5
    scores = torch.cat([torch.einsum("rqhd,thd->rhqt", queries, k[shared_units]),
                        torch.einsum("rqhd,rshd->rhqs", queries, k[slot_units])], dim=-1) * scale
    key_pos = torch.cat([shared_pos, slot_pos])
    future = key_pos.unsqueeze(0) > torch.tensor(query_positions).unsqueeze(1)  # (Q, T)
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    n_shared = len(shared_pos)
    mixed = (torch.einsum("rhqt,thd->rqhd", weights[..., :n_shared], v[shared_units])
             + torch.einsum("rhqs,rshd->rqhd", weights[..., n_shared:], v[slot_units]))
    mixed = mixed.flatten(2)  # (R, Q, d)
    hidden = layer.attention.dense(mixed) + x[0][query_units] + mlp[query_units]
    return model.get_output_embeddings()(neox.final_layer_norm(hidden))
