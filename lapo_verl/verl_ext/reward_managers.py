"""LAPO reward managers for verl's reward loop (``reward.reward_manager.name=<name>``).

Registered names (verl 0.9.1 registry ``verl.experimental.reward_loop.reward_manager``):

* ``lapo_stage1``: correctness only (``acc`` in {0, 1}); the band bonus needs the whole group and is
  added by the ``lapo_stage1`` advantage estimator.
* ``lapo_stage2``: ``acc + beta * acc * exp(-(len - plan)^2 / (2 sigma^2))`` with the row's plan; with
  ``lapo.stage2.plan_range_width > 0`` (the range ablation) 1 inside the plan's range, the same Gaussian outside.
* ``lapo_acc_only``: correctness only (the accuracy-only GRPO baseline), same grader and records.
* ``lapo_l1_exact`` / ``lapo_l1_max``: LCPO rewards against the row's target length.
* ``lapo_thinkprune``: correctness under a hard length limit.

Each call scores one response (verl streams them from the agent loop to random reward workers). The
length is verl's response length in tokens (the valid part of ``responses``), never a re-tokenisation
of decoded text; the stage-2 plan sentence is in the prompt, so it is not counted.

The managers write no file: what a length record needs (``acc``, ``length``, ``grade_reason``, stage 2's
``plan`` and ``r2``, the baselines' ``target``) goes back in ``reward_extra_info``, which verl carries to the
trainer, whose metrics sampler writes the run's records (:mod:`lapo_verl.verl_ext.metrics_sampler`). Stage 2
scores against the plan the agent loop stated, carried with the sample (``tool_extra_fields``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from lapo_verl import config as lapo_config
from lapo_verl.data.columns import (
    PLAN_COLUMN,
    PROBLEM_ID_COLUMN,
    RECORD_COLUMN,
    TARGET_COLUMN,
)
from lapo_verl.grading import (  # noqa: F401  (PROMPT_TAIL_TOKENS, prompt_opens_reasoning: re-exported)
    PROMPT_TAIL_TOKENS,
    GradeResult,
    GradingStats,
    grade_completion,
    prompt_opens_reasoning,
    prompt_tail_text,
)
from lapo_verl.plan_updates import STATED_PLAN_FIELD
from lapo_verl.rewards import (
    l1_exact_reward,
    l1_max_reward,
    plan_closeness,
    plan_range,
    range_closeness,
    stage2_reward,
    thinkprune_reward,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredRow:
    """What a reward manager knows about one response."""

    problem_id: str
    ground_truth: str
    length: int
    truncated: bool
    record: bool
    step: int
    uid: str
    session: int
    row: dict  # the row's non-tensor fields (plan, target, ...)
    prompt_tail: Any = None  # last prompt token ids: tells whether the prompt opened <think>


#: a reward worker logs its grading reasons once per this many responses
GRADING_LOG_EVERY = 1024


def _scalar(value: Any) -> Any:
    """Non-tensor fields arrive as numpy scalars / 0-d arrays; unwrap them."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


