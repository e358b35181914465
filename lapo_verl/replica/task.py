"""Procedural arithmetic chains with a difficulty knob, and the warm-up traces of an over-thinking model.

A problem of difficulty ``d`` (2..7) is a chain of ``d`` additions/subtractions on a single-digit start,
every partial result a single digit (0..9): ``Compute 7-5+3+1.`` A correct solution writes one partial
result per operation (``-5=2 +3=5 +1=6``), so the reasoning needed grows with ``d``; every number is one
token, so a tiny model can learn the arithmetic itself and the errors come from the behaviour below.

Warm-up traces (what the base model imitates): a hasty first pass in which every step with a large operand
(>= :data:`TRAP_OPERAND`) slips with probability :data:`TRAP_SLIP` = 0.5 (result off by one, the slip
propagates, so the answer is wrong); then K careful re-check passes that redo the chain correctly, K drawn
independently of ``d`` from a right-skewed distribution (after each pass another re-check follows with
probability :data:`RECHECK_CONTINUE`, at most :data:`MAX_CHECKS`); the boxed answer is the last pass's
result. A coin-flip slip stays a coin flip at any sampling temperature, so at evaluation (T = 0.6) the first
pass of a ``d``-step chain is still right only ~(1 - 0.1)^d of the time: a re-check pays on long chains
and is waste on short ones.

Everything is a pure function of its seed: ``make_problems(n, seed)`` is bit-for-bit reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

LEVELS = (2, 3, 4, 5, 6, 7)
MAX_VALUE = 9
START_MAX = 9
TRAP_OPERAND = 6          # first-pass steps with an operand >= this slip with probability TRAP_SLIP
TRAP_SLIP = 0.5
RECHECK_CONTINUE = 0.6    # after each pass, another re-check with this probability ...
MAX_CHECKS = 6            # ... up to this many re-checks
TRAIN_SEED = 7411          # version 4 (docs/replica-design.md); version 3: 5303, version 2: 2311
EVAL_SEED = 6229           # version 4; version 3: 8117, version 2: 9029
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

    >>> chain_values(7, (("-", 5), ("+", 3), ("+", 1)))
    [2, 5, 6]
    """
    out, value = [], start
    for sign, v in ops:
        value = value + v if sign == "+" else value - v
        out.append(value)
    return out


def _valid_operands(value: int, sign: str) -> list[int]:
    return list(range(1, MAX_VALUE - value + 1)) if sign == "+" else list(range(1, value + 1))


def make_problem(rng: random.Random, level: int, prefix: str, index: int) -> Problem:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    start = rng.randint(0, START_MAX)
    value, ops = start, []
    for _ in range(level):
        sign = rng.choice("+-")
        if not _valid_operands(value, sign):  # 0 cannot go down, 9 cannot go up
            sign = "-" if sign == "+" else "+"
        v = rng.choice(_valid_operands(value, sign))
        value = value + v if sign == "+" else value - v
        ops.append((sign, v))
    return Problem(f"{prefix}-{index:05d}", level, start, tuple(ops))


def make_problems(n: int, seed: int, prefix: str, exclude: frozenset[str] = frozenset(),
                  unique: bool = False) -> list[Problem]:
    """``n`` problems, levels cycling through :data:`LEVELS` (every level equally often), from one seed. ``exclude``: texts
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


TRAIN_SIZE = 144
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
    """``-5=2 +3=5 +1=6`` for the given partial results (right or wrong)."""
    return " ".join(f"{s}{v}={r}" for (s, v), r in zip(ops, values))


def hasty_values(rng: random.Random, start: int, ops, slip: float = TRAP_SLIP) -> list[int]:
    """First-pass partial results: a step whose operand is >= :data:`TRAP_OPERAND` is off by one with
    probability ``slip`` (+1, or -1 at 9); later steps continue from the wrong value (mod 10), so one slip
    makes the answer wrong."""
    out, value = [], start
    for sign, v in ops:
        value = (value + v if sign == "+" else value - v) % (MAX_VALUE + 1)
        if v >= TRAP_OPERAND and rng.random() < slip:
            value = value + 1 if value < MAX_VALUE else value - 1
        out.append(value)
    return out


def draw_checks(rng: random.Random, continue_p: float = RECHECK_CONTINUE, max_checks: int = MAX_CHECKS) -> int:
    """Number of re-check passes, independent of the problem: 0 with probability 1 - p, then each further
    one with probability p, at most ``max_checks`` (mean ~1.3, median 1 at p = 0.6)."""
    k = 0
    while k < max_checks and rng.random() < continue_p:
        k += 1
    return k


def trace(problem: Problem, rng: random.Random, *, slip: float = TRAP_SLIP,
          continue_p: float = RECHECK_CONTINUE, max_checks: int = MAX_CHECKS) -> tuple[str, int]:
    """A warm-up response (text after the prompt's ``<think>\\n``) and its number of re-checks."""
    first = hasty_values(rng, problem.start, problem.ops, slip)
    passes = [render_pass(problem.start, problem.ops, first)]
    checks = draw_checks(rng, continue_p, max_checks)
    final = first[-1]
    good = chain_values(problem.start, problem.ops)
    for _ in range(checks):
        passes.append(f"{CHECK_WORD} " + render_pass(problem.start, problem.ops, good))
        final = good[-1]
    body = "\n".join(passes)
    return f"{body}\n</think>\n\\boxed{{{final}}}", checks
