"""LAPO's dataset-transform hook: ``data.custom_cls.{path: pkg://lapo_verl.data.dataset, name: LapoDataset}``.

A subclass of verl's ``RLHFDataset`` that

* checks at start-up that every row carries a stable problem id and a ground truth (verl would silently
  turn a missing ``extra_info.index`` into 0), naming the file, row and field of the first bad row;
* marks training rows (``lapo_record=True``) so that only their lengths are recorded;
* in stage 2 (``lapo.stage=2``), joins each row with its plan from the plans file by problem id and
  applies ``lapo.stage2.unsolved_policy`` to problems without one; prints how many rows got a plan;
* (baselines) attaches a per-problem target length for the L1 recipes.

verl gives dataset classes only ``cfg.data``; the recipes mirror the LAPO section there as
``data.lapo: ${lapo}``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import pyarrow.parquet as pq
from verl.utils.dataset.rl_dataset import RLHFDataset

from lapo_verl import config as lapo_config
from lapo_verl.plan_text import plan_sentence_tokens
from lapo_verl.data.columns import (
    PLAN_COLUMN,
    PLAN_IS_FALLBACK_COLUMN,
    PROBLEM_ID_COLUMN,
    RECORD_COLUMN,
    TARGET_COLUMN,
)
from lapo_verl.plans import read_plans

logger = logging.getLogger(__name__)

UNSOLVED_POLICIES = lapo_config.UNSOLVED_POLICIES
MISSING_POLICIES = lapo_config.MISSING_POLICIES


class DataRowError(ValueError):
    """A training/validation row LAPO cannot use. The message names file, row and field."""


def _row_problem_id(row: dict) -> Any:
    pid = row.get(PROBLEM_ID_COLUMN)
    if pid is None:
        extra = row.get("extra_info") or {}
        pid = extra.get("index") if isinstance(extra, dict) else None
    return pid


def validate_rows(rows: Iterable[dict], source: str) -> list[str]:
    """Problem ids of ``rows`` (one file), in order; raises :class:`DataRowError` on the first bad row."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        pid = _row_problem_id(row)
        if pid is None or str(pid).strip() == "":
            raise DataRowError(
                f"{source}, row {i}: field '{PROBLEM_ID_COLUMN}' (or extra_info.index) is missing; LAPO needs a "
                "stable problem id per row to record lengths. Rebuild the file with `lapo-verl prepare-data`."
            )
        reward_model = row.get("reward_model") or {}
        gt = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        if gt is None or str(gt).strip() == "":
            raise DataRowError(f"{source}, row {i}: field 'reward_model.ground_truth' is missing or empty")
        pid = str(pid)
        if pid in seen:
            raise DataRowError(
                f"{source}, row {i}: problem id {pid!r} repeats row {seen[pid]}; ids must be unique "
                "(prepare-data --dedupe drops duplicate problems)"
            )
        seen[pid] = i
        ids.append(pid)
    return ids


def _read_id_rows(path: str) -> list[dict]:
    columns = [c for c in (PROBLEM_ID_COLUMN, "extra_info", "reward_model") if c in pq.read_schema(path).names]
    return pq.read_table(path, columns=columns).to_pylist()


def target_length_for(problem_id: str, low: int, high: int, seed: int) -> int:
    """Deterministic per-problem target length in ``[low, high]`` (L1 samples one per prompt)."""
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


