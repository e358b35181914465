"""``lapo-verl doctor``: is lapo-verl installed so that verl will find every piece of it?

verl imports plugins inside ``try/except`` and logs failures at DEBUG level, so a broken install only shows
up later as "Unknown reward manager" or, worse, ``+recipe=lapo_stage1`` silently becoming a plain config key.
The checks run in fresh Python processes, the way verl's own processes start (one process per environment they
need), and print the real error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass

# what lapo_verl.verl_ext.reward_managers registers (tests/test_doctor_lists.py keeps the two in step)
REWARD_MANAGERS = ("lapo_stage1", "lapo_stage2", "lapo_acc_only", "lapo_l1_exact", "lapo_l1_max", "lapo_thinkprune")
ADV_ESTIMATORS = ("lapo_stage1", "lapo_grpo")
RECIPES = ("lapo_stage1", "lapo_stage2")
UNDECLARED_VERL_DEPS = ("cachetools", "uvicorn", "fastapi", "starlette", "transfer_queue")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    info: bool = False  # printed as [info]; never makes the install unhealthy


# Checks that need a fresh interpreter are *probes*: a code snippet, run in a new process the way verl's own
# processes start (the plugin is imported by `import verl` there, never by this process). Probes that need the same
# environment share one process, run one after another with each failure caught and reported separately: every
# process pays ~10 s of CPU for importing verl, torch and transformers, and the checks only differ in what they ask.
_MARK = "@@lapo-doctor@@"
_PROBE_RUNNER = f"""
import contextlib, io, json, sys, textwrap, traceback
for name, code in json.loads(sys.argv[1]):
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(textwrap.dedent(code), "<doctor:" + name + ">", "exec"), {{"__name__": "__doctor__"}})
        ok = True
    except BaseException:  # a failing probe is a failed check with its traceback; the next probe still runs
        ok = False
        buf.write(traceback.format_exc())
    print("{_MARK}" + json.dumps({{"name": name, "ok": ok, "out": buf.getvalue()}}), flush=True)
"""


@dataclass
class Probe:
    name: str
    code: str
    env: tuple[tuple[str, str], ...] = ()  # extra environment of the process it runs in


def run_probes(probes: list[Probe], timeout: int = 300) -> dict[str, tuple[bool, str]]:
    """name -> (ok, output). One fresh process per distinct ``env``; a probe whose process died before it reported
    (a crash, a timeout) fails with that process's output."""
    results: dict[str, tuple[bool, str]] = {}
    for env in dict.fromkeys(p.env for p in probes):
        group = [p for p in probes if p.env == env]
        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE_RUNNER, json.dumps([(p.name, p.code) for p in group])],
                                  capture_output=True, text=True, timeout=timeout, env={**os.environ, **dict(env)})
            stdout, tail = proc.stdout, (proc.stdout + proc.stderr).strip()[-3000:]
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            tail = f"timed out after {timeout} s"
        for line in stdout.splitlines():
            if line.startswith(_MARK):
                row = json.loads(line[len(_MARK):])
                results[row["name"]] = (row["ok"], row["out"].strip())
        for p in group:
            results.setdefault(p.name, (False, f"the check's process ended before it reported: {tail}"))
    return results


def check_verl_version() -> Check:
    from importlib.metadata import PackageNotFoundError, version

    from lapo_verl import SUPPORTED_VERL

    try:
        found = version("verl")
    except PackageNotFoundError:
        return Check("verl installed", False, "verl is not installed", "pip install 'verl==0.9.1'")
    from packaging.specifiers import SpecifierSet

    ok = found in SpecifierSet(",".join(SUPPORTED_VERL))
    return Check("verl version", ok, f"verl {found}; lapo-verl supports {','.join(SUPPORTED_VERL)}",
                 "" if ok else "pip install 'verl==0.9.1' (the only version tested)")


def check_undeclared_deps(ok: bool, out: str) -> Check:
    missing = out.split() if ok else list(UNDECLARED_VERL_DEPS)
    return Check("verl's undeclared dependencies", not missing,
                 "all importable" if not missing else f"missing: {', '.join(missing)}",
                 "pip install cachetools uvicorn fastapi starlette transferqueue" if missing else "")


def check_plugin_import(ok: bool, out: str) -> Check:
    return Check("plugin module imports (lapo_verl.plugin)", ok, "ok" if ok else out[-3000:],
                 "" if ok else "fix the error above; verl would hide it and report 'Unknown reward manager'")


