"""Measure on a GPU what ``lapo_verl.memory_estimate`` estimates for the trainer's passes, and print both.

    python benchmarks/gpu_memory_check.py [--tokens 4096,16384] [--layers 28] [--out FILE.json]

A random-weight Qwen2 of the paper's 1.5B shape (``memory_estimate.QWEN2_1_5B``; ``--layers`` shortens it) is
wrapped like verl's FSDP2 engine wraps the actor: each decoder layer and then the root with ``fully_shard``, fp32
master weights, bf16 compute (``MixedPrecisionPolicy``), AdamW, HF gradient checkpointing, SDPA attention; one
process, world size 1. For each token count T it measures ``torch.cuda.max_memory_allocated`` of:

* the update pass: forward + backward + AdamW step of one micro-batch of T tokens (one sequence), log-probs row
  by row as verl's PyTorch fallback ``logprobs_from_logits_v2`` does (no flash-attn on the machine), a
  policy-gradient-shaped loss, with the Adam states of an earlier step resident (grads are set to None between
  steps, as verl's ``optimizer.zero_grad()`` does);
* the log-prob pass: a no-grad forward with the log-probs and verl's chunked entropy (2,048 rows, fp32).

The estimate is :func:`update_pass` / :func:`log_prob_pass` with ``fsdp_size=1`` and
``flash_attn_cross_entropy=False``, without its fixed runtime constants (CUDA context, NCCL, vLLM asleep), which
``max_memory_allocated`` does not see. Not measured: verl itself (not installed on the machine), vLLM, several
GPUs. Runs on CPU too (``--device cpu``, tiny ``--layers``/``--tokens``) to check the control flow; there it
measures nothing and prints the estimate only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lapo_verl import memory_estimate as me  # noqa: E402  (no torch/verl import at module level)

RUNTIME_PARTS = ("CUDA/NCCL runtime (rough)", "vLLM while the trainer runs")


def _estimate_gib(est: me.PassEstimate) -> float:
    return sum(c.gib for c in est.components if c.name not in RUNTIME_PARTS)


def _build(shape: me.ModelShape, device: str):
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=0, world_size=1)
    config = Qwen2Config(hidden_size=shape.hidden_size, num_hidden_layers=shape.num_layers,
                         num_attention_heads=shape.num_attention_heads, num_key_value_heads=shape.num_kv_heads,
                         intermediate_size=shape.intermediate_size, vocab_size=shape.vocab_size,
                         tie_word_embeddings=shape.tie_word_embeddings, max_position_embeddings=32768,
                         attn_implementation="sdpa", torch_dtype=torch.float32, use_cache=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in model.model.layers:
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-6)
    return model, optim


def _logprobs_rowwise(logits, labels):
    """verl's ``logprobs_from_logits_v2`` for bf16 logits: log_softmax one row at a time, then gather."""
    import torch

    out = []
    for row_logits, row_labels in zip(logits, labels):
        row = torch.log_softmax(row_logits, dim=-1)
        out.append(row.gather(-1, row_labels.unsqueeze(-1)).squeeze(-1))
    return torch.stack(out)


def _entropy_chunked(logits, chunk: int = 2048):
    """verl's ``entropy_from_logits_with_chunking``: fp32 per chunk of rows."""
    import torch

    parts = []
    for i in range(0, logits.shape[0], chunk):
        x = logits[i:i + chunk].float()
        pd = torch.softmax(x, dim=-1)
        parts.append(torch.logsumexp(x, dim=-1) - (pd * x).sum(-1))
    return torch.cat(parts)


def _update_step(model, optim, tokens: int, vocab: int, device: str):
    import torch

    ids = torch.randint(0, vocab, (1, tokens + 1), device=device)
    logits = model(input_ids=ids[:, :-1]).logits[0]          # (T, V), bf16 under the mixed-precision policy
    logp = _logprobs_rowwise(logits, ids[0, 1:])
    advantages = torch.randn(tokens, device=device)
    loss = -(logp.float() * advantages).mean()
    loss.backward()
    optim.step()
    optim.zero_grad()  # set_to_none, as verl's FSDP engine (optimizer_zero_grad): no grads between steps


def _log_prob_pass(model, tokens: int, vocab: int, device: str):
    import torch

    ids = torch.randint(0, vocab, (1, tokens + 1), device=device)
    with torch.no_grad():
        logits = model(input_ids=ids[:, :-1]).logits[0]
        logp = _logprobs_rowwise(logits, ids[0, 1:])
        ent = _entropy_chunked(logits)
    return logp, ent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", default="4096,16384", help="comma-separated token counts per micro-batch")
    ap.add_argument("--layers", type=int, default=None, help="decoder layers (default: the 1.5B shape's 28)")
    ap.add_argument("--hidden", type=int, default=None, help="hidden size (CPU control-flow checks only)")
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary (CPU control-flow checks only)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    import torch

    shape = me.QWEN2_1_5B
    if args.layers:
        shape = replace(shape, num_layers=args.layers)
    if args.hidden:
        shape = replace(shape, hidden_size=args.hidden, head_dim=args.hidden // shape.num_attention_heads,
                        intermediate_size=4 * args.hidden)
    if args.vocab:
        shape = replace(shape, vocab_size=args.vocab)
    token_counts = [int(t) for t in args.tokens.split(",")]
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        print("gpu_memory_check: no CUDA GPU here; --device cpu checks the control flow only", file=sys.stderr)
        return 2
    gpu_gib = torch.cuda.get_device_properties(0).total_memory / me.GIB if gpu else me.DEFAULT_GPU_GIB
    inp = me.EstimateInputs(gpu_gib=gpu_gib, n_gpus=1, fsdp_size=1, flash_attn_cross_entropy=False,
                            entropy_in_update=False, gradient_checkpointing=True, entropy_chunking=True)
    model, optim = _build(shape, args.device)
    _update_step(model, optim, 64, shape.vocab_size, args.device)   # grads and Adam states exist from here on
    rows = []
    for t in token_counts:
        row = {"tokens": t}
        for name, run, pass_fn in (("update", _update_step, me.update_pass), ("log-prob", None, me.log_prob_pass)):
            est = pass_fn(shape, inp, tokens=t)
            row[f"{name}_estimate_gib"] = round(_estimate_gib(est), 2)
            row[f"{name}_estimate_parts"] = {c.name: round(c.gib, 2) for c in est.components
                                             if c.name not in RUNTIME_PARTS}
            if gpu:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                start = time.time()
                if name == "update":
                    run(model, optim, t, shape.vocab_size, args.device)
                else:
                    _log_prob_pass(model, t, shape.vocab_size, args.device)
                torch.cuda.synchronize()
                row[f"{name}_measured_gib"] = round(torch.cuda.max_memory_allocated() / me.GIB, 2)
                row[f"{name}_ratio"] = round(row[f"{name}_measured_gib"] / row[f"{name}_estimate_gib"], 3)
                row[f"{name}_seconds"] = round(time.time() - start, 2)
            elif name == "update":
                run(model, optim, t, shape.vocab_size, args.device)
            else:
                _log_prob_pass(model, t, shape.vocab_size, args.device)
        rows.append(row)
        print(f"T={t}: " + "  ".join(f"{k}={v}" for k, v in row.items() if not k.endswith("_parts")), flush=True)
    result = {"model": shape.name, "layers": shape.num_layers, "params": shape.param_count,
              "device": torch.cuda.get_device_name(0) if gpu else "cpu (control flow only)",
              "torch": torch.__version__, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
