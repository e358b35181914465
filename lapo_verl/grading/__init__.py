"""Answer grading shared by the training rewards and evaluation.

``grade_completion(response, ground_truth, prompt_tail=..., truncated=...)`` is the one call of the
training reward managers and of ``lapo-verl eval`` (it derives ``reasoning_prefilled`` from the
prompt's tail). ``grade(response, ground_truth)`` extracts the final answer (see :mod:`.extract` for the rules,
including the truncation rule), then decides equivalence: a fast in-process path settles most
answers (:mod:`.notation` turns both answers into canonical strings, :mod:`.evaluate` computes exact
values with :mod:`.algebraic` numbers, :mod:`.compare` decides equal / not equal / undecided); the undecided rest goes to
math-verify in a subprocess pool with a hard deadline (:mod:`.verify_pool`). ``grade`` never raises an ``Exception``: failures are ``correct=False``
with a reason (Ctrl-C and ``SystemExit`` do propagate).

Truncation rule (``truncated=True``: the response hit the length limit): the response counts only
if it closed its reasoning with ``</think>`` and a complete ``\\boxed{}`` answer follows; otherwise
it is graded 0 with reason ``"truncated"``.

Reasons: ``match_fast`` / ``match_verify`` (correct, decided by the fast path / math-verify),
``mismatch``, ``no_answer`` (nothing extractable), ``truncated`` (cut by the length limit with no
final answer), ``timeout`` (math-verify exceeded ``timeout_s``), ``error`` (anything else failed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .compare import decimal_approximation, fast_equal
from .extract import (
    PROMPT_TAIL_TOKENS,
    extract_answer,
    last_boxed,
    prompt_opens_reasoning,
    prompt_tail_text,
    strip_ground_truth,
)
from .notation import normalize
from .verify_pool import ERROR, TIMEOUT, VerifyPool, get_pool

__all__ = [
    "REASONS",
    "GRADING_TIMEOUT_S",
    "GradeResult",
    "GradingStats",
    "STATS",
    "compute_score",
    "extract_answer",
    "fast_equal",
    "grade",
    "grade_completion",
    "grade_fast",
    "PROMPT_TAIL_TOKENS",
    "prompt_opens_reasoning",
    "prompt_tail_text",
    "last_boxed",
    "normalize",
    "strip_ground_truth",
    "get_pool",
    "VerifyPool",
]

REASONS = ("match_fast", "match_verify", "mismatch", "no_answer", "truncated", "timeout", "error")

#: math-verify deadline per answer, seconds: the default of training (``lapo.grading.timeout_s``) and evaluation
GRADING_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class GradeResult:
    correct: bool
    extracted: str | None  # the final answer string taken from the response (None if none)
    reason: str  # one of REASONS


class GradingStats:
    """Thread-safe counters of grading reasons."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(REASONS, 0)

    def add(self, result: GradeResult) -> None:
        with self._lock:
            self._counts[result.reason] = self._counts.get(result.reason, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def rates(self) -> dict[str, float]:
        snap = self.snapshot()
        total = sum(snap.values())
        return {k: (v / total if total else 0.0) for k, v in snap.items()}

    def reset(self) -> dict[str, int]:
        """Return the counts and zero them (per-step logging)."""
        with self._lock:
            snap, self._counts = self._counts, dict.fromkeys(REASONS, 0)
        return snap

    def metrics(self, prefix: str = "grading/", reset: bool = False) -> dict[str, float]:
        """Loggable rates, e.g. ``grading/no_answer_rate``, ``grading/timeout_rate``."""
        snap = self.reset() if reset else self.snapshot()
        total = sum(snap.values())
        out = {f"{prefix}{k}_rate": (v / total if total else 0.0) for k, v in snap.items()}
        out[f"{prefix}count"] = float(total)
        return out


#: Process-wide counters updated by every ``grade`` call.
STATS = GradingStats()


def _finish(res: GradeResult, stats: GradingStats | None) -> GradeResult:
    try:
        STATS.add(res)
        if stats is not None:
            stats.add(res)
    except Exception:  # noqa: BLE001
        pass
    return res


def grade(
    response: str,
    ground_truth: str,
    *,
    truncated: bool = False,
    timeout_s: float = GRADING_TIMEOUT_S,
    reasoning_prefilled: bool = False,
    use_verify: bool = True,
    stats: GradingStats | None = None,
) -> GradeResult:
    """Grade one response against its ground truth. Never raises an ``Exception`` (a failure is a
    verdict with reason ``"error"``); ``KeyboardInterrupt`` and ``SystemExit`` propagate, so an
    interrupted evaluation stores no verdict for the answer being graded.

    ``reasoning_prefilled=True``: the prompt ended with ``<think>``, so a response without
    ``</think>`` never finished reasoning and has no answer. ``use_verify=False``: fast path only
    (undecided -> mismatch), for benchmarking.
    """
    extracted = None
    try:
        extracted = extract_answer(
            response, truncated=truncated, reasoning_prefilled=reasoning_prefilled
        )
        if extracted is None:
            return _finish(GradeResult(False, None, "truncated" if truncated else "no_answer"), stats)
        gold = strip_ground_truth(ground_truth)
        verdict = fast_equal(extracted, gold)
        if verdict is True:
            return _finish(GradeResult(True, extracted, "match_fast"), stats)
        if verdict is False or not use_verify:
            return _finish(GradeResult(False, extracted, "mismatch"), stats)
        res = get_pool().check(gold, extracted, timeout_s)
        if res is True and decimal_approximation(extracted, gold):
            res = False  # math-verify accepts decimal approximations of exact answers; the rules do not
        if res is True:
            return _finish(GradeResult(True, extracted, "match_verify"), stats)
        if res is False:
            return _finish(GradeResult(False, extracted, "mismatch"), stats)
        if res == TIMEOUT:
            return _finish(GradeResult(False, extracted, "timeout"), stats)
        return _finish(GradeResult(False, extracted, "error"), stats)
    except Exception:  # noqa: BLE001 - never raise into verl; KeyboardInterrupt / SystemExit propagate
        return _finish(GradeResult(False, extracted if isinstance(extracted, str) else None, "error"), stats)


def grade_completion(
    response: str,
    ground_truth: str,
    *,
    prompt_tail: str | None,
    truncated: bool,
    timeout_s: float = GRADING_TIMEOUT_S,
    stats: GradingStats | None = None,
) -> GradeResult:
    """The one grading call of the training reward managers and of ``lapo-verl eval``.

    ``prompt_tail``: the end of the prompt as text (``prompt_tail_text(tokenizer, prompt_ids)``),
    or None when unknown. A prompt that ends inside an unclosed ``<think>`` means the reasoning was
    prefilled: the response must close it before an answer counts (``reasoning_prefilled``).
    ``truncated``: the response hit the length limit (see the module's truncation rule).
    """
    prefilled = prompt_tail is not None and prompt_opens_reasoning(prompt_tail)
    return grade(response, ground_truth, truncated=truncated, timeout_s=timeout_s,
                 reasoning_prefilled=prefilled, stats=stats)


def grade_fast(response: str, ground_truth: str, *, truncated: bool = False) -> GradeResult:
    """Fast path only (no math-verify): undecided answers count as mismatches."""
    return grade(response, ground_truth, truncated=truncated, use_verify=False)


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kw) -> dict:
    """verl ``custom_reward_function`` entry point.

    ``extra_info`` may carry ``truncated`` (bool) and ``reasoning_prefilled`` (bool); ``kw`` may
    carry ``timeout_s``. Returns ``score`` (= acc), ``acc``, ``reason`` and numeric flags
    ``no_answer`` / ``timeout`` so their means show up in verl's logs.
    """
    info = extra_info if isinstance(extra_info, dict) else {}
    try:
        timeout_s = float(kw.get("timeout_s", info.get("grading_timeout_s", GRADING_TIMEOUT_S)))
    except Exception:  # noqa: BLE001
        timeout_s = GRADING_TIMEOUT_S
    res = grade(
        solution_str if isinstance(solution_str, str) else str(solution_str),
        ground_truth if isinstance(ground_truth, str) else str(ground_truth),
        truncated=bool(info.get("truncated", kw.get("truncated", False))),
        reasoning_prefilled=bool(info.get("reasoning_prefilled", kw.get("reasoning_prefilled", False))),
        timeout_s=timeout_s,
    )
    acc = float(res.correct)
    return {
        "score": acc,
        "acc": acc,
        "reason": res.reason,
        "no_answer": float(res.reason in ("no_answer", "truncated")),
        "timeout": float(res.reason == "timeout"),
    }