def check_registrations(ok: bool, out: str) -> Check:
    if not ok:
        return Check("registered with verl", False, out[-3000:], "reinstall lapo-verl in this environment")
    found = json.loads(out.strip().splitlines()[-1])
    missing = [n for n in REWARD_MANAGERS if n not in found["rm"]] + [n for n in ADV_ESTIMATORS if n not in found["adv"]]
    if "lapo_verl.plugin" not in found["eps"]:
        return Check("registered with verl", False, f"no verl.plugins entry point for lapo_verl (found {found['eps']})",
                     "pip install -e . (the entry point lives in the package metadata)")
    return Check("registered with verl", not missing,
                 f"reward managers {found['rm']}, advantage estimators {found['adv']}"
                 if not missing else f"not registered after `import verl`: {missing}",
                 "" if not missing else "run `python -c 'import lapo_verl.plugin'` and fix the error it shows")


def check_agent_loop(ok: bool, out: str) -> Check:
    return Check("stage-2 agent loop importable", ok, out.splitlines()[-1] if ok else out[-3000:],
                 "" if ok else "pip install cachetools uvicorn fastapi (verl's agent loop needs them)")


def check_recipes(ok: bool, out: str) -> Check:
    return Check("recipes compose (+recipe=lapo_stage1/2)", ok, out.splitlines()[-1] if ok else out[-3000:],
                 "" if ok else "reinstall with `pip install -e .`; check `python -m verl.trainer.main_ppo --info searchpath`")


def check_cpu_backend(ok: bool, out: str) -> Check:
    registered = ok and out.strip().splitlines()[-1] == "True"
    return Check("CPU backend (VERL_PLATFORM=cpu)", registered,
                 "rollout 'hf' registered" if registered else out[-2000:],
                 "" if registered else "only needed for CPU runs; see README 'CPU backend'")


# (probe, what its result means), in the order they run and are reported. The first probes of the plain process
# run before anything imports verl: a missing dependency or a broken plugin shows up as itself.
PROBE_CHECKS = (
    (Probe("undeclared deps", f"""
        import importlib
        for name in {UNDECLARED_VERL_DEPS!r}:
            try:
                importlib.import_module(name)
            except Exception:
                print(name)
        """), check_undeclared_deps),
    (Probe("plugin import", "import lapo_verl.plugin"), check_plugin_import),
    (Probe("registrations", f"""
        import json, verl  # loads every verl.plugins entry point, as each verl process does
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
        from importlib.metadata import entry_points
        eps = [e.value for e in entry_points(group="verl.plugins")]
        print(json.dumps({{"rm": [n for n in {REWARD_MANAGERS!r} if n in REWARD_MANAGER],
                           "adv": [n for n in {ADV_ESTIMATORS!r} if n in ADV_ESTIMATOR_REGISTRY], "eps": eps}}))
        """), check_registrations),
    (Probe("agent loop", """
        import lapo_verl.plugin
        from omegaconf import OmegaConf
        from hydra.utils import get_class
        from lapo_verl.resources import resource_path
        entries = OmegaConf.load(resource_path("agent_loops.yaml"))
        print([get_class(e._target_).__name__ for e in entries])
        """), check_agent_loop),
    (Probe("recipes", f"""
        import verl  # registers the Hydra search path, as main_ppo's import does
        from hydra import compose, initialize_config_module
        out = []
        for recipe in {RECIPES!r}:
            with initialize_config_module("verl.trainer.config", version_base=None):
                cfg = compose("ppo_trainer", overrides=["+recipe=" + recipe])
            assert "lapo" in cfg, "+recipe=%s became a plain key: the lapo-verl Hydra search path is missing" % recipe
            out.append("%s -> adv_estimator=%s reward=%s" % (recipe, cfg.algorithm.adv_estimator,
                                                             cfg.reward.reward_manager.name))
        print("; ".join(out))
        """), check_recipes),
    (Probe("cpu backend", """
        import verl
        from verl.workers.rollout.base import _ROLLOUT_REGISTRY
        print(("hf", "async") in _ROLLOUT_REGISTRY)
        """, env=(("VERL_PLATFORM", "cpu"),)), check_cpu_backend),
)


def probe_checks() -> list[Check]:
    results = run_probes([probe for probe, _ in PROBE_CHECKS])
    return [interpret(*results[probe.name]) for probe, interpret in PROBE_CHECKS]


def check_gpu_versions(strict: bool) -> Check:
    """Installed versions against verl 0.9.1's GPU pins (informational on CPU installs, a check with --gpu)."""
    from lapo_verl.gpu_stack import CHECKED, FLASH_ATTN_INSTALL, compare, installed_report, installed_versions, verl_pins

    pins = verl_pins()
    lines = installed_report(pins)
    mismatches = compare(installed_versions(list(pins)), pins, packages=(*CHECKED, "flash-attn"))
    detail = "; ".join(lines)
    fix = ""
    if mismatches:
        fix = ('pip install -e ".[gpu]" (verl[vllm]: ' + ", ".join(f"{p}=={v}" for p, v in sorted(pins.items())
                                                         if p != "flash-attn") + "), then "
               + FLASH_ATTN_INSTALL.format(version=pins.get("flash-attn", "2.8.3")))
    return Check("GPU stack vs verl 0.9.1's pins" + ("" if strict else " (--gpu makes it a check)"),
                 not (strict and mismatches), detail, fix, info=not strict)