class LapoRewardManagerBase(RewardManagerBase):
    """Shared plumbing: field extraction, grading off the event loop, extra info."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None,
                 reward_model_tokenizer=None, **kwargs):
        super().__init__(config, tokenizer, compute_score)
        self.lapo = lapo_config.load(config, where="the config handed to the reward manager (lapo)")
        rollout = config.actor_rollout_ref.rollout
        self.max_response_length = int(rollout.get("response_length", 0) or 0)
        self.group_size = int(rollout.get("n", 1) or 1)
        # A user-supplied reward.custom_reward_function replaces the built-in grader (it must return
        # a number or a dict with "score"); verl always passes its default scorer otherwise.
        custom = config.reward.get("custom_reward_function") if config.get("reward") else None
        self.custom_correctness = compute_score if custom is not None and custom.get("path") else None
        self.grade_timeout = self.lapo.grading.timeout_s
        self.grading_stats = GradingStats()
        self._graded = 0
        # paper Eq. 8 (lapo_verl/plan_updates.py): the plan of each training step, as the agent loop stated it
        self.update_plans = self.lapo.stage == 2 and self.lapo.stage2.update_plans

    # ---------------------------------------------------------------- row access
    def _row(self, data: DataProto) -> tuple[ScoredRow, Any]:
        item = data[-1:][0]  # multi-turn outputs: score the last sequence, as verl's naive manager does
        nt = {k: _scalar(v) for k, v in item.non_tensor_batch.items()}
        responses = item.batch["responses"]
        response_width = responses.shape[-1]
        length = int(item.batch["attention_mask"][-response_width:].sum()) if "attention_mask" in item.batch.keys() else response_width
        extra_info = nt.get("extra_info") or {}
        problem_id = nt.get(PROBLEM_ID_COLUMN)
        if problem_id is None:
            problem_id = extra_info.get("index")
        reward_model = nt.get("reward_model") or {}
        ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        if ground_truth is None or str(ground_truth).strip() == "":
            raise ValueError(
                f"row of problem {problem_id!r} (data_source {nt.get('data_source')!r}) has no "
                "reward_model.ground_truth: rebuild the parquet with `lapo-verl prepare-data`"
            )
        prompt_tail = item.batch["prompts"][-PROMPT_TAIL_TOKENS:] if "prompts" in item.batch.keys() else None
        row = ScoredRow(
            problem_id=str(problem_id),
            ground_truth=str(ground_truth),
            length=length,
            truncated=bool(self.max_response_length) and length >= self.max_response_length,
            # verl tags validation batches with `validate`; the dataset's flag also covers paths that drop it
            record=bool(nt.get(RECORD_COLUMN, False)) and not bool(nt.get("validate", False)),
            step=int(nt.get("global_steps", 0) or 0),
            uid=str(nt.get("uid", "")),
            session=int(nt.get("session_id", 0) or 0),
            row=nt,
            prompt_tail=prompt_tail,
        )
        return row, responses[:length]

    def _grade(self, response_ids, row: ScoredRow) -> tuple[GradeResult, str]:
        # decoded as `lapo-verl eval` (and verl's own reward managers) decode responses: special tokens
        # (the final EOS) removed, so one response gets one verdict in training and in evaluation
        text = self.tokenizer.decode(response_ids, skip_special_tokens=True)
        if self.custom_correctness is not None:
            out = self.custom_correctness(
                data_source=row.row.get("data_source"), solution_str=text, ground_truth=row.ground_truth,
                extra_info=row.row.get("extra_info") or {},
            )
            score = out.get("score", 0.0) if isinstance(out, dict) else out
            ok = float(score) >= 0.5
            return GradeResult(correct=ok, extracted=None, reason="match_fast" if ok else "mismatch"), text
        if row.length == 0:
            return GradeResult(correct=False, extracted=None, reason="no_answer"), text
        tail = prompt_tail_text(self.tokenizer, row.prompt_tail) if row.prompt_tail is not None else None
        result = grade_completion(text, row.ground_truth, prompt_tail=tail, truncated=row.truncated,
                                  timeout_s=self.grade_timeout)
        return result, text

    def current_plan(self, row: ScoredRow):
        """The plan this response's prompt stated, carried from the agent loop with the sample; without one
        (verl's own agent loop, or validation rows) the row's plan. With ``update_plans`` (Eq. 8) a training
        response must carry it: the row's plan would be the initial one, not the one the prompt stated."""
        carried = row.row.get("tool_extra_fields")
        stated = carried.get(STATED_PLAN_FIELD) if isinstance(carried, dict) else None
        if stated is not None:
            return int(stated)
        if self.update_plans and row.record and row.row.get(PLAN_COLUMN) is not None:
            raise ValueError(
                f"lapo.stage2.update_plans=true: the response of problem {row.problem_id!r} (step {row.step}) "
                f"carries no {STATED_PLAN_FIELD!r} from its agent loop, so the plan its prompt stated is unknown; "
                "stage 2 needs actor_rollout_ref.rollout.agent.default_agent_loop=lapo_plan_agent (+recipe=lapo_stage2)"
            )
        return row.row.get(PLAN_COLUMN)

    # ---------------------------------------------------------------- the reward
    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        """Reward of one response and extra fields for logs/records. Subclasses override."""
        return float(correct), {}

    async def run_single(self, data: DataProto) -> dict:
        row, response_ids = self._row(data)
        result, _ = await self.loop.run_in_executor(None, self._grade, response_ids, row)
        self.grading_stats.add(result)
        self._graded += 1
        if self._graded % GRADING_LOG_EVERY == 0:
            rates = self.grading_stats.rates()
            logger.warning("[lapo] grading after %d responses: %s", self._graded,
                           " ".join(f"{k}={v:.3f}" for k, v in sorted(rates.items())))
        reward, extra = self.score(row, result.correct)
        info = {"acc": float(result.correct), "length": float(row.length), "grade_reason": result.reason,
                "no_answer": float(result.reason in ("no_answer", "truncated")),
                "grade_timeout": float(result.reason == "timeout"), **extra}
        return {"reward_score": float(reward), "reward_extra_info": info}


@register("lapo_stage1")
class LapoStage1RewardManager(LapoRewardManagerBase):
    """Stage 1: ``acc`` only; ``lapo_stage1`` (advantage estimator) adds ``alpha * R1`` per group."""


@register("lapo_acc_only")
class AccuracyOnlyRewardManager(LapoRewardManagerBase):
    """Accuracy-only GRPO baseline: the same grader and records as LAPO, no length term."""


@register("lapo_stage2")
class LapoStage2RewardManager(LapoRewardManagerBase):
    """Stage 2: ``acc + beta * acc * exp(-(len - plan)^2 / (2 sigma^2))``, plan from the row."""

    def __init__(self, config, tokenizer, compute_score=None, **kwargs):
        super().__init__(config, tokenizer, compute_score, **kwargs)
        self.params = self.lapo.stage2.params()
        #: range plan (lapo.stage2.plan_range_width > 0): the range bounds are logged too
        self.range_keys = ("plan_lo", "plan_hi") if self.params.width else ()

    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        plan = self.current_plan(row)
        if plan is None and not row.record:
            # validation without a plan (lapo.stage2.val_with_plan=false): the internalized model is
            # judged on accuracy; its length is reported by verl's response_length metrics.
            nan = float("nan")
            return float(correct), {"plan": nan, **{k: nan for k in self.range_keys}, "r2": nan,
                                    "plan_abs_error": nan}
        if plan is None:
            raise ValueError(
                f"row of problem {row.problem_id!r} carries no {PLAN_COLUMN!r}: stage 2 needs "
                "data.custom_cls = lapo_verl.data.dataset.LapoDataset with lapo.stage=2 (+recipe=lapo_stage2)"
            )
        plan = int(plan)
        p = self.params
        reward = stage2_reward(correct, row.length, plan, beta=p.beta, sigma=p.sigma, width=p.width)
        # extra-info keys must be the same for every row (verl stacks them per key)
        if not p.width:
            r2 = plan_closeness(row.length, plan, p.sigma) if correct else 0.0
            return reward, {"plan": float(plan), "r2": r2, "plan_abs_error": float(abs(row.length - plan))}
        lo, hi = plan_range(plan, p.width)  # range plan: the error is the distance outside [lo, hi]
        r2 = range_closeness(row.length, lo, hi, p.sigma) if correct else 0.0
        outside = 0.0 if lo <= row.length <= hi else float(min(abs(row.length - lo), abs(row.length - hi)))
        return reward, {"plan": float(plan), "plan_lo": float(lo), "plan_hi": float(hi), "r2": r2,
                        "plan_abs_error": outside}


class _TargetLengthManager(LapoRewardManagerBase):
    def target(self, row: ScoredRow) -> int:
        target = row.row.get(TARGET_COLUMN)
        if target is None:
            raise ValueError(
                f"row of problem {row.problem_id!r} carries no {TARGET_COLUMN!r}: the L1 recipes need "
                "lapo_verl.data.dataset.LapoDataset with lapo.target_length.enable=true"
            )
        return int(target)


@register("lapo_l1_exact")
class L1ExactRewardManager(_TargetLengthManager):
    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        target = self.target(row)
        return l1_exact_reward(correct, row.length, target, alpha=self.lapo.l1.alpha), {"target": target}


@register("lapo_l1_max")
class L1MaxRewardManager(_TargetLengthManager):
    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        target = self.target(row)
        l1 = self.lapo.l1
        return l1_max_reward(correct, row.length, target, alpha=l1.alpha, delta=l1.delta), {"target": target}


@register("lapo_thinkprune")
class ThinkPruneRewardManager(LapoRewardManagerBase):
    def __init__(self, config, tokenizer, compute_score=None, **kwargs):
        super().__init__(config, tokenizer, compute_score, **kwargs)
        #: L: lapo.thinkprune.limit, else the generation cap (the recipe sets it to data.max_response_length)
        self.limit = int(self.lapo.thinkprune.limit or self.max_response_length or 4096)

    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        limit = self.limit
        return thinkprune_reward(correct, row.length, limit, truncated=row.truncated), {"limit": limit}
