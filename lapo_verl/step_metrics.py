"""Per-step LAPO metrics for verl's tracker (console, TensorBoard, W&B, file...): pure functions.

Inputs are what verl's V1 trainer holds for each training response of a step: the reward score, the
response length (valid tokens of the response mask), the GRPO group uid and the reward manager's
``reward_extra_info`` dict. :mod:`lapo_verl.verl_ext.metrics_sampler` reads them and hands the result to
verl, which logs it with its own metrics at the same step.

Names (all under ``lapo/``; verl's multi-iteration aggregator reduces names containing ``min``/``max``
with min/max, so quantiles are named ``median``/``p90``):

* ``lapo/accuracy``, ``lapo/length/mean``, ``lapo/length/mean_correct``
* ``lapo/grading/<reason>_frac`` for every grading reason (``no_answer``, ``truncated``, ``timeout``,
  ``mismatch``, ``match_fast``, ``match_verify``, ``error``), from ``grade_reason`` (lapo reward managers)
  or ``reason`` (``lapo_verl.grading.compute_score`` behind verl's own managers)
* stage 1: ``lapo/stage1/*`` band statistics (:func:`band_bonus_summary`, the same numbers the
  ``lapo_stage1`` advantage estimator writes to ``lapo_metrics.jsonl``), computed by :func:`stage1_band`,
  the function the estimator itself uses
* stage 2: ``lapo/stage2/plan_abs_error/{mean,median,p90}`` (|len - plan| over responses with a plan),
  ``lapo/stage2/plan_abs_error_correct/{mean,median}``, ``lapo/stage2/plan_error_signed/mean`` (length - plan),
  ``lapo/stage2/plan/mean``, ``lapo/stage2/closeness/mean_correct`` (R2 of correct responses),
  ``lapo/stage2/closeness/frac_gt_0p1`` (share of planned responses with R2 > 0.1: how many carry a plan signal)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lapo_verl.grading import REASONS
from lapo_verl.rewards import Stage1Params, band_bonus_batched

#: Responses whose score is at least this are "correct" (the stage-1 reward manager emits 0 or 1).
CORRECT_THRESHOLD = 0.5
# stage 2: a planned response "carries a plan signal" when its closeness term R2 is above this
CLOSE_LEVEL = 0.1
CLOSE_FRAC = "lapo/stage2/closeness/frac_gt_0p1"


def stage1_band(scores: np.ndarray, lengths: np.ndarray, index: Sequence[Any], params: Stage1Params,
                group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band bonus R1 of a batch of GRPO groups: ``(correct, r1, lo, hi)``.

    ``scores`` are the stage-1 rewards (``acc``), ``lengths`` the response lengths, ``index`` the group uid
    of each row. Rows with length 0 (verl's padding rows) are never correct. ``group``: integer ids of
    ``index`` already computed by the caller (:func:`lapo_verl.rewards.group_ids`; ``lo``/``hi`` then follow
    their order), so that the advantage estimator factorises the uids once.

    >>> from lapo_verl.rewards import Stage1Params
    >>> p = Stage1Params(alpha=0.7, band=(0.3, 0.7), falloff=100.0, bonus_rule="paper")
    >>> correct, r1, lo, hi = stage1_band(np.array([1., 1., 0.]), np.array([10., 20., 5.]), ["a", "a", "a"], p)
    >>> correct.tolist(), r1.tolist(), lo.tolist(), hi.tolist()
    ([True, True, False], [0.97, 0.97, 0.0], [13.0], [17.0])
    """
    scores = np.asarray(scores, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    correct = (scores >= CORRECT_THRESHOLD) & (lengths > 0)
    if group is None:
        _, group = np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True)
    r1, lo, hi = band_bonus_batched(lengths, correct, group, band=params.band, falloff=params.falloff,
                                    empty_band_gets_bonus=params.bonus_rule == "paper")
    return correct, r1, lo, hi


def band_bonus_summary(lengths: np.ndarray, correct: np.ndarray, r1: np.ndarray, lo: np.ndarray) -> dict[str, float]:
    """Per-step numbers that make the stage-1 reward visible in logs."""
    n_correct = int(correct.sum())
    return {
        "lapo/stage1/accuracy": float(correct.mean()) if correct.size else 0.0,
        "lapo/stage1/groups": int(lo.size),
        "lapo/stage1/groups_with_correct": int(np.isfinite(lo).sum()),
        "lapo/stage1/bonus_mean_correct": float(r1[correct].mean()) if n_correct else 0.0,
        "lapo/stage1/in_band_frac_correct": float((r1[correct] >= 1.0).mean()) if n_correct else 0.0,
        "lapo/stage1/length_mean": float(lengths.mean()) if lengths.size else 0.0,
        "lapo/stage1/length_mean_correct": float(lengths[correct].mean()) if n_correct else 0.0,
    }


