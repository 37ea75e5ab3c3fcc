"""A prefill priced as the forward passes an engine's token budget splits it into.

When a batch's prompts hold more tokens than ``Scenario.max_prefill_tokens``, the engine runs them as several
forward passes (:func:`tapeout.workload.chunks.prefill_passes`), and each pass pays for what a single pass
would not:

- every pass reads the weights again (llama.cpp also dequantizes them again for each 512-token ubatch);
- a prompt piece after cached tokens of its own prompt attends to them: fused attention reads their K/V from
  the cache, eager attention computes and materializes the full rectangle of its queries against every
  cached key (llama.cpp without ``-fa``);
- every pass launches its kernels from the host (the profile's prefill host gap).

A pass is priced as the serving simulator prices an iteration (:class:`~tapeout.workload.build.IterationTemplate`):
the token ops at the pass's tokens, attention per segment, and the lm_head of the prompts that end in it,
all launched eagerly. Under pipeline parallelism a pass goes through every stage before the next pass of the
same batch starts (a request's next chunk needs its previous chunk's KV cache on every stage, and one batch
is one engine's: vLLM's virtual engine, TensorRT-LLM's micro-batch), so the prefill takes the sum of the
stages' busy times, as a single pass does; batches in flight together (``pp_microbatches``) overlap as the
composition says.
"""

from __future__ import annotations

from collections.abc import Callable

from tapeout.frozen import evolve
from tapeout.models.spec import ModelSpec
from tapeout.system.pricing import Pricer, content
from tapeout.workload.build import Pipeline, SharedTemplate, shared_template
from tapeout.workload.chunks import PrefillPass, prefill_passes
from tapeout.workload.ops import Op, OpGraph
from tapeout.workload.scenario import Scenario


def chunked(sc: Scenario) -> bool:
    """Whether ``sc``'s prefill runs as more than one forward pass."""
    budget = sc.max_prefill_tokens
    return budget is not None and sc.batch * sc.input_len > budget


class _Stage:
    """The ops of a chunked prefill's passes on one stage, from its shared iteration template, with their priced
    totals memoised: a pass's ops depend on its tokens and segments only, so every batch size of an exploration
    shares them. Attention ops carry their segment in their name."""

    __slots__ = ("t", "_ops", "_totals")

    def __init__(self, t: SharedTemplate) -> None:
        self.t = t
        self._ops: dict[tuple, tuple[Op, ...]] = {}
        self._totals: dict[tuple, float] = {}

    def ops(self, key: tuple) -> tuple[Op, ...]:
        kind, *args = key
        if kind == "tokens":
            return self.t.token_ops(args[0], True)
        if kind == "heads":
            return self.t.head_ops(args[0], True)
        hit = self._ops.get(key)
        if hit is None:
            seqs, chunk, prior = args  # named by the tokens it meets: cached + new, e.g. attention[3584+512]
            hit = tuple(o.renamed(f"{o.name}[{prior}+{chunk}]")
                        for o in self.t.prefill_attention(seqs, chunk, prior, True))
            if len(self._ops) >= 4096:
                self._ops.clear()
            self._ops[key] = hit
        return hit

    def total(self, pr: Pricer, key: tuple) -> float:
        k = (pr, key)  # the pricer by identity: a device's memo
        hit = self._totals.get(k)
        if hit is None:
            if len(self._totals) >= 16384:
                self._totals.clear()
            hit = self._totals[k] = pr.total(self.ops(key))
        return hit


_STAGES: dict[int, _Stage] = {}


def _stage(model: ModelSpec, sc: Scenario, stage: int) -> _Stage:
    t = shared_template(model, sc, stage)
    hit = _STAGES.get(id(t))
    if hit is None or hit.t is not t:
        if len(_STAGES) >= 64:
            _STAGES.clear()
        hit = _STAGES[id(t)] = _Stage(t)
    return hit


def pass_keys(p: PrefillPass) -> tuple[tuple, ...]:
    """The op groups of one pass of kind ``p``, in launch order: its token ops, attention per segment, the
    lm_head of the prompts ending in it."""
    keys: list[tuple] = [("tokens", p.tokens)] if p.tokens else []
    keys.extend(("attention", seqs, chunk, prior) for seqs, chunk, prior in p.segments)
    if p.heads:
        keys.append(("heads", p.heads))
    return tuple(keys)


def _merged(parts: list[tuple[tuple[Op, ...], int]]) -> tuple[Op, ...]:
    """The ops of every pass as one list: equal ops (same name and content) merged with their runs summed in
    ``count`` (attention ops carry their segment in their name, ``attn_scores[3584+512]``: 512 new tokens after
    3,584 cached ones); ops of one name with different contents, if any, numbered ``#i``."""
    runs: dict[tuple, list] = {}
    for ops, repeat in parts:
        for o in ops:
            key = (o.name, content(o))
            hit = runs.get(key)
            if hit is None:
                runs[key] = [o, o.count * repeat]
            else:
                hit[1] += o.count * repeat
    names: dict[str, int] = {}
    for o, _ in runs.values():
        names[o.name] = names.get(o.name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for o, n in runs.values():
        name = o.name
        if names[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}#{seen[name]}"
        out.append(evolve(o, name=name, count=n))
    return tuple(out)


def price_chunked(model: ModelSpec, sc: Scenario, pipe: Pipeline, pr: Pricer) -> tuple[
        tuple[float, ...], Callable[[], tuple[OpGraph, ...]], tuple[Op, ...]]:
    """(busy seconds of each stage; a function building each stage's ops of every pass merged into one graph,
    for per-op rows; the distinct ops of the passes, for scans over the kinds of work)."""
    passes = prefill_passes(sc.batch, sc.input_len, sc.max_prefill_tokens)
    keys = [(pass_keys(p), p.repeat) for p in passes]
    busy: dict[int, float] = {}
    stages: dict[int, _Stage] = {}
    for s, st in enumerate(pipe.stages):
        if id(st) in busy:
            continue
        t = stages[id(st)] = _stage(model, sc, s)
        busy[id(st)] = sum(r * sum(t.total(pr, k) for k in ks) for ks, r in keys)
    distinct = {id(o): o for t in stages.values() for ks, _ in keys for k in ks for o in t.ops(k)}

    def graphs() -> tuple[OpGraph, ...]:
        built = {i: OpGraph(phase="prefill", tokens=sc.batch * sc.input_len, context=sc.input_len, ops=_merged(
            [(tuple(o for k in ks for o in t.ops(k)), r) for ks, r in keys])) for i, t in stages.items()}
        return tuple(built[id(st)] for st in pipe.stages)

    return tuple(busy[id(st)] for st in pipe.stages), graphs, tuple(distinct.values())


def clear_caches() -> None:
    _STAGES.clear()


__all__ = ["chunked", "clear_caches", "pass_keys", "price_chunked"]
