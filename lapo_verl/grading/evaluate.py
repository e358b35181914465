"""Evaluation of answer expressions (exact where possible), and equality of expressions in variables.

A recursive-descent parser over the canonical strings of :mod:`.notation` computes values of these kinds:

* ``Fraction`` and :class:`~.algebraic.AlgebraicNumber` -- exact reals (rationals; sums of radicals
  and powers of pi in a canonical form): equal iff their forms are equal;
* ``mpf`` -- anything else (trigonometry, logarithms, ``e``, nested radicals), computed with mpmath at
  60 significant digits: such a value can prove that two answers differ (a decimal approximation of
  ``\\ln 2`` differs from it at the 11th digit), never that they are equal;
* ``DegreeBounds`` -- only while analysing an expression in variables (degree bounds).

Expressions in variables differ if they differ at a point (points include 0, negatives and
non-integers); they are equal only as rational functions compared on a grid of ``degree + 1`` points
per variable (a polynomial identity proof). Whatever cannot be decided raises :class:`Undecided`
internally and ends as "undecided" (None) for the caller.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from .algebraic import (
    MAX_INT_BITS,
    PI,
    AlgebraicNumber,
    Undecided,
    algebraic_add,
    algebraic_inverse,
    algebraic_mul,
    algebraic_power,
    terms_of,
)

__all__ = [
    "EVALUATION_ERRORS",
    "AlgebraicNumber",
    "DegreeBounds",
    "Undecided",
    "Undefined",
    "complex_value",
    "constant_value",
    "divide",
    "functions_equal",
    "is_exact",
    "is_undefined",
    "scalar_values",
    "tokenize",
    "values_equal",
    "varies",
]


class Undefined(Undecided):
    """A constant divided by an exact zero (``\\frac{4}{0}``): no number at all."""


_TOKEN_RE = re.compile(
    r"\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?"
    r"|\\[a-zA-Z]+|[a-zA-Z]|\*\*|[-+*/^(){}\[\]]"
)
_KNOWN_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\sin", "\\cos", "\\tan", "\\cot", "\\sec", "\\csc", "\\ln",
                   "\\log", "\\exp"}
_VARIABLE_LETTERS = frozenset("abcdfghjklmnopqrstuvwxyzABCDFGHJKLMNOPQRSTUVWXYZ")  # not e, i, E, I (constants)


@lru_cache(maxsize=65536)
def tokenize(s: str) -> tuple[str, ...]:
    s = s.replace("{}", "*")  # "\\pi{}r" (command/letter separator) is a product
    pos = 0
    toks = []
    for m in _TOKEN_RE.finditer(s):
        if m.start() != pos:
            raise Undecided
        toks.append(m.group(0))
        pos = m.end()
    if pos != len(s):
        raise Undecided
    return tuple(toks)


# ---- arithmetic on all value kinds -----------------------------------------------------------


class DegreeBounds:
    """Degree bounds of a rational function ``P/Q`` in the variables (``rational=False``: not one)."""

    __slots__ = ("num", "den", "rational")

    def __init__(self, num: int, den: int, rational: bool = True) -> None:
        self.num, self.den, self.rational = num, den, rational


_CONSTANT_DEGREE = DegreeBounds(0, 0)


def _degree_bounds_of(v) -> DegreeBounds:
    return v if isinstance(v, DegreeBounds) else _CONSTANT_DEGREE


def is_exact(v) -> bool:
    return isinstance(v, (Fraction, AlgebraicNumber))


def _checked(v):
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > MAX_INT_BITS or v.denominator.bit_length() > MAX_INT_BITS:
            raise Undecided
        return v
    if isinstance(v, (AlgebraicNumber, DegreeBounds)):
        return v
    ctx = _mp_context()
    if not isinstance(v, ctx.mpf) or ctx.isnan(v) or ctx.isinf(v):
        raise Undecided  # complex (mpc) or not finite
    return v


_MP_CONTEXT = None


def _mp_context():
    """A private mpmath context at 60 significant digits (imported on first use)."""
    global _MP_CONTEXT
    if _MP_CONTEXT is None:
        from mpmath.ctx_mp import MPContext

        ctx = MPContext()
        ctx.dps = 60
        _MP_CONTEXT = ctx
    return _MP_CONTEXT


def _to_mpf(v):
    """``v`` as a 60-digit mpmath float."""
    ctx = _mp_context()
    if isinstance(v, Fraction):
        return ctx.mpf(v.numerator) / v.denominator
    if isinstance(v, AlgebraicNumber):
        total = ctx.mpf(0)
        for (k, rad), c in v.terms.items():
            x = ctx.mpf(c.numerator) / c.denominator * ctx.pi**k
            for p, f in rad:
                x *= ctx.power(p, ctx.mpf(f.numerator) / f.denominator)
            total += x
        return total
    if isinstance(v, (int, float)):
        return ctx.mpf(v)
    return _checked(v)


def _negate(a):
    if isinstance(a, DegreeBounds):
        return a
    if isinstance(a, AlgebraicNumber):
        return AlgebraicNumber({k: -c for k, c in a.terms.items()})
    return -a


def _add(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _checked(a + b)
    if isinstance(a, DegreeBounds) or isinstance(b, DegreeBounds):
        x, y = _degree_bounds_of(a), _degree_bounds_of(b)
        return DegreeBounds(max(x.num + y.den, y.num + x.den), x.den + y.den, x.rational and y.rational)
    if is_exact(a) and is_exact(b):
        return algebraic_add(a, b)
    return _checked(_to_mpf(a) + _to_mpf(b))


def _multiply(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _checked(a * b)
    if isinstance(a, DegreeBounds) or isinstance(b, DegreeBounds):
        x, y = _degree_bounds_of(a), _degree_bounds_of(b)
        return DegreeBounds(x.num + y.num, x.den + y.den, x.rational and y.rational)
    if is_exact(a) and is_exact(b):
        try:
            return algebraic_mul(a, b)
        except Undecided:
            pass
    return _checked(_to_mpf(a) * _to_mpf(b))


def divide(a, b):
    if isinstance(a, DegreeBounds) or isinstance(b, DegreeBounds):
        if not isinstance(b, DegreeBounds) and b == 0:
            raise Undecided
        x, y = _degree_bounds_of(a), _degree_bounds_of(b)
        return DegreeBounds(x.num + y.den, x.den + y.num, x.rational and y.rational)
    if isinstance(b, Fraction) and b == 0:
        raise Undefined
    if b == 0:
        raise Undecided
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _checked(a / b)
    if is_exact(a) and is_exact(b):
        try:
            return algebraic_mul(a, algebraic_inverse(b))
        except Undecided:
            pass
    fb = _to_mpf(b)
    if fb == 0:
        raise Undecided
    return _checked(_to_mpf(a) / fb)


def _root(x, n):
    if not (isinstance(n, Fraction) and n.denominator == 1 and 0 < n <= 64):
        raise Undecided
    if isinstance(x, DegreeBounds):
        return DegreeBounds(x.num, x.den, False)
    return _power(x, 1 / n)


def _power(a, e):
    if isinstance(e, DegreeBounds):
        return DegreeBounds(_degree_bounds_of(a).num, _degree_bounds_of(a).den, False)
    if isinstance(a, DegreeBounds):
        if isinstance(e, Fraction) and e.denominator == 1:
            k = int(e)
            if abs(k) > 1000:
                raise Undecided
            return DegreeBounds(k * a.num, k * a.den, a.rational) if k >= 0 else DegreeBounds(-k * a.den, -k * a.num, a.rational)
        return DegreeBounds(a.num, a.den, False)
    if isinstance(e, Fraction) and is_exact(a):
        try:
            return algebraic_power(a, e)
        except Undecided:
            if isinstance(a, Fraction) and a < 0 and e.denominator % 2 == 0:
                raise
    fa, fe = _to_mpf(a), _to_mpf(e)
    if fa < 0:
        if isinstance(e, Fraction) and e.denominator % 2 == 1:
            r = _power(-fa, e)
            return -r if e.numerator % 2 else r
        raise Undecided
    if fa == 0 and fe <= 0:
        raise Undecided
    if abs(fe) > 10**6:
        raise Undecided
    try:
        return _checked(_mp_context().power(fa, fe))
    except (OverflowError, ZeroDivisionError):
        raise Undecided from None


# "\log" without a base is ln or log10 depending on the author: undecided
_FUNCTIONS = {"\\sin": "sin", "\\cos": "cos", "\\tan": "tan", "\\cot": "cot", "\\sec": "sec", "\\csc": "csc",
          "\\ln": "ln", "\\exp": "exp"}


def _apply_function(name: str, x):
    if name not in _FUNCTIONS:
        raise Undecided
    if isinstance(x, DegreeBounds):
        return DegreeBounds(x.num, x.den, False)
    ctx = _mp_context()
    fx = _to_mpf(x)
    if name == "\\ln" and fx <= 0:
        raise Undecided
    if abs(fx) > 10**6:
        raise Undecided
    try:
        return _checked(getattr(ctx, _FUNCTIONS[name])(fx))
    except (ValueError, OverflowError, ZeroDivisionError):
        raise Undecided from None


class _ExpressionParser:
    """Recursive-descent evaluator over the value kinds above.

    ``point`` maps variable letters to values; ``None`` means "degree analysis": every variable
    letter evaluates to ``DegreeBounds(1, 0)`` and constants are still computed exactly."""

    __slots__ = ("tokens", "pos", "point", "used_variables")

    def __init__(self, toks, point):
        self.tokens = toks
        self.pos = 0
        self.point = point
        self.used_variables = set()

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, tok=None):
        x = self.peek()
        if x is None or (tok is not None and x != tok):
            raise Undecided
        self.pos += 1
        return x

    def run(self):
        v = self.expr()
        if self.pos != len(self.tokens):
            raise Undecided
        return v

    def expr(self):
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            w = self.term()
            v = _add(v, w) if op == "+" else _add(v, _negate(w))
        return v

    def term(self):
        v = self.unary()
        while True:
            p = self.peek()
            if p in ("*", "/"):
                self.take()
                w = self.unary()
                v = _multiply(v, w) if p == "*" else divide(v, w)
            elif p is not None and (p in ("(", "{") or p in _KNOWN_COMMANDS or p.isalpha() or p[0].isdigit() or p[0] == "."):
                # implicit product: 2\sqrt{3}, 3\pi, 2x, (1)(2). A number followed by a number
                # or by \frac of numbers (mixed number "2\frac12"?) is ambiguous -> undecided.
                if p[0].isdigit() or p[0] == "." or p == "\\frac":
                    raise Undecided
                w = self.exponentiation()
                v = _multiply(v, w)
            else:
                return v

    def unary(self):
        p = self.peek()
        if p == "-":
            self.take()
            return _negate(self.unary())
        if p == "+":
            self.take()
            return self.unary()
        return self.exponentiation()

    def exponentiation(self):
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            if self.peek() == "{":
                self.take()
                e = self.expr()
                self.take("}")
            elif self.peek() == "-":
                self.take()
                e = _negate(self.exponent_atom())
            else:
                e = self.exponent_atom()
            return _power(base, e)
        return base

    def exponent_atom(self):
        p = self.take()
        if p[0].isdigit():
            if len(p) > 1 and "." not in p and "e" not in p.lower():
                # "x^23" in LaTeX is x^2 * 3; ambiguous
                raise Undecided
            return _parse_number(p)
        if p.isalpha() and len(p) == 1:
            return self.variable(p)
        if p == "\\pi":
            return PI
        raise Undecided

    def argument(self):
        if self.peek() == "{":
            self.take()
            v = self.expr()
            self.take("}")
            return v
        return self.exponent_atom()

    def variable(self, c):
        if c == "e":  # Euler's number (inexact: proves differences only)
            return +_mp_context().e  # unary plus: the constant as a 60-digit mpf
        if c not in _VARIABLE_LETTERS:
            raise Undecided
        self.used_variables.add(c)
        if self.point is None:
            return DegreeBounds(1, 0)
        try:
            return self.point[c]
        except KeyError:
            raise Undecided from None

    def atom(self):
        p = self.take()
        if p[0].isdigit() or p[0] == ".":
            return _parse_number(p)
        if p == "(":
            v = self.expr()
            self.take(")")
            return v
        if p == "{":
            v = self.expr()
            self.take("}")
            return v
        if p == "\\frac":
            a = self.argument()
            b = self.argument()
            return divide(a, b)
        if p == "\\sqrt":
            if self.peek() == "[":
                self.take()
                n = self.expr()
                self.take("]")
                x = self.argument()
                return _root(x, n)
            return _root(self.argument(), Fraction(2))
        if p == "\\pi":
            return PI
        if p in _FUNCTIONS or p == "\\log":
            nxt = self.peek()
            if nxt == "*" and self.pos + 1 < len(self.tokens) and len(self.tokens[self.pos + 1]) == 1 and self.tokens[self.pos + 1].isalpha():
                self.take()  # "\\cot{}x": the command/letter separator
                nxt = self.peek()
            if nxt in ("(", "{"):
                x = self.atom()
            elif nxt is not None and len(nxt) == 1 and nxt.isalpha() and (
                self.pos + 1 >= len(self.tokens) or self.tokens[self.pos + 1] in ("+", "-", "*", "/", ")", "}", "]")
                or self.tokens[self.pos + 1].startswith("\\")
            ):
                x = self.variable(self.take())  # "\\cot x", "\\sin x\\cos x" ("\\sin xy" stays undecided)
            elif p == "\\ln" and nxt is not None and nxt[0].isdigit() and (
                self.pos + 1 >= len(self.tokens) or self.tokens[self.pos + 1] in ("+", "-", "*", "/", ")", "}", "]")
            ):
                x = _parse_number(self.take())  # "\\ln 2": a lone number ("\\ln 2x" stays undecided)
            else:
                raise Undecided
            return _apply_function(p, x)
        if p.isalpha() and len(p) == 1:
            return self.variable(p)
        raise Undecided




def _parse_number(tok: str):
    try:
        if "e" in tok or "E" in tok:
            mant, _, ex = tok.lower().partition("e")
            ex_i = int(ex)
            if abs(ex_i) > 400:
                raise Undecided
            return Fraction(mant) * Fraction(10) ** ex_i
        return Fraction(tok)
    except (ValueError, ZeroDivisionError):
        raise Undecided from None


EVALUATION_ERRORS = (Undecided, RecursionError, ValueError, ZeroDivisionError, OverflowError, TypeError)


def _evaluate(s: str, point: dict | None):
    ev = _ExpressionParser(tokenize(s), point)
    return ev.run(), frozenset(ev.used_variables)


#: 60-digit values that differ by more than this (relative) are certainly different numbers
_CERTAIN_RELATIVE_DIFFERENCE = 1e-30


def values_equal(a, b) -> bool | None:
    """Exact values: decided. A float on either side can only prove a difference."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    if is_exact(a) and is_exact(b):
        return terms_of(a) == terms_of(b)
    try:
        fa, fb = _to_mpf(a), _to_mpf(b)
    except Undecided:
        return None
    scale = max(abs(fa), abs(fb))
    if scale > 1e25:
        return None  # too coarse to decide
    if abs(fa - fb) > _CERTAIN_RELATIVE_DIFFERENCE * max(1, scale):
        return False
    return None


