"""The over-thinking base model: a tiny Qwen2ForCausalLM (float32) trained by plain torch SFT on
:func:`lapo_verl.replica.task.trace` responses (coin-flip slips in a hasty first pass, a right-skewed random
number of re-checks, independent of the difficulty).

Prompts are rendered exactly as verl's agent loop renders them (chat template with the generation
prompt, which opens ``<think>``); the loss covers the response and the closing ``<|im_end|>`` only.
``plan_fraction`` of the traces carry the stage-2 plan sentence, inserted as the stage-2 agent loop inserts it.
Version 2 stated the trace's true length (the base kept plans before any RL); version 3 never showed the
sentence (its never-trained tokens broke the model whenever stage 2 inserted them); version 4 states a number
drawn independently of the trace, so the sentence is familiar and carries no length information, and whatever
adherence LAPO-I has is learned in stage 2 (docs/replica-design.md). After training, :func:`check_base` measures the base per level on
problems of the warm-up's own seed (never the held-out set) and writes ``base_check.json``.
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

from lapo_verl.replica import task
from lapo_verl.replica.tokenizer import build_tokenizer, vocabulary

VERSION = 4  # bump when the trace format or the training loop changes


@dataclass(frozen=True)
class WarmupSettings:
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    max_positions: int = 320
    steps: int = 1500
    batch: int = 32
    lr: float = 3e-3
    slip: float = task.TRAP_SLIP
    continue_p: float = task.RECHECK_CONTINUE
    max_checks: int = task.MAX_CHECKS
    # version 4: half of the traces carry the plan sentence with a number drawn independently of the trace
    # (uniform in plan_low..plan_high): the sentence is familiar text, but it tells nothing about the length.
    # Version 3 never showed it (0.0) and a sentence made of never-trained tokens broke the model; version 2
    # showed the trace's true length ("true"), which taught plan keeping before any RL.
    plan_fraction: float = 0.5
    plan_numbers: str = "random"  # "random" | "true"
    plan_low: int = 10
    plan_high: int = 160
    n_problems: int = 40000
    seed: int = 4                # version 4 (version 3: 3, version 2: 0)
    version: int = VERSION

    def digest(self) -> str:
        task_knobs = {"levels": task.LEVELS, "max_value": task.MAX_VALUE, "start_max": task.START_MAX,
                      "trap_operand": task.TRAP_OPERAND}
        blob = json.dumps({**asdict(self), "vocab": vocabulary(), "task": task_knobs}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def warmup_plan(rng: random.Random, settings: WarmupSettings, true_length: int) -> int:
    """The number a warm-up trace's plan sentence states: its true length (``plan_numbers="true"``, version 2) or a
    number independent of the trace (``"random"``, version 4), so the base learns the sentence as text only.

    >>> warmup_plan(random.Random(0), WarmupSettings(plan_numbers="true"), 42)
    42
    >>> 10 <= warmup_plan(random.Random(0), WarmupSettings(), 42) <= 160
    True
    """
    if settings.plan_numbers == "true":
        return true_length
    if settings.plan_numbers == "random":
        return rng.randint(settings.plan_low, settings.plan_high)
    raise ValueError(f"WarmupSettings.plan_numbers must be 'true' or 'random', got {settings.plan_numbers!r}")


def prompt_ids(tok, problem: task.Problem, plan: int | None = None) -> list[int]:
    """Prompt ids as verl renders them; with ``plan``, exactly as the stage-2 agent loop inserts it."""
    from lapo_verl.replica.evaluate import render

    return render(tok, problem.text, plan)


def build_base_model(cache_dir: str | Path, settings: WarmupSettings = WarmupSettings(), log=print,
                     check_per_level: int = 40) -> Path:
    """Train (or reuse) the base model; returns its Hugging Face directory. ``check_per_level``: problems per
    level of the base check (not part of the cache key: it measures the model, it does not make it)."""
    out = Path(cache_dir) / f"base-{settings.digest()}"
    if (out / ".complete").is_file():
        log(f"[warmup] cached base model {out}")
        return out
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    # eager attention: sdpa's masked path is ~2x slower than eager at these sizes
    torch.set_num_threads(threads())
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
        resp, _ = task.trace(p, rng, slip=settings.slip, continue_p=settings.continue_p,
                             max_checks=settings.max_checks)
        ri = tok(resp, add_special_tokens=False)["input_ids"] + [eos]
        # the plan counts generated tokens incl. EOS, as verl's response length (and so stage 1) does
        plan = warmup_plan(rng, settings, len(ri)) if rng.random() < settings.plan_fraction else None
        examples.append((prompt_ids(tok, p, plan), ri))
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
    train_s = time.time() - t0
    model.config._attn_implementation = "sdpa"
    model.generation_config = GenerationConfig(eos_token_id=[eos], pad_token_id=tok.pad_token_id, do_sample=True)
    model.save_pretrained(str(tmp))
    (tmp / "warmup_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    model.eval()
    t_check = time.time()
    check = check_base(model, tok, settings, n_per_level=check_per_level, log=log)
    (tmp / "base_check.json").write_text(json.dumps(check, indent=1))
    # the report states where and how long the base was built (floating point differs across CPUs)
    (tmp / "build.json").write_text(json.dumps({"warmup_s": round(train_s, 1),
                                                 "check_s": round(time.time() - t_check, 1),
                                                 "cpu": cpu_model(), "threads": threads()}, indent=1))
    (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string elsewhere."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def threads() -> int:
    import os

    return max(1, min(2, len(os.sched_getaffinity(0))))


def parse_trace(text: str) -> tuple[list[str], str | None]:
    """The passes (lines before ``</think>``) and the boxed answer of a response.

    >>> parse_trace("+1=2 -1=1\\ncheck +1=2 -1=1\\n</think>\\n\\\\boxed{1}")
    (['+1=2 -1=1', 'check +1=2 -1=1'], '1')
    """
    head, _, tail = text.partition("</think>")
    passes = [ln.strip() for ln in head.strip().split("\n") if ln.strip()]
    answer = None
    if "\\boxed{" in tail:
        answer = tail.split("\\boxed{", 1)[1].split("}", 1)[0]
    return passes, answer


def check_base(model, tok, settings: WarmupSettings, n_per_level: int = 40, log=print) -> dict:
    """The base model per level on problems of the warm-up's own seed (never the held-out set), sampled as the
    evaluation samples (T = 0.6, top-p 0.95): accuracy, how often the first pass and a re-check pass are
    exactly the correct chain, mean re-checks, and with the true-length plan of a fresh trace given, the
    median |len - plan| / plan. Fails loudly if re-check passes are not reliable: then the base has not
    learned the arithmetic and nothing downstream is meaningful."""
    import statistics

    from lapo_verl.replica.evaluate import sample

    problems = [p for p in task.make_problems(n_per_level * len(task.LEVELS), settings.seed + 777, "check")]
    rng = random.Random(settings.seed + 778)
    eos = tok.eos_token_id
    rows = []
    for with_plan in (False, True):
        prompts, plans = [], []
        for p in problems:
            resp, _ = task.trace(p, rng, slip=settings.slip, continue_p=settings.continue_p,
                                 max_checks=settings.max_checks)
            plan = len(tok(resp, add_special_tokens=False)["input_ids"]) + 1 if with_plan else None
            prompts.append(prompt_ids(tok, p, plan))
            plans.append(plan)
        generated = sample(model, tok, prompts, max_new_tokens=192, temperature=0.6, top_p=0.95,
                           seed=settings.seed + 779)
        for p, plan, row in zip(problems, plans, generated):
            n = row.index(eos) + 1 if eos in row else len(row)
            passes, answer = parse_trace(tok.decode(row[:n], skip_special_tokens=False))
            good = task.render_pass(p.start, p.ops, task.chain_values(p.start, p.ops))
            rows.append(dict(level=p.level, plan=plan, n=n, correct=answer == str(p.answer),
                             first_ok=bool(passes) and passes[0] == good,
                             checks=[q == f"{task.CHECK_WORD} {good}" for q in passes[1:]]))
    report: dict = {"per_level": {}}
    for lv in task.LEVELS:
        free = [r for r in rows if r["level"] == lv and r["plan"] is None]
        planned = [r for r in rows if r["level"] == lv and r["plan"] is not None]
        checks = [c for r in free for c in r["checks"]]
        report["per_level"][str(lv)] = {
            "accuracy": round(100 * sum(r["correct"] for r in free) / len(free), 1),
            "first_pass_exact": round(100 * sum(r["first_ok"] for r in free) / len(free), 1),
            "recheck_exact": round(100 * sum(checks) / len(checks), 1) if checks else None,
            "mean_rechecks": round(sum(len(r["checks"]) for r in free) / len(free), 2),
            "mean_tokens": round(sum(r["n"] for r in free) / len(free), 1),
            "plan_rel_error_median": round(statistics.median(abs(r["n"] - r["plan"]) / r["plan"] for r in planned), 3),
            "plan_accuracy": round(100 * sum(r["correct"] for r in planned) / len(planned), 1),
        }
        log(f"[warmup] check d={lv}: " + "  ".join(f"{k} {v}" for k, v in report["per_level"][str(lv)].items()))
    all_checks = [c for r in rows if r["plan"] is None for c in r["checks"]]
    report["recheck_exact"] = round(100 * sum(all_checks) / max(1, len(all_checks)), 1)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train (or reuse) the replica's over-thinking base model")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--steps", type=int, default=WarmupSettings.steps)
    ap.add_argument("--seed", type=int, default=WarmupSettings.seed)
    args = ap.parse_args(argv)
    path = build_base_model(args.cache, WarmupSettings(steps=args.steps, seed=args.seed))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
