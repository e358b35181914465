"""Paper Eq. 8 (``lapo.stage2.update_plans=true``): plans that follow stage 2's own correct lengths.

After each step, for each problem q visited with at least one correct response,
``M(q) <- median(correct lengths)`` if q was unsolved, else ``min(M(q), median)``
(:func:`lapo_verl.rewards.updated_plan`).

One owner, one table, carried through verl and Ray (no shared filesystem, no per-process re-reading):

* the trainer process owns the table (:class:`PlanTable`, held by the metrics sampler,
  :mod:`lapo_verl.verl_ext.metrics_sampler`): it starts from the plans file, folds each training batch's
  responses into it once per step (the same batch it writes the length records from), and publishes the table
  for the next step to a named Ray actor (:class:`PlanBoard`, one per run: :func:`board_name`);
* the stage-2 agent loop asks the board once per step and process for the table of *its* step
  (:func:`plan_table_for_step`): a board that is missing or holds another step's table is an error, never a
  silent fallback to the initial plans;
* the agent loop puts the plan it stated into the sample (``extra_fields[STATED_PLAN_FIELD]``), verl carries it
  to the reward worker (``tool_extra_fields``) and back to the trainer (TransferQueue), and the stage-2 reward
  scores against that carried number: prompt and reward cannot disagree;
* the table is saved with each checkpoint (``global_step_N/lapo_plan_table.json``) and restored on resume (or,
  for a checkpoint without one, rebuilt from the committed records of steps ``<= N``).

In verl 0.9.1's V1 trainer in ``sync`` mode the rollouts of step ``s`` start after step ``s - 1``'s batch was
sampled, so the table for step ``s`` is always published before it is asked for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from lapo_verl.plans import PLANS_FORMAT, group_visits
from lapo_verl.records import LengthRecord
from lapo_verl.rewards import updated_plan

logger = logging.getLogger(__name__)

#: the agent loop's output ``extra_fields`` key that carries the plan it stated to the reward and the trainer
STATED_PLAN_FIELD = "lapo_stated_plan"
TABLE_FORMAT = "lapo-plan-table/1"
#: seconds an agent loop waits for the trainer to publish its step's table before failing
BOARD_WAIT_S = 600.0


def visit_table(records: list[LengthRecord], before_step: int) -> dict[str, list[list[int]]]:
    """Per problem, the correct lengths of each visit of a step ``< before_step``, in step order."""
    table: dict[str, list[list[int]]] = defaultdict(list)
    for problem_id, visits in group_visits([r for r in records if r.step < before_step]).items():
        for visit in visits:
            table[problem_id].append(visit.correct_lengths)
    return dict(table)


def fold_plan(initial: int | None, visits: list[list[int]]) -> int | None:
    """Eq. 8 over a problem's visits; ``initial=None`` means unsolved (no plan yet).

    >>> fold_plan(None, [[], [300, 500], [420], [100, 900]])
    400
    >>> fold_plan(700, [[], [800]])
    700
    """
    plan = initial
    for correct_lengths in visits:
        plan = updated_plan(plan, correct_lengths)
    return plan


class PlanTable:
    """The Eq. 8 plan of every problem, owned by the trainer process and folded once per training batch.

    ``plans`` holds every problem with a plan (from the plans file or earned in stage 2); a problem absent from
    it is unsolved, and its row keeps the unsolved fallback (``lapo.stage2.unsolved_length``).

    >>> t = PlanTable({"a": 734}, unsolved={"u"})
    >>> t.fold([LengthRecord("a", 1, 300, True, 0.0, "g1"), LengthRecord("a", 1, 500, True, 0.0, "g1"),
    ...         LengthRecord("u", 1, 120, True, 0.0, "g2"), LengthRecord("u", 1, 9, False, 0.0, "g2")], step=1)
    2
    >>> t.plans, t.step
    ({'a': 400, 'u': 120}, 1)
    """

    def __init__(self, initial: Mapping[str, int], unsolved: Iterable[str] = (), step: int = 0) -> None:
        self.plans: dict[str, int] = {str(k): int(v) for k, v in initial.items() if str(k) not in set(unsolved)}
        self.step = int(step)  # the last step folded in (0: none)

    def fold(self, records: list[LengthRecord], step: int) -> int:
        """Fold one step's records (whole GRPO groups) into the table; returns the number of plans changed."""
        changed = 0
        for problem_id, visits in group_visits(records).items():
            plan = self.plans.get(problem_id)
            for visit in visits:
                plan = updated_plan(plan, visit.correct_lengths)
            if plan is not None and plan != self.plans.get(problem_id):
                self.plans[problem_id] = int(plan)
                changed += 1
        self.step = max(self.step, int(step))
        return changed

    def to_json(self) -> dict:
        return {"format": TABLE_FORMAT, "step": self.step, "plans": dict(sorted(self.plans.items()))}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PlanTable:
        if doc.get("format") != TABLE_FORMAT:
            raise ValueError(f"not a {TABLE_FORMAT} document (format {doc.get('format')!r})")
        return cls(doc["plans"], step=int(doc["step"]))

    def as_plans_file(self, initial: Mapping[str, int], unsolved: Iterable[str]) -> dict:
        """This table as a plans file (``lapo-plans/1``, ``visit_rule: eq8``)."""
        ids = set(initial) | set(unsolved) | set(self.plans)
        still = sorted(i for i in ids if i not in self.plans)
        changed = sum(1 for problem_id, n in self.plans.items() if initial.get(problem_id) != n)
        return {"format": PLANS_FORMAT, "statistic": "median", "visit_rule": "eq8",
                "plans": dict(sorted(self.plans.items())), "unsolved": still,
                "summary": {"step": self.step, "problems": len(ids), "solved": len(self.plans),
                            "unsolved": len(still), "changed_by_stage2": changed}}


