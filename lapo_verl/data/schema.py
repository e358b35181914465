r"""The row format lapo-verl writes for verl, and small helpers shared by the data tools.

A prepared row (one parquet row, read by verl's ``RLHFDataset``)::

    data_source       str    e.g. "lapo/math"
    prompt            list   [{"role": ..., "content": ...}, ...]   (lapo_verl.prompts.build_messages)
    ability           str    "math"
    reward_model      struct {"style": "rule", "ground_truth": str}
    extra_info        struct {"index": str (= lapo_problem_id), "split": str, "source_file": str,
                              "source_row": int, "level": int | null, "type": str | null}
    lapo_problem_id   str    stable problem id

verl sets ``index = extra_info.get("index", 0)``: a missing index silently becomes 0, so every
row written here carries a string id in both ``extra_info.index`` and ``lapo_problem_id``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "PROBLEM_ID_COLUMN",
    "DATA_SOURCE_COLUMN",
    "PROMPT_COLUMN",
    "ABILITY_COLUMN",
    "REWARD_MODEL_COLUMN",
    "EXTRA_INFO_COLUMN",
    "GROUND_TRUTH_KEY",
    "INDEX_KEY",
    "OUTPUT_COLUMNS",
    "RowError",
    "last_boxed",
    "gsm8k_final_answer",
    "normalize_problem_text",
    "problem_hash_id",
]

from lapo_verl.grading.extract import match_brace  # noqa: E402
from lapo_verl.data.columns import PROBLEM_ID_COLUMN  # noqa: E402  (one definition, shared with verl_ext)
DATA_SOURCE_COLUMN = "data_source"
PROMPT_COLUMN = "prompt"
ABILITY_COLUMN = "ability"
REWARD_MODEL_COLUMN = "reward_model"
EXTRA_INFO_COLUMN = "extra_info"
GROUND_TRUTH_KEY = "ground_truth"  # reward_model.ground_truth
INDEX_KEY = "index"  # extra_info.index (verl's per-row index; defaults to 0 in verl when missing)

OUTPUT_COLUMNS = (
    DATA_SOURCE_COLUMN,
    PROMPT_COLUMN,
    ABILITY_COLUMN,
    REWARD_MODEL_COLUMN,
    EXTRA_INFO_COLUMN,
    PROBLEM_ID_COLUMN,
)


class RowError(ValueError):
    """A bad input row. The message names the file, the row (1-based; for jsonl files the line
    number) and the field, says what is wrong and what to do about it.

    >>> str(RowError("a.jsonl", 3, "answer", "missing", "add it or pass --skip-bad-rows"))
    "a.jsonl: row 3: field 'answer': missing. Fix: add it or pass --skip-bad-rows"
    """

    def __init__(self, file: str, row: int | None, field: str | None, problem: str, fix: str = ""):
        self.file = str(file)
        self.row = row
        self.field = field
        self.problem = problem
        self.fix = fix
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        message = f"{': '.join(where)}: {problem}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)

    def to_record(self) -> dict:
        """A JSON-serialisable description (used for the rejects side file)."""
        return {"file": self.file, "row": self.row, "field": self.field, "error": self.problem, "fix": self.fix}


_BOXED = re.compile(r"\\(?:boxed|fbox)")


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``, or the brace-less ``\boxed 5``) in
    ``text``, with balanced braces; ``None`` when there is none or its braces are unbalanced.

    Only for extracting ground truths from reference solutions (MATH); the grader lives in
    :mod:`lapo_verl.grading`.

    >>> last_boxed(r"so $x=\boxed{\frac{1}{2}}$ and not \boxed{3")
    '\\frac{1}{2}'
    >>> last_boxed(r"\boxed{1} then \boxed{\dfrac{9}{7}}")
    '\\dfrac{9}{7}'
    >>> last_boxed(r"the answer is $\boxed 5$.")
    '5'
    >>> last_boxed("no box") is None
    True
    """
    if not isinstance(text, str):
        return None
    starts = [m for m in _BOXED.finditer(text)]
    for match in reversed(starts):
        i = match.end()
        rest = text[i:]
        if rest.startswith("{"):
            end = match_brace(text, i)  # the grader's balanced-brace scanner (\{ and \} are literal)
            if end != -1:
                return text[i + 1 : end - 1]
            continue  # unbalanced: try an earlier box
        if rest[:1] == " ":
            m = re.match(r" +([^\s$]+)", rest)
            if m:
                return m.group(1).rstrip(".,;")
    return None


_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def gsm8k_final_answer(text: str) -> str | None:
    """The final answer of a GSM8K solution: what follows the last ``####``, stripped, with
    thousands separators removed; ``None`` when there is no ``####`` or nothing after it.

    >>> gsm8k_final_answer("... so 18 dollars.\\n#### 1,234,567")
    '1234567'
    >>> gsm8k_final_answer("#### -3.5") , gsm8k_final_answer("no marker") is None
    ('-3.5', True)
    """
    if not isinstance(text, str) or "####" not in text:
        return None
    answer = text.rsplit("####", 1)[1].strip()
    answer = _THOUSANDS_COMMA.sub("", answer)
    return answer or None


_WHITESPACE = re.compile(r"\s+")


def normalize_problem_text(text: str) -> str:
    """Text used to hash a problem: Unicode NFC, whitespace runs collapsed to one space, stripped.
    Case and punctuation are kept (they matter in math).

    >>> normalize_problem_text("  What is\\n 1+1? ")
    'What is 1+1?'
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def problem_hash_id(source_tag: str, problem: str) -> str:
    """Stable content id: ``"<source_tag>-" + sha1(normalised problem)[:12]``.

    >>> problem_hash_id("math", "What is 1+1?") == problem_hash_id("math", " What is  1+1?")
    True
    >>> problem_hash_id("math", "What is 1+1?")[:5]
    'math-'
    """
    digest = hashlib.sha1(normalize_problem_text(problem).encode("utf-8")).hexdigest()
    return f"{source_tag}-{digest[:12]}"
