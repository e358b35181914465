"""The over-thinking base model: a tiny Qwen2ForCausalLM (float32) trained by plain torch SFT on
:func:`lapo_verl.replica.task.trace` responses (slips in the first pass, 0..3 random re-checks).

Prompts are rendered exactly as verl's agent loop renders them (chat template with the generation
prompt, which opens ``<think>``); the loss covers the response and the closing ``<|im_end|>`` only.
The result is cached under ``<cache>/base-<digest of the settings>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lapo_verl.prompts import build_messages
from lapo_verl.replica import task
from lapo_verl.replica.tokenizer import build_tokenizer, vocabulary

VERSION = 1  # bump when the trace format or the training loop changes


@dataclass(frozen=True)
class WarmupSettings:
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    max_positions: int = 320
    steps: int = 1200
    batch: int = 16
    lr: float = 3e-3
    slip: float = 0.12
    max_checks: int = 3
    n_problems: int = 20000
    seed: int = 0
    version: int = VERSION

    def digest(self) -> str:
        task_knobs = {"levels": task.LEVELS, "max_value": task.MAX_VALUE, "start_max": task.START_MAX}
        blob = json.dumps({**asdict(self), "vocab": vocabulary(), "task": task_knobs}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def prompt_ids(tok, problem: task.Problem) -> list[int]:
    text = tok.apply_chat_template(build_messages(problem.text), add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


def build_base_model(cache_dir: str | Path, settings: WarmupSettings = WarmupSettings(), log=print) -> Path:
    """Train (or reuse) the base model; returns its Hugging Face directory."""
    out = Path(cache_dir) / f"base-{settings.digest()}"
    if (out / ".complete").is_file():
        log(f"[warmup] cached base model {out}")
        return out
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    # one thread + eager attention: on a shared 2-core box, 2 threads spin against other jobs (measured 8-15x
    # slower per step under load) and sdpa's masked path is ~2x slower than eager at these sizes
    torch.set_num_threads(1)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tmp = out.with_name(out.name + ".tmp")
    tok = build_tokenizer(tmp)
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=settings.hidden, intermediate_size=settings.intermediate,
        num_hidden_layers=settings.layers, num_attention_heads=settings.heads,
        num_key_value_heads=settings.kv_heads, max_position_embeddings=settings.max_positions,
        tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=None, torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(cfg)
    model.config._attn_implementation = "eager"
    model.train()
    # warm-up problems: their own seed, never the held-out set's
    problems = task.make_problems(settings.n_problems, settings.seed + 555, "warmup")
    eos = tok.eos_token_id
    examples = []
    for p in problems:
        resp, _ = task.trace(p, rng, slip=settings.slip, max_checks=settings.max_checks)
        pi = prompt_ids(tok, p)
        ri = tok(resp, add_special_tokens=False)["input_ids"] + [eos]
        examples.append((pi, ri))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98), weight_decay=0.0)
    warm = max(1, settings.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, settings.steps) / settings.steps))))
    t0 = time.time()
    for step in range(settings.steps):
        batch = [examples[rng.randrange(len(examples))] for _ in range(settings.batch)]
        width = max(len(a) + len(b) for a, b in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (a, b) in enumerate(batch):
            seq = a + b
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, len(a) : len(seq)] = torch.tensor(b)
            mask[row, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == settings.steps - 1:
            log(f"[warmup] step {step + 1}/{settings.steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    model.config._attn_implementation = "sdpa"
    model.generation_config = GenerationConfig(eos_token_id=[eos], pad_token_id=tok.pad_token_id, do_sample=True)
    model.save_pretrained(str(tmp))
    (tmp / "warmup_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train (or reuse) the replica's over-thinking base model")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--steps", type=int, default=WarmupSettings.steps)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    path = build_base_model(args.cache, WarmupSettings(steps=args.steps, seed=args.seed))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