def check_gpu_resolution() -> Check:
    from lapo_verl.gpu_stack import check_gpu_stack

    ok, message = check_gpu_stack()
    return Check("pip resolution of .[gpu] (dry run)", ok, message,
                 "" if ok else "make setup.py's gpu extra follow verl[vllm]; see README 'Install'")


def check_model(path: str) -> list[Check]:
    """Will verl's agent loops build prompts for the model in ``path`` (a local directory)?

    verl 0.9.1 chooses its continuous-token builder from config.json's ``model_type`` alone; for the paper's
    models (``qwen2`` + a DeepSeek-R1 tokenizer without ``<|im_end|>``) its pick fails at start-up. lapo-verl's
    agent loops choose a builder that fits (:mod:`lapo_verl.verl_ext.token_builder`); this check runs that
    choice on the directory and renders a stage-1 and a stage-2 prompt the way the loops do.
    """
    from pathlib import Path

    from lapo_verl.prompts import build_messages

    root = Path(path)
    cfg_file = root / "config.json"
    if not cfg_file.is_file():
        return [Check(f"model {path}", False, f"{cfg_file} not found",
                      "pass a local Hugging Face model directory (config.json + tokenizer files)")]
    model_type = json.loads(cfg_file.read_text()).get("model_type")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(root))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        return [Check(f"model {path}: tokenizer", False, f"{type(exc).__name__}: {exc}",
                      "the directory needs the tokenizer files of the model")]
    if not getattr(tok, "chat_template", None):
        return [Check(f"model {path}: chat template", False, "the tokenizer has no chat_template",
                      "use the model's tokenizer_config.json, or pass data.apply_chat_template_kwargs.chat_template")]
    from lapo_verl.plan_text import prompt_with_plan, reopen_think
    from lapo_verl.verl_ext.token_builder import choose_builder_family, create_builder

    checks = []
    try:
        choice = choose_builder_family(tok, model_type)
    except ValueError as exc:
        return [Check(f"model {path}: continuous-token builder", False, str(exc), "check the tokenizer files")]
    if choice.overridden:
        detail = (f"model_type={model_type!r}: verl 0.9.1 alone would fail at start-up ({choice.verl_error}); "
                  f"lapo-verl's agent loops use verl's {choice.family!r} builder instead (recipes select them)")
    else:
        detail = f"model_type={model_type!r}: verl's {choice.family!r} builder fits the tokenizer"
    checks.append(Check("continuous-token builder", True, detail))
    try:
        builder = create_builder(tok, choice)
        ids = builder.build_initial_tokens(build_messages("What is 1+1?"))
        text = tok.decode(ids, skip_special_tokens=False)
    except Exception as exc:  # noqa: BLE001
        return checks + [Check("prompt rendering", False, f"{type(exc).__name__}: {exc}",
                               "the chat template must render [user] messages with add_generation_prompt=True")]
    stage1 = reopen_think(text)
    note = " (closed empty <think></think> reopened by the lapo loops)" if stage1 != text else ""
    stage2 = prompt_with_plan(text, "I will answer the question with 734 tokens.")
    checks.append(Check("prompt rendering", True,
                        f"stage-1 prompt ends {stage1[-40:]!r}{note}; stage-2 ends {stage2[-60:]!r}"))
    return checks


CHECKS = (check_verl_version, probe_checks)  # each returns a Check or a list of them