_MIXED_NUMBER_RE = re.compile(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")


@lru_cache(maxsize=65536)
def scalar_values(s: str):
    """``(value, variables used, degree bounds)`` of ``s``; ``value`` is None for expressions in
    variables. None if ``s`` is not evaluable."""
    if not s or len(s) > 300:
        return None
    m = _MIXED_NUMBER_RE.fullmatch(s)
    if m:  # "137\frac{1}{2}" is the mixed number 137 1/2
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if den == 0:
            return None
        v = whole + Fraction(num, den)
        return (-v if m.group(1) else v), frozenset(), _CONSTANT_DEGREE
    try:
        v, used = _evaluate(s, None)
    except EVALUATION_ERRORS:
        return None
    if used:
        return None, used, _degree_bounds_of(v)
    return v, used, _CONSTANT_DEGREE


@lru_cache(maxsize=4096)
def is_undefined(s: str) -> bool:
    """True when ``s`` divides by an exact zero (and uses no variables)."""
    try:
        _evaluate(s, None)
    except Undefined:
        return True
    except EVALUATION_ERRORS:
        return False
    return False


def constant_value(s: str):
    """The value of a constant expression, or None."""
    a = scalar_values(s)
    return a[0] if a is not None and not a[1] else None


#: evaluation points for variables: zero, negatives, non-integers (c_k = (-1)^k (k^2+1)/(k+1))
_POINTS_PER_VARIABLE = [Fraction(0)] + [Fraction((-1) ** k * (k * k + 1), k + 1) for k in range(1, 80)]
_MAX_DEGREE = 40  # rational functions of higher degree are not proven equal by evaluation
_MAX_GRID_POINTS = 125  # points of a multivariate evaluation grid


def _value_at(s: str, point: dict):
    try:
        v, _ = _evaluate(s, point)
    except EVALUATION_ERRORS:
        return None
    return v


def _spread_points(names: list[str], count: int):
    """A few points where each variable takes zero, negative and non-integer values."""
    for k in range(count):
        yield {c: _POINTS_PER_VARIABLE[(k + 3 * j) % 24] for j, c in enumerate(names)}


def functions_equal(p: str, g: str, used: frozenset, dp: DegreeBounds, dg: DegreeBounds) -> bool | None:
    """Equality of two expressions in the same variables.

    Different values at a point where both are defined (exact values) prove "different". Equal
    values prove "equal" only for rational functions on enough points: ``P1/Q1 - P2/Q2`` has a
    numerator of total degree ``D <= max(n1 + d2, n2 + d1)``; a nonzero polynomial of degree ``D``
    cannot vanish on a grid of ``D + 1`` values per variable. Otherwise: undecided."""
    names = sorted(used)
    # cheap disagreement check first
    for pt in _spread_points(names, 6):
        a, b = _value_at(p, pt), _value_at(g, pt)
        if a is not None and b is not None and values_equal(a, b) is False:
            return False
    if not (dp.rational and dg.rational):
        return None
    deg = max(dp.num + dg.den, dg.num + dp.den)
    if deg > _MAX_DEGREE or (deg + 1) ** len(names) > _MAX_GRID_POINTS:
        return None
    if len(names) == 1:
        c = names[0]
        agreed = 0
        for x in _POINTS_PER_VARIABLE:
            a, b = _value_at(p, {c: x}), _value_at(g, {c: x})
            if a is None or b is None:
                continue  # a pole of either side
            r = values_equal(a, b)
            if r is False:
                return False
            if r is not True:
                return None
            agreed += 1
            if agreed > deg:
                return True
        return None
    for offset in (0, 1, deg + 1):  # another grid when one meets a pole (x = 0 in 1/x, ...)
        values = _POINTS_PER_VARIABLE[offset : offset + deg + 1]
        grid = [{}]
        for c in names:
            grid = [dict(pt, **{c: x}) for pt in grid for x in values]
        for pt in grid:
            a, b = _value_at(p, pt), _value_at(g, pt)
            if a is None or b is None:
                break  # a pole on the grid: no proof from this grid
            r = values_equal(a, b)
            if r is not True:
                return r
        else:
            return True
    return None


def varies(s: str, used: frozenset) -> bool:
    """True when ``s`` takes two different exact values (so it is not a constant)."""
    seen = None
    for pt in _spread_points(sorted(used), 8):
        v = _value_at(s, pt)
        if v is None:
            continue
        if seen is None:
            seen = v
        elif values_equal(seen, v) is False:
            return True
    return False


_COMPLEX_RE = re.compile(r"^(?P<re>.*?)(?P<sign>(?<!^)[-+]|^[-+]?)(?P<im>[^-+]*?)\*?i$")


def complex_value(s: str):
    """(re, im, has_i) for ``a+bi`` / ``bi`` / real numbers; None if not of that shape."""
    if not s.endswith("i") or s.endswith("\\pi"):
        v = constant_value(s)
        if v is not None:
            return v, Fraction(0), False
        return None
    m = _COMPLEX_RE.match(s)
    if not m:
        return None
    re_s, sign, im_s = m.group("re"), m.group("sign"), m.group("im")
    if "i" in re_s.replace("\\pi", "") or "i" in im_s.replace("\\pi", ""):
        return None
    im = constant_value(im_s) if im_s else Fraction(1)
    re_v = constant_value(re_s) if re_s else Fraction(0)
    if im is None or re_v is None:
        return None
    return re_v, (_negate(im) if sign == "-" else im), True