def stage1_metrics(scores: np.ndarray, lengths: np.ndarray, index: Sequence[Any], params: Stage1Params
                   ) -> dict[str, float]:
    """:func:`band_bonus_summary` plus the band's width and the reward ``acc + alpha * R1`` GRPO sees."""
    lengths = np.asarray(lengths, dtype=np.float64)
    correct, r1, lo, hi = stage1_band(scores, lengths, index, params)
    out = band_bonus_summary(lengths, correct, r1, lo)
    solved = np.isfinite(lo)
    out["lapo/stage1/band_width/mean"] = float((hi[solved] - lo[solved]).mean()) if solved.any() else 0.0
    out["lapo/stage1/reward/mean"] = float((correct + params.alpha * r1).mean()) if correct.size else 0.0
    return out


def _column(infos: Sequence[Mapping[str, Any]], key: str) -> list[Any] | None:
    """``info[key]`` of every row, or None when some row lacks it (a manager that does not emit it)."""
    values = [info.get(key) for info in infos]
    return None if not values or any(v is None for v in values) else values


def _floats(values: Sequence[Any]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr


def response_metrics(infos: Sequence[Mapping[str, Any]], lengths: Sequence[float]) -> dict[str, float]:
    """Accuracy, lengths, grading outcomes and stage-2 plan error of one step's training responses.

    ``infos`` are the rows' ``reward_extra_info`` dicts, ``lengths`` their response lengths. Keys a reward
    manager does not emit are skipped (verl's ``naive`` manager has no ``acc``: no ``lapo/accuracy``).

    >>> m = response_metrics([{"acc": 1.0, "grade_reason": "match_fast", "plan": 10.0, "plan_abs_error": 2.0,
    ...                        "r2": 0.9}, {"acc": 0.0, "grade_reason": "truncated", "plan": 30.0,
    ...                        "plan_abs_error": 14.0, "r2": 0.0}], [12, 16])
    >>> m["lapo/accuracy"], m["lapo/grading/truncated_frac"], m["lapo/stage2/plan_abs_error/median"]
    (0.5, 0.5, 8.0)
    >>> m["lapo/stage2/plan_error_signed/mean"], m["lapo/stage2/closeness/mean_correct"], m[CLOSE_FRAC]
    (-6.0, 0.9, 0.5)
    """
    out: dict[str, float] = {}
    if not infos:
        return out
    lengths_arr = np.asarray(lengths, dtype=np.float64)
    out["lapo/length/mean"] = float(lengths_arr.mean())
    acc = _column(infos, "acc")
    correct = None
    if acc is not None:
        correct = _floats(acc) >= CORRECT_THRESHOLD
        out["lapo/accuracy"] = float(correct.mean())
        out["lapo/length/mean_correct"] = float(lengths_arr[correct].mean()) if correct.any() else 0.0
    reasons = _column(infos, "grade_reason") or _column(infos, "reason")
    if reasons is not None:
        reasons = [str(r) for r in reasons]
        for reason in REASONS:
            out[f"lapo/grading/{reason}_frac"] = sum(r == reason for r in reasons) / len(reasons)
    plan, err = _column(infos, "plan"), _column(infos, "plan_abs_error")
    if plan is not None and err is not None:
        plan_arr, err_arr = _floats(plan), _floats(err)
        has_plan = np.isfinite(plan_arr) & np.isfinite(err_arr)  # NaN: a row without a plan
        if has_plan.any():
            e = err_arr[has_plan]
            out["lapo/stage2/plan_abs_error/mean"] = float(e.mean())
            out["lapo/stage2/plan_abs_error/median"] = float(np.median(e))
            out["lapo/stage2/plan_abs_error/p90"] = float(np.quantile(e, 0.9))
            out["lapo/stage2/plan_error_signed/mean"] = float((lengths_arr[has_plan] - plan_arr[has_plan]).mean())
            out["lapo/stage2/plan/mean"] = float(plan_arr[has_plan].mean())
            out["lapo/stage2/planned_frac"] = float(has_plan.mean())
            if correct is not None:
                ok = has_plan & correct
                out["lapo/stage2/plan_abs_error_correct/mean"] = float(err_arr[ok].mean()) if ok.any() else 0.0
                out["lapo/stage2/plan_abs_error_correct/median"] = float(np.median(err_arr[ok])) if ok.any() else 0.0
                r2 = _column(infos, "r2")
                if r2 is not None:
                    r2_arr = _floats(r2)
                    out["lapo/stage2/closeness/mean_correct"] = float(r2_arr[ok].mean()) if ok.any() else 0.0
                    # the share of planned rollouts stage 2 gets a plan signal from (R2 is 0 when wrong)
                    out[CLOSE_FRAC] = float((r2_arr[has_plan] > CLOSE_LEVEL).mean())
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}
