"""Procedural arithmetic chains with a difficulty knob, and the warm-up traces of an over-thinking model.

A problem of difficulty ``d`` (1..6) is a chain of ``d`` additions/subtractions of single digits on a
single-digit start, every partial result kept in 0..99: ``Compute 7+5-3+8.`` A correct solution writes
one partial result per operation (``+5=12 -3=9 +8=17``), so the reasoning needed grows with ``d``.

Warm-up traces (what the base model imitates): one pass where each step slips with probability
``slip`` (a wrong partial result that then propagates), then a random number of re-check passes
(0..3, independent of the difficulty) that redo the chain correctly; the boxed answer is the last
pass's result. Extra thinking repairs slips on long chains and is waste on short ones.

Everything is a pure function of its seed: ``make_problems(n, seed)`` is bit-for-bit reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

LEVELS = (1, 2, 3, 4, 5, 6)
MAX_VALUE = 99
START_MAX = 20
TRAIN_SEED = 1301
EVAL_SEED = 7013
CHECK_WORD = "check"


@dataclass(frozen=True)
class Problem:
    pid: str
    level: int
    start: int
    ops: tuple[tuple[str, int], ...]  # (sign, operand)

    @property
    def text(self) -> str:
        return "Compute " + str(self.start) + "".join(f"{s}{v}" for s, v in self.ops) + "."

    @property
    def answer(self) -> int:
        return chain_values(self.start, self.ops)[-1]


def chain_values(start: int, ops) -> list[int]:
    """Partial results after each operation.

    >>> chain_values(7, (("+", 5), ("-", 3), ("+", 8)))
    [12, 9, 17]
    """
    out, value = [], start
    for sign, v in ops:
        value = value + v if sign == "+" else value - v
        out.append(value)
    return out


def make_problem(rng: random.Random, level: int, prefix: str, index: int) -> Problem:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    start = rng.randint(1, START_MAX)
    value, ops = start, []
    for _ in range(level):
        v = rng.randint(1, 9)
        sign = rng.choice("+-")
        if sign == "-" and value - v < 0:
            sign = "+"
        if sign == "+" and value + v > MAX_VALUE:
            sign = "-"
        value = value + v if sign == "+" else value - v
        ops.append((sign, v))
    return Problem(f"{prefix}-{index:05d}", level, start, tuple(ops))


def make_problems(n: int, seed: int, prefix: str, exclude: frozenset[str] = frozenset(),
                  unique: bool = False) -> list[Problem]:
    """``n`` problems, levels cycling 1..6 (every level equally often), from one seed. ``exclude``: texts
    never to produce; ``unique``: no text twice (draws are repeated until a new one comes)."""
    rng = random.Random(seed)
    out: list[Problem] = []
    seen = set(exclude)
    while len(out) < n:
        level = LEVELS[len(out) % len(LEVELS)]
        for _ in range(10_000):
            p = make_problem(rng, level, prefix, len(out))
            if p.text not in exclude and not (unique and p.text in seen):
                break
        else:  # pragma: no cover - only for absurd sizes
            raise ValueError(f"cannot draw {n} distinct level-{level} problems")
        seen.add(p.text)
        out.append(p)
    return out


TRAIN_SIZE = 384
EVAL_SIZE = 600


def train_problems(n: int = TRAIN_SIZE) -> list[Problem]:
    """Training set: distinct problems from :data:`TRAIN_SEED`; a larger ``n`` extends a smaller one."""
    return make_problems(n, TRAIN_SEED, "train", unique=True)


def eval_problems(n: int = EVAL_SIZE, train_n: int = 1200) -> list[Problem]:
    """Held-out set: distinct problems from :data:`EVAL_SEED`, none of whose texts is among the first
    ``train_n`` training problems (so any training size up to ``train_n`` is disjoint from it)."""
    return make_problems(n, EVAL_SEED, "eval", exclude=frozenset(p.text for p in train_problems(train_n)), unique=True)


def digest(problems: list[Problem]) -> str:
    """sha256 of the problems' canonical JSON (for the bit-for-bit check)."""
    blob = json.dumps([asdict(p) for p in problems], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def render_pass(start: int, ops, values: list[int]) -> str:
    """``+5=12 -3=9 +8=17`` for the given partial results (right or wrong)."""
    return " ".join(f"{s}{v}={r}" for (s, v), r in zip(ops, values))


def slipped_values(rng: random.Random, start: int, ops, slip: float) -> list[int]:
    """Partial results where each step is wrong by +-1..2 with probability ``slip``; a slip propagates."""
    out, value = [], start
    for sign, v in ops:
        value = value + v if sign == "+" else value - v
        if rng.random() < slip:
            wrong = value + rng.choice((-2, -1, 1, 2))
            if 0 <= wrong <= MAX_VALUE:
                value = wrong
        out.append(value)
    return out


def trace(problem: Problem, rng: random.Random, *, slip: float = 0.12, max_checks: int = 3) -> tuple[str, int]:
    """A warm-up response (text after the prompt's ``<think>\\n``) and its number of re-checks."""
    first = slipped_values(rng, problem.start, problem.ops, slip)
    passes = [render_pass(problem.start, problem.ops, first)]
    checks = rng.randint(0, max_checks)
    final = first[-1]
    for _ in range(checks):
        good = chain_values(problem.start, problem.ops)
        passes.append(f"{CHECK_WORD} " + render_pass(problem.start, problem.ops, good))
        final = good[-1]
    body = "\n".join(passes)
    return f"{body}\n</think>\n\\boxed{{{final}}}", checks
