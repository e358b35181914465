"""Final-answer extraction from a model response.

Rules (also in ``docs/grading.md``):

1. **Answer region.** If the response contains ``</think>``, only the text after the *last*
   ``</think>`` is searched (a ``\\boxed{}`` inside the reasoning is a draft, not the answer).
   If it contains ``<think>`` but no ``</think>``, the model never closed its reasoning: there is
   no answer. If it contains neither tag, the whole response is the answer region (non-reasoning
   models, plain evaluation), unless ``reasoning_prefilled=True`` (the prompt ended with
   ``<think>``, as in LAPO's prompts): then a missing ``</think>`` means "still reasoning", i.e.
   no answer.
2. **Boxed answer.** Inside the region, the *last* ``\\boxed{...}`` or ``\\fbox{...}`` with
   balanced braces wins (``\\boxed 5`` without braces is accepted too). A box whose closing brace
   is missing (the text was cut inside it) is ignored.
3. **Unboxed fallback.** Without any box, an explicit answer statement is accepted: the last
   ``final answer is X`` / ``answer is X`` / ``Answer: X`` in the region, X running to the end of
   the line or sentence; or a region that is nothing but a short math expression (e.g. ``$12$``).
   There is deliberately no "last number in the text" fallback (it produces false positives).
4. **Truncation.** ``truncated=True`` means the response hit the length limit. A truncated
   response counts only if it closed its reasoning (``</think>`` present) and produced a complete
   boxed answer after it; everything else (reasoning cut off, no box, unboxed fallback) has no
   answer and is graded ``"truncated"``.
"""

from __future__ import annotations

import re

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

# "The final answer is X", "the answer is: X", "Answer: X". X up to end of line; the sentence
# period is stripped afterwards.
_ANSWER_STMT_RE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(?P<ans>[^\n]+)", re.IGNORECASE
)
_MAX_BARE_REGION = 60


def match_brace(s: str, start: int) -> int:
    """Index just past the ``}`` matching the ``{`` at ``s[start]``, or -1 if unbalanced."""
    depth = 0
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2  # skip escaped char (\{, \}, \\)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def last_boxed(s: str) -> str | None:
    """Content of the last complete ``\\boxed{}``/``\\fbox{}`` in ``s`` (balanced braces)."""
    matches = list(_BOX_RE.finditer(s))
    for m in reversed(matches):
        j = m.end()
        if j < len(s) and s[j] == "{":
            end = match_brace(s, j)
            if end == -1:
                continue  # cut inside the box: not an answer
            return s[j + 1 : end - 1].strip()
        # "\boxed 5": the next token (letters, digits, sign, dot) after a space
        if m.group(0).endswith(" ") or m.group(0) != m.group(0).rstrip():
            tok = re.match(r"[-+]?[\w.]+", s[j:])
            if tok:
                return tok.group(0)
    return None


def _strip_math_delims(s: str) -> str:
    s = s.strip()
    for a, b in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            return s[len(a) : len(s) - len(b)].strip()
    return s


def _clean_statement(ans: str) -> str | None:
    ans = ans.strip()
    # cut at the first "$...$" group if the statement starts with math
    if ans.startswith("$"):
        end = ans.find("$", 1)
        if ans.startswith("$$"):
            end = ans.find("$$", 2)
            if end != -1:
                return ans[2:end].strip() or None
        if end != -1:
            return ans[1:end].strip() or None
    ans = _strip_math_delims(ans)
    ans = re.sub(r"[.\s]+$", "", ans)  # sentence period
    ans = ans.rstrip("*").lstrip("*").strip()  # markdown bold
    if not ans or len(ans) > 200:
        return None
    return ans


def answer_region(response: str, *, reasoning_prefilled: bool = False) -> str | None:
    """The part of ``response`` where the final answer may be (rule 1), or None."""
    k = response.rfind(_THINK_CLOSE)
    if k != -1:
        return response[k + len(_THINK_CLOSE) :]
    if reasoning_prefilled or _THINK_OPEN in response:
        return None
    return response


def extract_answer(
    response: str, *, truncated: bool = False, reasoning_prefilled: bool = False
) -> str | None:
    """The final answer string of ``response`` per the module rules, or None."""
    if not isinstance(response, str):
        return None
    closed = _THINK_CLOSE in response
    if truncated and not closed:
        return None
    region = answer_region(response, reasoning_prefilled=reasoning_prefilled)
    if region is None:
        return None
    boxed = last_boxed(region)
    if boxed is not None:
        return boxed or None
    if truncated:
        return None
    stmts = list(_ANSWER_STMT_RE.finditer(region))
    if stmts:
        return _clean_statement(stmts[-1].group("ans"))
    bare = region.strip()
    if bare and len(bare) <= _MAX_BARE_REGION and "\n" not in bare:
        bare = _strip_math_delims(re.sub(r"\.\s*$", "", bare))
        # only a math-looking token (no prose): digits, latex, short symbols
        if re.fullmatch(r"[-+\d\s.,/\\{}()\[\]^_a-zA-Z%]*", bare) and not re.search(
            r"[a-zA-Z]{3,}\s+[a-zA-Z]{3,}", bare
        ):
            return bare or None
    return None


def strip_ground_truth(gt: str) -> str:
    """Ground truths may be wrapped in ``\\boxed{}`` or ``$...$``: return the bare answer."""
    gt = str(gt).strip()
    if "\\boxed" in gt or "\\fbox" in gt:
        b = last_boxed(gt)
        if b is not None:
            gt = b
    return _strip_math_delims(gt)


#: prompt tokens inspected for an unclosed ``<think>`` (covers a generation prompt and a plan sentence)
PROMPT_TAIL_TOKENS = 64


from lapo_verl.plan_text import prompt_opens_reasoning  # noqa: E402,F401  (owned by the plan-text module)


def prompt_tail_text(tokenizer, prompt_ids) -> str:
    """The last ``PROMPT_TAIL_TOKENS`` prompt tokens decoded with special tokens kept (list or tensor)."""
    tail = prompt_ids[-PROMPT_TAIL_TOKENS:]
    if hasattr(tail, "tolist"):
        tail = tail.tolist()
    return tokenizer.decode(list(tail), skip_special_tokens=False)