class LapoDataset(RLHFDataset):
    def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1):
        self.lapo = lapo_config.load(config, where="data (data.lapo)")  # TaskRunner, before any worker starts
        self.stage = self.lapo.stage
        self.max_response_length = config.get("max_response_length")
        train_files = config.get("train_files")
        files = list(data_files) if not isinstance(data_files, str) else [data_files]
        train = [train_files] if isinstance(train_files, str) else list(train_files or [])
        self.is_train = [str(f) for f in files] == [str(f) for f in train]
        self.plan_report: dict[str, int] = {}
        self._plans_cache: tuple[dict[str, int], set[str]] | None = None
        super().__init__(data_files, tokenizer, config, processor=processor, max_samples=max_samples)

    # ---------------------------------------------------------------- loading
    def _read_files_and_tokenize(self):
        self.file_ids: set[str] = set()  # every id in the files, before verl's overlong-prompt filter
        for local, original in zip(self.data_files, self.original_data_files, strict=True):
            if str(local).endswith(".parquet"):
                self.file_ids.update(validate_rows(_read_id_rows(local), str(original)))
        plan_margin = self._plan_token_margin() if self.stage == 2 and self.is_train else 0
        # verl filters prompts longer than max_prompt_length; the plan sentence is appended later by the
        # agent loop, so filter with room for it (restored right after).
        self.max_prompt_length -= plan_margin
        try:
            super()._read_files_and_tokenize()
        finally:
            self.max_prompt_length += plan_margin
        ids = [str(_row_problem_id(r)) for r in self.dataframe.select_columns(self._id_columns()).to_list()]
        self.dataframe = self.dataframe.add_column(RECORD_COLUMN, [self.is_train] * len(ids))
        if PROBLEM_ID_COLUMN not in self.dataframe.column_names:
            self.dataframe = self.dataframe.add_column(PROBLEM_ID_COLUMN, ids)
        if self.stage == 2 and (self.is_train or self.lapo.stage2.val_with_plan):
            self._join_plans(ids)
        if self.lapo.target_length.enable:
            self._add_target_lengths(ids)

    def _id_columns(self) -> list[str]:
        return [c for c in (PROBLEM_ID_COLUMN, "extra_info") if c in self.dataframe.column_names]

    # ---------------------------------------------------------------- stage 2
    def _plans_path(self) -> str:
        path = self.lapo.plans_path
        if not path:
            raise DataRowError("lapo.stage=2 needs lapo.plans_path (a file from `lapo-verl plans`)")
        return str(path)

    def _plans(self) -> tuple[dict[str, int], set[str]]:
        """The plans file, read and validated once per dataset (start-up needs it twice)."""
        if self._plans_cache is None:
            plans, unsolved, _ = read_plans(self._plans_path())
            self._plans_cache = (plans, unsolved)
        return self._plans_cache

    def _plan_token_margin(self) -> int:
        """Token count of the longest plan sentence this run can produce (plans and the fallback)."""
        stage2 = self.lapo.stage2
        if not self.filter_overlong_prompts or not stage2.plan_in_prompt:
            return 0
        plans, _ = self._plans()
        candidates = set(plans.values()) | {self._fallback_plan()}
        sentence = plan_sentence_tokens(self.tokenizer, candidates, stage2.plan_template, stage2.plan_range_width)
        return sentence + 2  # + separators around it

    def _fallback_plan(self) -> int:
        """``lapo.stage2.unsolved_length``, else ``data.max_response_length`` (the recipes interpolate it)."""
        return int(self.lapo.stage2.unsolved_length or self.max_response_length or 4096)

    def _join_plans(self, ids: list[str]) -> None:
        path = self._plans_path()
        plans, unsolved = self._plans()
        policy = self.lapo.stage2.unsolved_policy  # values checked by LapoConfig
        missing_policy = self.lapo.stage2.missing_policy

        if self.is_train:
            id_set = self.file_ids | set(ids)
            unknown = [pid for pid in list(plans) + sorted(unsolved) if pid not in id_set]
            if unknown and not self.lapo.stage2.allow_unknown_plan_ids:
                raise DataRowError(
                    f"{path}: {len(unknown)} of {len(plans) + len(unsolved)} problem ids match no row of "
                    f"{self.original_data_files} (e.g. {unknown[:3]}); is this the plans file of this dataset? "
                    "Set lapo.stage2.allow_unknown_plan_ids=true to train on a subset."
                )
        fallback = self._fallback_plan()
        plan_values, fallback_flags, keep = [], [], []
        counts = {"rows": len(ids), "planned": 0, "unsolved": 0, "missing": 0, "dropped": 0}
        for i, pid in enumerate(ids):
            if pid in plans:
                counts["planned"] += 1
                plan_values.append(plans[pid])
                fallback_flags.append(False)
                keep.append(i)
                continue
            if pid in unsolved:
                counts["unsolved"] += 1
            else:
                counts["missing"] += 1
                if missing_policy == "error" and self.is_train:
                    raise DataRowError(
                        f"{self.original_data_files}: problem id {pid!r} (row {i}) has no entry in {path}; "
                        "stage 1 never visited it. Set lapo.stage2.missing_policy=unsolved to treat it as unsolved."
                    )
            if policy == "drop":
                counts["dropped"] += 1
                continue
            plan_values.append(fallback)
            fallback_flags.append(True)
            keep.append(i)
        if len(keep) != len(ids):
            self.dataframe = self.dataframe.select(keep)
        self.dataframe = self.dataframe.add_column(PLAN_COLUMN, plan_values)
        self.dataframe = self.dataframe.add_column(PLAN_IS_FALLBACK_COLUMN, fallback_flags)
        self.plan_report = counts
        split = "train" if self.is_train else "val"
        print(
            f"[lapo] {split} plans from {path}: {counts['planned']}/{counts['rows']} rows planned, "
            f"{counts['unsolved']} unsolved, {counts['missing']} never visited in stage 1 "
            f"-> policy {policy!r} (fallback {fallback} tokens), {counts['dropped']} rows dropped"
        )
        if not keep:
            raise DataRowError(f"no {split} rows left after joining plans from {path} (policy {policy!r})")

    # ---------------------------------------------------------------- baselines
    def _add_target_lengths(self, ids: list[str]) -> None:
        t = self.lapo.target_length  # 0 < min <= max checked by LapoConfig
        targets = [int(t.fixed) if t.fixed else target_length_for(pid, t.min, t.max, t.seed) for pid in ids]
        self.dataframe = self.dataframe.add_column(TARGET_COLUMN, targets)

    def __getitem__(self, item):
        row = super().__getitem__(item)
        template = self.lapo.target_length.prompt_template
        if template and TARGET_COLUMN in row:
            messages = [dict(m) for m in row["raw_prompt"]]
            user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
            messages[user]["content"] = str(messages[user]["content"]) + str(template).format(n=row[TARGET_COLUMN])
            row["raw_prompt"] = messages
        return row
