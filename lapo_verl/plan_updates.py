"""Paper Eq. 8 (``lapo.stage2.update_plans=true``): plans that follow stage 2's own correct lengths.

After each step, for each problem q visited with at least one correct response,
``M(q) <- median(correct lengths)`` if q was unsolved, else ``min(M(q), median)``
(:func:`lapo_verl.rewards.updated_plan`).

How the update reaches the next rollouts without a shared mutable table: the state at step ``s`` is a pure
function of the row's initial plan (from the plans file) and the committed length records of steps
``< s`` (written by the reward workers, one line per response, see :mod:`lapo_verl.records`). verl 0.9.1's
V1 trainer hands every agent loop and every reward call the batch's ``global_steps``; in ``sync`` mode all
records of step ``s - 1`` are written before step ``s``'s rollouts start, so every process that asks for
``(problem, step)`` gets the same number: the 8 rollouts of a group see one plan, the reward centres on the
plan the prompt stated. Resume: records of redone steps are rolled back (:func:`load_records`), and each
checkpoint carries its records snapshot, so a resumed run recomputes the same plans. The checkpoint
callback also exports the plans at each save (:func:`export_plans`).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping

from lapo_verl.plans import PLANS_FORMAT, group_visits
from lapo_verl.records import LengthRecord, load_records
from lapo_verl.rewards import updated_plan


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


class PlanTracker:
    """Current plans of one process, recomputed once per training step from the records directory."""

    def __init__(self, records_dir: str) -> None:
        self.records_dir = records_dir
        self._lock = threading.Lock()
        self._step: int | None = None
        self._table: dict[str, list[list[int]]] = {}

    def _table_for(self, step: int) -> dict[str, list[list[int]]]:
        with self._lock:
            if self._step != step:
                try:
                    records, _ = load_records(self.records_dir, max_step=step - 1)
                except FileNotFoundError:  # no record yet (first step)
                    records = []
                self._table = visit_table(records, step)
                self._step = step
            return self._table

    def plan(self, problem_id: str, initial_plan: int, unsolved: bool, step: int) -> int:
        """The plan of ``problem_id`` for rollouts of ``step``: Eq. 8 folded over the visits of earlier steps.
        ``initial_plan`` is the row's plan (the maximum length when ``unsolved``), kept while unsolved."""
        visits = self._table_for(int(step)).get(str(problem_id), [])
        plan = fold_plan(None if unsolved else int(initial_plan), visits)
        return int(initial_plan) if plan is None else int(plan)


_TRACKERS: dict[str, PlanTracker] = {}
_TRACKERS_LOCK = threading.Lock()


def tracker(records_dir: str) -> PlanTracker:
    """One tracker per records directory per process (agent-loop and reward workers share it)."""
    with _TRACKERS_LOCK:
        if records_dir not in _TRACKERS:
            _TRACKERS[records_dir] = PlanTracker(records_dir)
        return _TRACKERS[records_dir]


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