def estimate_memory(recipe: str, overrides: list[str], gpu_gib: float | None) -> int:
    """``doctor --estimate-memory``: compose the recipe as ``lapo-verl resolve`` does and print the estimate table.

    Exit 0 whatever the estimate says (an estimate never stops a run); 2 when the config does not compose.
    """
    from lapo_verl.memory_estimate import estimate_or_reason, format_estimate
    from lapo_verl.resolve import compose_recipe

    try:
        cfg = compose_recipe(recipe, overrides)
    except Exception as exc:  # noqa: BLE001 - a bad override or recipe name: show Hydra's message
        print(f"lapo-verl doctor: cannot compose +recipe={recipe} {' '.join(overrides)}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    est, reason = estimate_or_reason(cfg, gpu_gib)
    print(format_estimate(est) if est is not None else f"memory estimate skipped: {reason}")
    return 0


def memory_table(recipe: str, overrides: list[str], gpu_gib: float | None) -> int:
    """``doctor --memory-table``: the README's estimate table (paper models x 4k-32k responses x 4/8 GPUs)."""
    from lapo_verl.memory_estimate import DEFAULT_GPU_GIB, format_paper_table, paper_settings_rows
    from lapo_verl.resolve import compose_recipe

    cfg = compose_recipe(recipe, overrides)
    gib = DEFAULT_GPU_GIB if gpu_gib is None else gpu_gib
    print(f"Per-GPU memory ESTIMATES (not measured), GiB, {gib:g}-GiB GPUs, +recipe={recipe} {' '.join(overrides)}")
    print(format_paper_table(paper_settings_rows(cfg, gib)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:  # Hydra overrides for --estimate-memory / --memory-table, as in `lapo-verl resolve`
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        prog="lapo-verl doctor",
        description="Check that verl finds every lapo-verl component; the checks run in fresh processes and "
                    "show the real error (verl hides plugin import errors). With --estimate-memory: estimate a "
                    "run's per-GPU memory instead.",
        epilog="examples:\n"
               "  lapo-verl doctor\n"
               "  lapo-verl doctor --model /path/to/DeepSeek-R1-Distill-Qwen-1.5B\n"
               "  lapo-verl doctor --estimate-memory lapo_stage1 --gpu-gib 80 -- \\\n"
               "      actor_rollout_ref.model.path=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B data.max_response_length=16384\n"
               "  lapo-verl doctor --memory-table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU install: torch/vllm/transformers/flash-attn must be verl 0.9.1's pinned versions")
    parser.add_argument("--check-gpu-stack", action="store_true",
                        help="also resolve this checkout's [gpu] extra with `pip install --dry-run` (network, "
                             "metadata only, a few minutes) and fail if vllm/torch/transformers differ from verl's pins")
    parser.add_argument("--model", metavar="PATH", default=None,
                        help="check only a local model directory: will verl's agent loops (through lapo-verl's) "
                             "start with its config.json model_type and tokenizer, and what prompts they send")
    memory = parser.add_argument_group("memory estimate (estimates, not measurements; never stops a run)")
    memory.add_argument("--estimate-memory", metavar="RECIPE", default=None,
                        help="compose +recipe=RECIPE with the Hydra overrides after `--` (as `lapo-verl resolve` "
                             "does) and print the per-GPU memory estimate of the log-prob, ref and update passes "
                             "and of vLLM, with a warning naming the knob to change for each part over the GPU. "
                             "The model's shape comes from actor_rollout_ref.model.path's config.json, or a built-in "
                             "shape for the paper's models (R1-Distill-Qwen-1.5B/7B, DeepScaleR-1.5B, Qwen2.5-7B)")
    memory.add_argument("--gpu-gib", type=float, default=None, metavar="GIB",
                        help="GPU memory in GiB (default: nvidia-smi's, else 80)")
    memory.add_argument("--memory-table", nargs="?", const="lapo_stage1", default=None, metavar="RECIPE",
                        help="print the README's table of estimates: the paper's 1.5B and 7B models x 4k-32k "
                             "responses x 4 and 8 GPUs, with RECIPE's settings (default lapo_stage1)")
    args = parser.parse_args(argv)
    if overrides and not (args.estimate_memory or args.memory_table):
        parser.error("Hydra overrides after `--` need --estimate-memory RECIPE or --memory-table")
    if args.estimate_memory:
        return estimate_memory(args.estimate_memory, overrides, args.gpu_gib)
    if args.memory_table:
        return memory_table(args.memory_table, overrides, args.gpu_gib)
    checks = [*CHECKS, lambda: check_gpu_versions(args.gpu)]
    if args.check_gpu_stack:
        checks.append(check_gpu_resolution)
    results = []
    if args.model:
        try:
            results = check_model(args.model)
        except Exception as exc:  # noqa: BLE001
            results = [Check(f"model {args.model}", False, f"{type(exc).__name__}: {exc}")]
        return _report(results, args.json, "model directory OK", "model directory NOT OK: see FAIL lines above")
    for check in checks:
        try:
            found = check()
            results.extend(found if isinstance(found, list) else [found])
        except Exception as exc:  # a crashing check is a failed check, with its message
            results.append(Check(getattr(check, "__name__", "check"), False, f"{type(exc).__name__}: {exc}"))
    return _report(results, args.json, "lapo-verl is healthy", "lapo-verl is NOT healthy: see FAIL lines above")


def _report(results: list[Check], as_json: bool, good: str, bad: str) -> int:
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=1))
    else:
        for r in results:
            print(f"[{'info' if r.info else 'ok' if r.ok else 'FAIL'}] {r.name}: {r.detail}")
            if (not r.ok or r.info) and r.fix:
                print(f"       fix: {r.fix}")
    healthy = all(r.ok for r in results)
    print(good if healthy else bad)
    return 0 if healthy else 1
