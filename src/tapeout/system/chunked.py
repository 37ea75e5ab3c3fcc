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

from functools import lru_cache

from tapeout.models.spec import ModelSpec
from tapeout.system.pricing import Pricer
from tapeout.workload.build import IterationTemplate, Pipeline, _stage_groups
from tapeout.workload.chunks import PrefillPass, prefill_passes
from tapeout.workload.ops import Op, OpGraph
from tapeout.workload.scenario import Scenario


def chunked(sc: Scenario) -> bool:
    """Whether ``sc``'s prefill runs as more than one forward pass."""
    budget = sc.max_prefill_tokens
    return budget is not None and sc.batch * sc.input_len > budget


@lru_cache(maxsize=64)
def _template(model: ModelSpec, sc: Scenario, stage: int) -> IterationTemplate:
    return IterationTemplate(model, sc, stage, _stage_groups(model, sc, stage))


def pass_ops(t: IterationTemplate, p: PrefillPass) -> tuple[Op, ...]:
    """The ops of one pass of kind ``p`` on the stage of template ``t``, in launch order."""
    ops = list(t.token_ops(p.tokens, eager=True)) if p.tokens else []
    for seqs, chunk, prior in p.segments:
        ops.extend(t.prefill_attention(seqs, chunk, prior, eager=True))
    if p.heads:
        ops.extend(t.head_ops(p.heads, eager=True))
    return tuple(ops)


def _merged(parts: list[tuple[tuple[Op, ...], float]]) -> tuple[Op, ...]:
    """The ops of every pass as one list: equal ops (same name and content) merged with their runs summed in
    ``count``; ops of one name with different contents (attention after different prior tokens) numbered."""
    from dataclasses import replace

    runs: dict[tuple, list] = {}
    for ops, repeat in parts:
        for o in ops:
            key = (o.name, replace(o, count=1))
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
        out.append(replace(o, name=name, count=n))
    return tuple(out)


def price_chunked(model: ModelSpec, sc: Scenario, pipe: Pipeline, pr: Pricer) -> tuple[tuple[float, ...],
                                                                                        tuple[OpGraph, ...]]:
    """(busy seconds of each stage, each stage's ops of every pass merged into one graph)."""
    passes = prefill_passes(sc.batch, sc.input_len, sc.max_prefill_tokens)
    busy: dict[int, float] = {}
    graphs: dict[int, OpGraph] = {}
    for s, st in enumerate(pipe.stages):
        if id(st) in busy:
            continue
        t = _template(model, sc, s)
        parts = [(pass_ops(t, p), p.repeat) for p in passes]
        busy[id(st)] = sum(r * pr.total(ops) for ops, r in parts)
        graphs[id(st)] = OpGraph(phase="prefill", ops=_merged(parts), tokens=sc.batch * sc.input_len,
                                 context=sc.input_len)
    return tuple(busy[id(st)] for st in pipe.stages), tuple(graphs[id(st)] for st in pipe.stages)


def clear_caches() -> None:
    _template.cache_clear()


__all__ = ["chunked", "clear_caches", "pass_ops", "price_chunked"]