def board_name(run_dir: str | None) -> str:
    """The named Ray actor of a run's plan board (one per ``lapo.run_dir``; Ray namespaces separate jobs)."""
    return "lapo_plan_board_" + hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]


class PlanBoard:
    """Ray actor (async): the table of the next training step, published by the trainer, read by agent loops."""

    def __init__(self) -> None:
        self.step = -1
        self.plans: dict[str, int] = {}
        self._changed = asyncio.Event()

    async def publish(self, step: int, plans: dict[str, int]) -> int:
        self.step, self.plans = int(step), dict(plans)
        self._changed.set()
        self._changed = asyncio.Event()
        return self.step

    async def get(self, step: int, timeout_s: float = BOARD_WAIT_S) -> tuple[int, dict[str, int]]:
        """The table for rollouts of ``step``; waits (up to ``timeout_s``) while an older step's is posted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.step < step and loop.time() < deadline:
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
        return self.step, self.plans


def start_board(run_dir: str | None, step: int, plans: dict[str, int]) -> Any:
    """Create (or replace) this run's board as a named Ray actor and publish ``plans`` for ``step``."""
    import ray

    name = board_name(run_dir)
    try:
        ray.kill(ray.get_actor(name))  # a board left by an earlier trainer of this run in this Ray namespace
    except ValueError:
        pass
    actor_cls = ray.remote(num_cpus=0, max_concurrency=1000)(PlanBoard)
    board = actor_cls.options(name=name).remote()
    ray.get(board.publish.remote(step, plans))
    return board


class StalePlanTable(RuntimeError):
    """The plan board is missing or holds another step's table: the prompt would state a wrong plan."""


_TABLES: dict[tuple[str, int], dict[str, int]] = {}
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its lock


async def plan_table_for_step(run_dir: str | None, step: int, timeout_s: float | None = None) -> dict[str, int]:
    """The Eq. 8 table for rollouts of ``step``: one remote call per process and step, then cached.

    Raises :class:`StalePlanTable` (never falls back to the initial plans) when the board does not exist or
    does not reach ``step`` in ``timeout_s``."""
    import ray

    if timeout_s is None:
        timeout_s = float(os.environ.get("LAPO_PLAN_BOARD_WAIT_S", BOARD_WAIT_S))
    name = board_name(run_dir)
    key = (name, int(step))
    if key in _TABLES:
        return _TABLES[key]
    lock = _LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if key in _TABLES:
            return _TABLES[key]
        try:
            board = ray.get_actor(name)
        except ValueError:
            raise StalePlanTable(
                f"lapo.stage2.update_plans=true: no plan board {name!r} in this Ray job. The trainer publishes it "
                "from LapoMetricsReplayBuffer (trainer.v1.sampler.custom_sampler = "
                "pkg://lapo_verl.verl_ext.metrics_sampler, LapoMetricsReplayBuffer, as the recipes set it)"
            ) from None
        posted, plans = await board.get.remote(int(step), timeout_s)
        if posted != int(step):
            raise StalePlanTable(
                f"lapo.stage2.update_plans=true: the plan board holds the table of step {posted}, rollouts of step "
                f"{step} need theirs (trainer.v1.trainer_mode must be sync; waited {timeout_s:.0f} s)"
            )
        for old in [k for k in _TABLES if k[0] == name and k[1] < int(step)]:
            del _TABLES[old]
        _TABLES[key] = plans
        return plans


def export_plans(records: list[LengthRecord], initial: Mapping[str, int], unsolved: set[str], step: int) -> dict:
    """A plans file (``lapo-plans/1``) with the plans after ``step`` (records of steps ``<= step``)."""
    table = visit_table(records, step + 1)
    plans: dict[str, int] = {}
    still_unsolved: list[str] = []
    for problem_id in sorted(set(initial) | set(unsolved) | set(table)):
        start = None if problem_id in unsolved or problem_id not in initial else int(initial[problem_id])
        plan = fold_plan(start, table.get(problem_id, []))
        if plan is None:
            still_unsolved.append(problem_id)
        else:
            plans[problem_id] = plan
    changed = sum(1 for problem_id, n in plans.items() if initial.get(problem_id) != n)
    return {
        "format": PLANS_FORMAT,
        "statistic": "median",
        "visit_rule": "eq8",
        "plans": plans,
        "unsolved": still_unsolved,
        "summary": {"step": int(step), "problems": len(plans) + len(still_unsolved), "solved": len(plans),
                    "unsolved": len(still_unsolved), "changed_by_stage2": changed},
    }
