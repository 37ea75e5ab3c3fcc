"""The forward passes of a chunked prefill: a batch's prompts under an engine's token budget.

An engine with a token budget per forward pass (``Scenario.max_prefill_tokens``: vLLM's
``max_num_batched_tokens``, SGLang's ``chunked_prefill_size``, TensorRT-LLM's ``max_num_tokens`` with chunked
context, llama.cpp's ``n_ubatch``) runs ``batch`` prompts of ``input_len`` tokens as consecutive passes of at
most ``budget`` tokens, taking the prompts in order and splitting a prompt across passes where the budget
ends: pass k holds tokens [k·budget, (k+1)·budget) of the prompts laid end to end. Each pass is a list of
segments (``seqs`` prompt pieces of ``chunk`` new tokens after ``prior`` tokens of the same prompt already in
the KV cache) and the number of prompts whose last token it holds (``heads``: their logits).

Pass k depends only on where it starts inside a prompt, (k·budget) mod input_len, and on its length, so
the full passes fall into at most input_len / gcd(budget, input_len) kinds. :func:`prefill_passes` returns
each kind once with the number of passes like it (``repeat``). When there are more than
:data:`MAX_KINDS` kinds, the full passes are cut into :data:`MAX_KINDS` runs of consecutive passes and each
run is stood for by its middle pass (``repeat`` = the run's length), its heads left out; the heads come
exactly, as entries of no tokens (one per head count, ``repeat`` = the full passes with that many). The
tokens and heads of every pass are then exact; only the split of the attention work over the passes is
sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


#: distinct pass kinds priced one by one; beyond it the full passes are sampled
MAX_KINDS = 64


@dataclass(frozen=True, slots=True)
class PrefillPass:
    """One kind of forward pass of a chunked prefill."""

    #: tokens the pass runs (the budget, or what is left for the last pass; 0: the heads of sampled passes)
    tokens: int
    #: (seqs, chunk, prior): ``seqs`` prompt pieces of ``chunk`` new tokens after ``prior`` cached ones
    segments: tuple[tuple[int, int, int], ...]
    #: prompts whose last token is in the pass (the sequences that produce their first token)
    heads: int
    #: passes of this kind (of its run, when the passes are sampled)
    repeat: int


def _pass(start: int, tokens: int, input_len: int) -> tuple[tuple[tuple[int, int, int], ...], int]:
    """Segments and heads of the pass running ``tokens`` tokens from stream position ``start``."""
    offset = start % input_len
    segs: list[tuple[int, int, int]] = []
    first = min(input_len - offset, tokens)
    segs.append((1, first, offset))
    heads = 1 if offset + first == input_len else 0
    rest = tokens - first
    whole, tail = divmod(rest, input_len)
    if whole:
        segs.append((whole, input_len, 0))
        heads += whole
    if tail:
        segs.append((1, tail, 0))
    merged: dict[tuple[int, int], int] = {}
    for n, c, p in segs:
        merged[(c, p)] = merged.get((c, p), 0) + n
    return tuple((n, c, p) for (c, p), n in sorted(merged.items(), key=lambda kv: (kv[0][1], kv[0][0]))), heads


def prefill_passes(batch: int, input_len: int, budget: int | None) -> tuple[PrefillPass, ...]:
    """The kinds of forward pass that prefill ``batch`` prompts of ``input_len`` tokens, at most ``budget``
    tokens each (None: one pass). The passes' ``repeat`` x ``tokens`` sum to batch x input_len, and their
    ``repeat`` x ``heads`` to batch, exactly."""
    if batch < 1 or input_len < 1:
        raise ValueError("a prefill needs at least one prompt of at least one token")
    total = batch * input_len
    if budget is None or budget >= total:
        return (PrefillPass(total, ((batch, input_len, 0),), batch, 1),)
    full, last = divmod(total, budget)
    period = input_len // math.gcd(budget, input_len)  # full passes k and k + period start alike
    out: list[PrefillPass] = []
    if min(full, period) <= MAX_KINDS:
        for k in range(min(full, period)):
            segs, heads = _pass(k * budget, budget, input_len)
            out.append(PrefillPass(budget, segs, heads, (full - 1 - k) // period + 1))
    else:
        for i in range(MAX_KINDS):  # MAX_KINDS runs of consecutive passes, each stood for by its middle pass
            lo, hi = i * full // MAX_KINDS, (i + 1) * full // MAX_KINDS
            segs, _ = _pass((lo + hi) // 2 * budget, budget, input_len)
            out.append(PrefillPass(budget, segs, 0, hi - lo))
        # the heads exactly: full pass k holds the last tokens of the prompts ending in (k budget, (k+1) budget],
        # q = budget // input_len or q + 1 of them; the full passes hold full budget // input_len ends in all
        q = budget // input_len
        ends = full * budget // input_len
        more = ends - q * full  # passes with q + 1 ends
        for h, count in ((q, full - more), (q + 1, more)):
            if h and count:
                out.append(PrefillPass(0, (), h, count))
    if last:
        segs, heads = _pass(full * budget, last, input_len)
        out.append(PrefillPass(last, segs, heads, 1))
    return tuple(out)


__all__ = ["MAX_KINDS", "PrefillPass", "prefill_passes"]
