"""Fast in-process equivalence: string normalisation + exact evaluation.

``fast_equal(pred, gold)`` returns True (certainly equal), False (certainly different) or None
(undecided: ask math-verify). It must never return True for answers that are not equal: "equal"
comes only from identical normalised strings, exact arithmetic, or an identity proven by exact
evaluation (see docs/grading.md, "Equivalence", for every rule).

* Normalisation removes notation only: spacing commands, ``\\left``/``\\right``, ``\\dfrac`` /
  ``\\tfrac``, degree signs, ``\\%``, units, ``\\$``, thousands separators (``1,234`` without spaces
  or ``1,\\!234``), ``x =`` prefixes, trailing periods, unicode fractions and symbols.
* A recursive-descent evaluator computes exact values: rationals (``Fraction``) and sums of
  radicals and powers of pi in a canonical form (``AlgebraicNumber``); other values (trigonometry, logs, ``e``)
  at 60 digits with mpmath, which can only prove a difference.
* Expressions in variables differ if they differ at a point (points include 0, negatives and
  non-integers); they are equal only as rational functions compared on a grid of ``degree + 1``
  points per variable (a polynomial identity proof).
* Tuples and intervals compare in order, sets and bare comma lists unordered, named results
  (``x=3, y=2``) by name, base-``b`` numerals by value, matrices element by element.
* Percent: "50\\%" equals "50" and "0.5" (a percent sign on one side scales by 100).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------

_UNICODE_REPLACEMENTS = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u03c0": "\\pi ",
    "\u221a": "\\sqrt", "\u00b0": "^\\circ", "\u221e": "\\infty ", "\u2264": "\\le ",
    "\u2265": "\\ge ", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "\u00b2": "^{2}", "\u00b3": "^{3}",
}
# vulgar fractions: "½" -> "\frac{1}{2}" ("2½" becomes the mixed number 2 1/2)
_UNICODE_FRACTIONS = {
    "\u00bd": (1, 2), "\u2153": (1, 3), "\u2154": (2, 3), "\u00bc": (1, 4), "\u00be": (3, 4),
    "\u2155": (1, 5), "\u2156": (2, 5), "\u2157": (3, 5), "\u2158": (4, 5), "\u2159": (1, 6),
    "\u215a": (5, 6), "\u2150": (1, 7), "\u215b": (1, 8), "\u215c": (3, 8), "\u215d": (5, 8),
    "\u215e": (7, 8), "\u2151": (1, 9), "\u2152": (1, 10),
}
_UNICODE_REPLACEMENTS.update({k: f"\\frac{{{a}}}{{{b}}}" for k, (a, b) in _UNICODE_FRACTIONS.items()})
_SPACING_AND_SIZING_COMMANDS = [
    "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
    "\\displaystyle", "\\textstyle", "\\!", "\\,", "\\;", "\\:", "\\>", "\\quad", "\\qquad",
    "\\mathrm{~}",
]
_UNIT_WORDS = (
    "units?|square units?|sq units?|cubic units?|degrees?|cm|centimeters?|mm|millimeters?|"
    "meters?|km|kilometers?|inch(?:es)?|feet|foot|ft|yards?|yd|miles?|mph|km/h|"
    "seconds?|sec|minutes?|min|hours?|hr|days?|weeks?|months?|years?|dollars?|cents?|"
    "pounds?|lbs?|ounces?|oz|kg|grams?|kilograms?|liters?|ml|gallons?|"
    "people|persons?|students?|ways|points?|times|cookies|apples|marbles|handshakes|games|"
    "cm\\^2|cm\\^3|m\\^2|m\\^3|in\\^2|ft\\^2|inches\\^2|feet\\^2"
)
_TEXT_COMMAND_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|rm|bf)\s*\{")
_TRAILING_TEXT_UNIT_RE = re.compile(
    r"^(?P<num>.*?(?:[\d}]|\\pi))\s*\\(?:text|mbox|mathrm)\s*\{\s*(?P<u>[^{}]*)\}\s*(?:\^\s*\{?\d\}?)?\s*$"
)
_AND_OR_SEPARATOR_RE = re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s*(?:and|or)\s*\}\s*|(?<=\d)\s+(?:and|or)\s+(?=[-\d\\])")
_LATEX_THOUSANDS_RE = re.compile(r"(\d),\\!\s*(?=\d{3}(?!\d))")
_TRIG_FUNCTION_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)")
_REPEATING_DECIMAL_RE = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating_decimal_as_fraction(m: re.Match) -> str:
    """0.4\\overline{6} -> \\frac{7}{15} (exact)."""
    sign, ip, fp, rep = m.group(1), m.group(2) or "0", m.group(3), m.group(4)
    a = Fraction(int(ip + fp + rep) - int(ip + fp or "0"), (10 ** len(rep) - 1) * 10 ** len(fp))
    return f"{sign}\\frac{{{a.numerator}}}{{{a.denominator}}}"
_TRAILING_UNIT_WORD_RE = re.compile(r"^(?P<num>.*?(?:[\d}]|\\pi))\s+(?:" + _UNIT_WORDS + r")\s*\.?$", re.IGNORECASE)
_THOUSANDS_SEPARATED_RE = re.compile(r"^[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_SINGLE_ASSIGNMENT_PREFIX_RE = re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[\w]+\}?)?\s*(?:=|\\in)\s*(?=\S)")
_FRAC_TWO_DIGITS_RE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_DIGIT_THEN_GROUP_RE = re.compile(r"\\frac\s*(\d)\s*\{")
_FRAC_GROUP_THEN_DIGIT_RE = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORTHAND_RE = re.compile(r"\\sqrt\s*(\d|[a-zA-Z](?![a-zA-Z]))")
_CHOICE_IN_PARENS_RE = re.compile(r"^\(?([A-E])\)?$")


def _unwrap_text_commands(s: str) -> str:
    """``\\text{abc}`` -> ``abc`` (balanced braces)."""
    out = []
    i = 0
    while True:
        m = _TEXT_COMMAND_RE.search(s, i)
        if not m:
            out.append(s[i:])
            break
        out.append(s[i : m.start()])
        j = m.end() - 1
        depth = 0
        k = j
        while k < len(s):
            if s[k] == "{":
                depth += 1
            elif s[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k >= len(s):  # unbalanced: leave as is
            out.append(s[m.start() :])
            break
        inner = s[j + 1 : k]
        um = _TRAILING_UNIT_WORD_RE.match(inner.strip())
        if um and i == 0 and not s[k + 1 :].strip() and not s[: m.start()].strip():
            out.append(um.group("num").strip())  # the whole answer is "\text{12 cm}": the number
        elif re.search(r"[A-Za-z]{2,}", inner):
            # words stay marked as text, so "cm" never turns into the product c*m
            out.append("\\text{" + inner.strip() + "}")
        else:
            out.append(inner)
        i = k + 1
    return "".join(out)


@lru_cache(maxsize=65536)
def normalize(ans: str) -> tuple[str, bool]:
    """Normalised answer string and whether it carried a percent sign."""
    s = ans.strip()
    for k, v in _UNICODE_REPLACEMENTS.items():
        if k in s:
            s = s.replace(k, v)
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    if s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2]
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    # "11,\\! 111,\\! 100": LaTeX's explicit thousands separator, whatever the spacing
    if ",\\!" in s:
        s = _LATEX_THOUSANDS_RE.sub(r"\1,", s)
    for r in _SPACING_AND_SIZING_COMMANDS:
        if r in s:
            s = s.replace(r, "")
    s = re.sub(r"(?<!\\)\\ ", " ", s).replace("~", " ")
    s = s.replace("\\geq", "\\ge").replace("\\leq", "\\le").replace("\\neq", "\\ne")
    s = _AND_OR_SEPARATOR_RE.sub(",", s)
    s = _REPEATING_DECIMAL_RE.sub(_repeating_decimal_as_fraction, s)
    s = s.replace("{,}", ",")
    # degree signs (kept, as an unevaluable "\\degree", inside trigonometry: sin 30 degrees is not sin 30)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree",
               "\\\\degree " if _TRIG_FUNCTION_RE.search(s) else "", s)
    # percent
    pct = False
    if re.search(r"\\?%|\\percent", s):
        pct = True
        s = re.sub(r"\\?%|\\percent", "", s)
    s = s.replace("\\$", "")
    s = s.strip()
    # trailing units: "10 \text{ cm}", "10 cm", "5 \text{ square units}"
    m = _TRAILING_TEXT_UNIT_RE.match(s)
    if m and re.fullmatch(r"[a-zA-Z\s.^\d/]*", m.group("u")) and re.search(r"[a-zA-Z]", m.group("u")):
        s = m.group("num").strip()
    s = _unwrap_text_commands(s)
    m = _TRAILING_UNIT_WORD_RE.match(s)
    if m:
        s = m.group("num").strip()
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"[.\s]+$", "", s) if not re.search(r"\d\.$", s) else s[:-1]
    # "x = 5", "k \in [1,2]" (only a single assignment)
    m = _SINGLE_ASSIGNMENT_PREFIX_RE.match(s)
    if m and not re.search(r"=|<|>|\\le|\\ge|\\neq", s[m.end() :]):
        s = s[m.end() :]
    # thousands separators: only "1,234" / "-12,345.5" (no spaces; "1, 234" is a list of two numbers)
    if _THOUSANDS_SEPARATED_RE.match(s):
        s = s.replace(",", "")
    # shorthand \frac12, \frac1{x}, \sqrt2
    s = _FRAC_TWO_DIGITS_RE.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_DIGIT_THEN_GROUP_RE.sub(r"\\frac{\1}{", s)
    s = _FRAC_GROUP_THEN_DIGIT_RE.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORTHAND_RE.sub(r"\\sqrt{\1}", s)
    s = s.replace("\\emptyset", "\\varnothing")
    # spaces: keep a separator only where it separates a command from a letter
    s = re.sub(r"(\\[a-zA-Z]+) (?=[a-zA-Z])", r"\1{}", s)
    s = s.replace(" ", "")
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = s.replace(",\\!", ",")
    # multiple choice "(C)" -> "C"
    mc = _CHOICE_IN_PARENS_RE.match(s)
    if mc:
        s = mc.group(1)
    return s, pct


# --------------------------------------------------------------------------------------------
# exact / numeric evaluation
# --------------------------------------------------------------------------------------------
#
# Values are one of
#   * ``Fraction``  -- an exact rational (the common case, kept fast);
#   * ``AlgebraicNumber``      -- an exact real in canonical form: a sum of rational multiples of
#                      ``pi^k * prod(p^f)`` (``p`` prime, ``0 < f < 1`` rational). Those monomials
#                      are linearly independent over Q (Besicovitch/Mordell for real radicals of
#                      primes; pi is transcendental), so two canonical forms are equal iff the
#                      numbers are equal;
#   * ``mpf``       -- anything else (trigonometry, logarithms, ``e``, nested radicals), computed
#                      with mpmath at 60 significant digits: such a value can prove that two answers
#                      differ (a decimal approximation of ``\ln 2`` differs from it at the 11th
#                      digit), never that they are equal;
#   * ``DegreeBounds``      -- only while analysing an expression in variables (degree bounds).


class Undecided(Exception):
    pass


class Undefined(Undecided):
    """A constant divided by an exact zero (``\\frac{4}{0}``): no number at all."""


_TOKEN_RE = re.compile(
    r"\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?"
    r"|\\[a-zA-Z]+|[a-zA-Z]|\*\*|[-+*/^(){}\[\]]"
)
_KNOWN_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\sin", "\\cos", "\\tan", "\\cot", "\\sec", "\\csc", "\\ln",
                 "\\log", "\\exp"}
_MAX_INT_BITS = 4000
_MAX_ALGEBRAIC_TERMS = 64  # terms of an exact algebraic value before giving up exactness
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


# ---- exact algebraic numbers ----------------------------------------------------------------


@lru_cache(maxsize=8192)
def _prime_factors(n: int) -> tuple[tuple[int, int], ...]:
    """Prime factorisation of ``0 < n < 10**10`` (trial division); larger: undecided."""
    if n >= 10**10:
        raise Undecided
    out = []
    d = 2
    while d * d <= n:
        if n % d == 0:
            k = 0
            while n % d == 0:
                n //= d
                k += 1
            out.append((d, k))
        d += 1 if d == 2 else 2
    if n > 1:
        out.append((n, 1))
    return tuple(out)


_RATIONAL_KEY = (0, ())


class AlgebraicNumber:
    """Exact real ``sum c * pi^k * prod p^f`` as ``{(k, ((p, f), ...)): c}`` (canonical)."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict) -> None:
        self.terms = terms

    def __eq__(self, other) -> bool:  # canonical forms: structural equality is value equality
        return isinstance(other, AlgebraicNumber) and self.terms == other.terms

    __hash__ = None

    def __float__(self) -> float:
        total = 0.0
        for (k, rad), c in self.terms.items():
            x = float(c) * math.pi**k
            for p, f in rad:
                x *= float(p) ** float(f)
            total += x
        return total

    def __repr__(self) -> str:
        return f"AlgebraicNumber({self.terms!r})"


def _terms_of(v) -> dict:
    return v.terms if isinstance(v, AlgebraicNumber) else {_RATIONAL_KEY: v}


def _from_terms(t: dict):
    t = {k: c for k, c in t.items() if c != 0}
    if not t:
        return Fraction(0)
    if len(t) == 1 and _RATIONAL_KEY in t:
        return t[_RATIONAL_KEY]
    if len(t) > _MAX_ALGEBRAIC_TERMS:
        raise Undecided
    for c in t.values():
        _checked(c)
    return AlgebraicNumber(t)


def _monomial_product(k1, k2):
    """Product of two monomial keys: (rational factor, key)."""
    pi = k1[0] + k2[0]
    if not k1[1] or not k2[1]:
        return Fraction(1), (pi, k1[1] or k2[1])
    exps = dict(k1[1])
    for p, f in k2[1]:
        exps[p] = exps.get(p, Fraction(0)) + f
    coef = Fraction(1)
    rad = []
    for p in sorted(exps):
        f = exps[p]
        if f >= 1:
            coef *= p
            f -= 1
        if f:
            rad.append((p, f))
    return coef, (pi, tuple(rad))


def _algebraic_add(a, b):
    t = dict(_terms_of(a))
    for k, c in _terms_of(b).items():
        t[k] = t.get(k, 0) + c
    return _from_terms(t)


def _algebraic_mul(a, b):
    ta, tb = _terms_of(a), _terms_of(b)
    if len(ta) * len(tb) > _MAX_ALGEBRAIC_TERMS * 4:
        raise Undecided
    t: dict = {}
    for k1, c1 in ta.items():
        for k2, c2 in tb.items():
            f, k = _monomial_product(k1, k2)
            t[k] = t.get(k, 0) + c1 * c2 * f
    return _from_terms(t)


def _monomial_inverse(key, c):
    """``1 / (c * monomial)`` as terms."""
    pi, rad = key
    coef = 1 / c
    new = []
    for p, f in rad:  # p^-f = p^(1-f) / p
        coef /= p
        new.append((p, 1 - f))
    return {(-pi, tuple(new)): coef}


def _algebraic_inverse(v):
    """Exact ``1/v``: monomials directly, sums of square roots by conjugates; else undecided."""
    t = _terms_of(v)
    if len(t) == 1:
        (key, c), = t.items()
        return _from_terms(_monomial_inverse(key, c))
    # factor out a common power of pi, then rationalise square roots one prime at a time
    pis = {k[0] for k in t}
    if len(pis) != 1:
        raise Undecided
    pi = pis.pop()
    den = _from_terms({(0, k[1]): c for k, c in t.items()})
    num = Fraction(1)
    for _ in range(4):
        if isinstance(den, Fraction):
            break
        primes = {p for k in den.terms for p, f in k[1]}
        if any(f != Fraction(1, 2) for k in den.terms for _, f in k[1]):
            raise Undecided
        p = max(primes)
        conj = {k: (-c if any(q == p for q, _ in k[1]) else c) for k, c in den.terms.items()}
        conj_v = _from_terms(conj)
        num = _algebraic_mul(num, conj_v)
        den = _algebraic_mul(den, conj_v)
    else:
        raise Undecided
    if not isinstance(den, Fraction) or den == 0:
        raise Undecided
    return _algebraic_mul(_algebraic_mul(num, Fraction(1) / den), _from_terms({(-pi, ()): Fraction(1)}))


def _rational_power(q: Fraction, e: Fraction):
    """Exact real ``q**e`` for rational ``q`` and ``e`` (real roots of negatives for odd denominators)."""
    if e.denominator == 1:
        k = int(e)
        if q == 0 and k < 0:
            raise Undecided
        if abs(k) > 10000 or (q.numerator.bit_length() + q.denominator.bit_length()) * abs(k) > _MAX_INT_BITS:
            raise Undecided
        return _checked(q**k)
    if q == 0:
        if e > 0:
            return Fraction(0)
        raise Undecided
    if q < 0:
        if e.denominator % 2 == 0:
            raise Undecided  # not real
        r = _rational_power(-q, e)
        return _negate(r) if e.numerator % 2 else r
    if e.denominator > 64 or abs(e.numerator) > 10000:
        raise Undecided
    r = _exact_root(q, e.denominator)  # cheap check for perfect powers
    if r is not None:
        return _rational_power(r, Fraction(e.numerator))
    coef = Fraction(1)
    rad = {}
    for n, sign in ((q.numerator, 1), (q.denominator, -1)):
        for p, k in _prime_factors(n):
            x = k * e * sign
            whole = math.floor(x)
            frac = x - whole
            if abs(whole) > 10000:
                raise Undecided
            coef *= Fraction(p) ** whole
            if frac:
                rad[p] = frac
    return _from_terms({(0, tuple(sorted(rad.items()))): _checked(coef)})


def _algebraic_power(a, e: Fraction):
    """Exact ``a**e`` for an exact ``a`` and rational ``e``."""
    if isinstance(a, Fraction):
        return _rational_power(a, e)
    t = a.terms
    if e.denominator == 1:
        k = int(e)
        if abs(k) > 64:
            raise Undecided
        if k < 0:
            a, k = _algebraic_inverse(a), -k
        out, base = Fraction(1), a
        while k:
            if k & 1:
                out = _algebraic_mul(out, base)
            k >>= 1
            if k:
                base = _algebraic_mul(base, base)
        return out
    if len(t) != 1:
        raise Undecided
    ((pi, rad), c), = t.items()
    if (pi * e).denominator != 1:
        raise Undecided
    if c < 0 and e.denominator % 2 == 0:
        raise Undecided
    out = _from_terms({(int(pi * e), ()): Fraction(1)})
    out = _algebraic_mul(out, _rational_power(c, e))
    for p, f in rad:
        out = _algebraic_mul(out, _rational_power(Fraction(p), f * e))
    return out


# ---- arithmetic on all value kinds -----------------------------------------------------------


class DegreeBounds:
    """Degree bounds of a rational function ``P/Q`` in the variables (``rational=False``: not one)."""

    __slots__ = ("num", "den", "rational")

    def __init__(self, num: int, den: int, rational: bool = True) -> None:
        self.num, self.den, self.rational = num, den, rational


CONSTANT_DEGREE = DegreeBounds(0, 0)


def _degree_bounds_of(v) -> DegreeBounds:
    return v if isinstance(v, DegreeBounds) else CONSTANT_DEGREE


def is_exact(v) -> bool:
    return isinstance(v, (Fraction, AlgebraicNumber))


def _checked(v):
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > _MAX_INT_BITS or v.denominator.bit_length() > _MAX_INT_BITS:
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
        return _algebraic_add(a, b)
    return _checked(_to_mpf(a) + _to_mpf(b))


def _multiply(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _checked(a * b)
    if isinstance(a, DegreeBounds) or isinstance(b, DegreeBounds):
        x, y = _degree_bounds_of(a), _degree_bounds_of(b)
        return DegreeBounds(x.num + y.num, x.den + y.den, x.rational and y.rational)
    if is_exact(a) and is_exact(b):
        try:
            return _algebraic_mul(a, b)
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
            return _algebraic_mul(a, _algebraic_inverse(b))
        except Undecided:
            pass
    fb = _to_mpf(b)
    if fb == 0:
        raise Undecided
    return _checked(_to_mpf(a) / fb)


def _exact_root(x: Fraction, n: int):
    if x < 0:
        if n % 2 == 0:
            raise Undecided
        r = _exact_root(-x, n)
        return -r if r is not None else None
    num = round(x.numerator ** (1.0 / n)) if x.numerator.bit_length() < 1000 else None
    den = round(x.denominator ** (1.0 / n)) if x.denominator.bit_length() < 1000 else None
    if num is None or den is None:
        return None
    for a in (num - 1, num, num + 1):
        if a >= 0 and a**n == x.numerator:
            for b in (den - 1, den, den + 1):
                if b > 0 and b**n == x.denominator:
                    return Fraction(a, b)
    return None


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
            return _algebraic_power(a, e)
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
            return _PI
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
            return _PI
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


_PI = AlgebraicNumber({(1, ()): Fraction(1)})


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
        return _terms_of(a) == _terms_of(b)
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
        return (-v if m.group(1) else v), frozenset(), CONSTANT_DEGREE
    try:
        v, used = _evaluate(s, None)
    except EVALUATION_ERRORS:
        return None
    if used:
        return None, used, _degree_bounds_of(v)
    return v, used, CONSTANT_DEGREE


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


def _percent_to_fraction(v):
    """``50`` read as "50%": ``1/2``."""
    return divide(v, Fraction(100))


_INFINITY = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1}


def _scalars_equal(p: str, g: str, pred_percent: bool, gold_percent: bool) -> bool | None:
    if p == g and pred_percent == gold_percent:
        return True
    ap = scalar_values(p)
    ag = scalar_values(g)
    ip, ig = _INFINITY.get(p), _INFINITY.get(g)
    if ip is not None or ig is not None:
        if ip is not None and ig is not None:
            return ip == ig
        other = ag if ip is not None else ap
        return False if other is not None and not other[1] else None  # infinity is no finite number
    if ap is None or ag is None:
        if p == g:
            return True  # percent on one side only: "50%" vs "50"
        if (ap is None and ag is not None and not ag[1] and is_undefined(p)) or (
            ag is None and ap is not None and not ap[1] and is_undefined(g)
        ):
            return False  # "\\frac{4}{0}" is no number
        if p.isalpha() and g.isalpha() and len(p) >= 3 and p.lower() == g.lower():
            return True  # text answers: "Monday" vs "monday"
        return None
    (pv, pused, pdeg), (gv, gused, gdeg) = ap, ag
    if pused or gused:
        if pused != gused:
            # a constant never equals a non-constant expression
            for used, s, other_used in ((pused, p, gused), (gused, g, pused)):
                if used and not other_used and varies(s, used):
                    return False
            return None  # different variables: let math-verify decide
        return functions_equal(p, g, pused, pdeg, gdeg)
    r = values_equal(pv, gv)
    if r is True or pred_percent == gold_percent:
        return r
    # "50%" == "0.5" (scaled) and "50%" == "50" (percent sign dropped)
    try:
        r2 = values_equal(_percent_to_fraction(pv) if pred_percent else pv,
                          _percent_to_fraction(gv) if gold_percent else gv)
    except EVALUATION_ERRORS:
        r2 = None
    if r2 is True:
        return True
    if r is None or r2 is None:
        return None
    return False

# --------------------------------------------------------------------------------------------
# structures
# --------------------------------------------------------------------------------------------

class _Rule(Enum):
    NOT_APPLICABLE = "not applicable"


#: returned by a rule for answers it does not cover (the next rule decides)
NOT_APPLICABLE = _Rule.NOT_APPLICABLE


def split_top_level(s: str, seps=(",",)) -> list[str] | None:
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        if depth == 0 and c in seps:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if depth != 0:
        return None
    parts.append("".join(cur))
    return parts


class Structure(Enum):
    """The kind of brackets that enclose a whole answer (the value is the bracket pair)."""

    SET = "\\{\\}"  # \{1,2\}: unordered
    MATRIX = "matrix"  # \begin{pmatrix}...\end{pmatrix}: element by element
    PARENTHESES = "()"  # a tuple or an open interval
    BRACKETS = "[]"  # a closed interval or a list
    LEFT_OPEN = "(]"  # half-open intervals
    RIGHT_OPEN = "[)"

    @property
    def bracketed(self) -> bool:
        """A pair of round/square brackets: a tuple, a list or an interval (compared in order)."""
        return self.value[0] in "(["


class Enclosed(NamedTuple):
    kind: Structure
    inner: str  # the text between the brackets


def enclosing_structure(s: str) -> Enclosed | None:
    """The structure whose brackets enclose the whole string, or None."""
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        if split_top_level(inner) is not None:
            return Enclosed(Structure.SET, inner)
    if s.startswith("\\begin{") and s.endswith("}"):
        m = re.fullmatch(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}", s, re.S)
        if m:
            return Enclosed(Structure.MATRIX, m.group(2))
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        # make sure the first bracket closes at the end
        depth = 0
        for k, c in enumerate(s):
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0 and k != len(s) - 1:
                    return None
        return Enclosed(Structure(s[0] + s[-1]), s[1:-1])
    return None


def _elements_equal(ps, gs, ordered, pred_percent, gold_percent) -> bool | None:
    if not ordered:  # "1\\pm\\sqrt2" in a set or list stands for two elements
        ps, gs = _expand_plus_minus_elements(ps), _expand_plus_minus_elements(gs)
    if len(ps) != len(gs):
        return False
    if ordered:
        undecided = False
        for a, b in zip(ps, gs):
            r = _compare_answers(a, b, pred_percent, gold_percent)
            if r is False:
                return False
            if r is None:
                undecided = True
        return None if undecided else True
    # unordered: greedy matching with decided equalities
    remaining = list(gs)
    undecided = False
    for a in ps:
        hit = None
        for k, b in enumerate(remaining):
            r = _compare_answers(a, b, pred_percent, gold_percent)
            if r is True:
                hit = k
                break
            if r is None:
                undecided = True
        if hit is None:
            return None if undecided else False
        remaining.pop(hit)
    return True


def _expand_plus_minus_elements(elems: list[str]) -> list[str]:
    out = []
    for x in elems:
        if "\\pm" in x or "\\mp" in x:
            out.extend(split_top_level(_expand_plus_minus(x)) or [x])
        else:
            out.append(x)
    return out


def _compare_answers(p: str, g: str, pred_percent: bool, gold_percent: bool) -> bool | None:
    if p == g:
        return True
    op, og = enclosing_structure(p), enclosing_structure(g)
    if op is None and og is None:
        sp, sg = split_top_level(p), split_top_level(g)
        if sp is None or sg is None:
            return None
        if len(sp) == 1 and len(sg) == 1:
            return _scalars_equal(p, g, pred_percent, gold_percent)
        if len(sp) > 1 and len(sg) > 1:
            return _elements_equal(sp, sg, False, pred_percent, gold_percent)
        return None
    if op is None or og is None:
        kind, inner = op or og
        if kind is Structure.PARENTHESES and split_top_level(inner) == [inner]:
            # "(-2)" vs "-2": parentheses around a single value
            return _compare_answers(inner, g, pred_percent, gold_percent) if op else _compare_answers(p, inner, pred_percent, gold_percent)
        # "\{1,2\}" vs "1,2": a set and a bare list are both unordered collections
        bare = p if op is None else g
        if kind is Structure.SET:
            sb = split_top_level(bare)
            si = split_top_level(inner)
            if sb is None or si is None:
                return None
            ps, gs = (sb, si) if op is None else (si, sb)
            return _elements_equal(ps, gs, False, pred_percent, gold_percent)
        return None
    if op.kind is not og.kind:
        sp, sg = split_top_level(op.inner), split_top_level(og.inner)
        if op.kind.bracketed and og.kind.bracketed:
            if sp and sg and len(sp) == 2 and len(sg) == 2:
                return False  # "(1,2)" vs "(1,2]": different intervals
        elif ((op.kind is Structure.SET and og.kind.bracketed) or (og.kind is Structure.SET and op.kind.bracketed)) and (
            sp and sg and len(sp) >= 2 and len(sg) >= 2
        ):
            return False  # "(1,2)" vs "\{1,2\}": a tuple or an interval is not a set
        return None
    kind = op.kind
    if kind is Structure.MATRIX:
        rp = [r for r in re.split(r"\\\\", op.inner) if r.strip()]
        rg = [r for r in re.split(r"\\\\", og.inner) if r.strip()]
        if len(rp) != len(rg):
            return None
        cp = [r.split("&") for r in rp]
        cg = [r.split("&") for r in rg]
        if any(len(a) != len(b) for a, b in zip(cp, cg)):
            return None
        return _elements_equal(sum(cp, []), sum(cg, []), True, pred_percent, gold_percent)
    sp, sg = split_top_level(op.inner), split_top_level(og.inner)
    if sp is None or sg is None:
        return None
    if kind is Structure.SET:
        return _elements_equal(sp, sg, False, pred_percent, gold_percent)
    if len(sp) == 1 and len(sg) == 1:
        return _compare_answers(sp[0], sg[0], pred_percent, gold_percent)  # "(5)" vs "(3+2)"
    return _elements_equal(sp, sg, True, pred_percent, gold_percent)


_TEXT_ANSWER_RE = re.compile(
    r"\s*(?:\\(?:text|textbf|mbox|mathrm)\s*\{\s*([A-Za-z][A-Za-z ]*[A-Za-z])\s*\}|([A-Za-z]{3,}))\s*\.?\s*"
)
_PLUS_MINUS_RE = re.compile(r"^(.*?)\\(?:pm|mp)(.*)$")
_NAME_PATTERN = r"(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?"
_NAMED_ELEMENT_RE = re.compile(r"^(" + _NAME_PATTERN + r")=(?=[^=]+$)")
_TUPLE_ASSIGNMENT_RE = re.compile(r"^\((" + _NAME_PATTERN + r"(?:," + _NAME_PATTERN + r")+)\)=(?=[(\[])")


_NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "twenty", "hundred", "thousand", "million", "half", "third", "quarter",
    "none", "infinity", "infinite", "undefined",
}
_BASE_NUMERAL_RE = re.compile(r"\(?([0-9A-Za-z]+)\)?_\{?(\d+)\}?")
_CHOICE_WITH_VALUE_RE = re.compile(r"^\(([A-E])\)(?!.*\([A-E]\))(.*)$")  # one label ("(B)(C)" is two)


def _is_number(s: str) -> bool:
    return constant_value(s) is not None


def _is_scalar_value(s: str) -> bool:
    """A single evaluable value: a number, an expression in variables, a complex ``a+bi``."""
    if scalar_values(s) is not None:
        return True
    c = complex_value(s)
    return c is not None and c[2]


def _element_count(s: str) -> int:
    """Number of elements of a structure (tuple, set, matrix, bare list); 1 for a scalar."""
    o = enclosing_structure(s)
    if o is None:
        parts = split_top_level(s)
        return len(parts) if parts else 1
    kind, inner = o
    if kind is Structure.MATRIX:
        return len(re.split(r"\\\\|&", inner))
    parts = split_top_level(inner)
    return len(parts) if parts else 1


def _split_union(s: str) -> list[str] | None:
    """Top-level parts of a union ``A\\cupB``."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith("\\cup", i):
            parts.append(s[start:i])
            i += 4
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return parts if all(parts) else None


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


def text_answer_word(raw: str) -> str | None:
    """Lower-cased word if ``raw`` is a plain text answer (``\text{odd}``, ``Monday``)."""
    m = _TEXT_ANSWER_RE.fullmatch(raw)
    if not m:
        return None
    return (m.group(1) or m.group(2)).lower().replace(" ", "")


def _expand_plus_minus(s: str) -> str:
    """``a\pm b`` (one sign, no list) -> ``a+b,a-b``."""
    if s.count("\\pm") + s.count("\\mp") != 1 or "," in s:
        return s
    m = _PLUS_MINUS_RE.match(s)
    a, b = m.group(1), m.group(2)
    if not b:
        return s
    return f"{a}+{b},{a}-{b}"


def _named_parts(s: str) -> list[tuple[str, str]] | None:
    """``x=3,y=2`` -> [("x", "3"), ("y", "2")]: a list of two or more ``name=value`` parts."""
    parts = split_top_level(s)
    if not parts or len(parts) < 2:
        return None
    out = []
    for x in parts:
        m = _NAMED_ELEMENT_RE.match(x)
        if not m:
            return None
        out.append((m.group(1).replace("{", "").replace("}", ""), x[m.end() :]))
    return out


def _unnamed_elements(s: str) -> list[str] | None:
    """Elements of a tuple ``(3,2)`` or a bare list ``3,2`` (in order); None otherwise."""
    o = enclosing_structure(s)
    if o is None:
        parts = split_top_level(s)
    elif o.kind is Structure.PARENTHESES:
        parts = split_top_level(o.inner)
    else:
        return None
    return parts if parts and len(parts) >= 2 else None


def _name_order(name: str) -> tuple[bool, str]:
    """Conventional order of unknowns: Latin letters alphabetically (x, y, z; a, b, c), then Greek
    (r before \\theta)."""
    return name.startswith("\\"), name


def _named_results_equal(p: str, g: str, pred_percent: bool, gold_percent: bool) -> bool | None | _Rule:
    """Named results (``x=3,y=2``). Returns a verdict, or ``NOT_APPLICABLE`` when neither side is named.

    * Distinct names on both sides: compared name by name (``x=3,y=2`` is not ``x=2,y=3``);
      different name sets: undecided.
    * One name repeated (``x=2,x=-2``: the solutions of one unknown): names dropped, compared as an
      unordered list (also against an unnamed list).
    * Distinct names against an unnamed tuple or list: the named values in alphabetical order of
      the names, Latin before Greek (``y=2,x=3`` is the pair ``(3,2)``; ``r=2,\\theta=\\pi`` is
      ``(2,\\pi)``), compared in order.
    """
    np_, ng = _named_parts(p), _named_parts(g)
    if np_ is None and ng is None:
        return NOT_APPLICABLE

    def solutions(named):  # the values, when all parts name the same single unknown
        return [v for _, v in named] if len({n for n, _ in named}) == 1 else None

    def distinct(named):
        return dict(named) if len({n for n, _ in named}) == len(named) else None

    if np_ is not None and ng is not None:
        sp, sg = solutions(np_), solutions(ng)
        if sp is not None and sg is not None:
            return _elements_equal(sp, sg, False, pred_percent, gold_percent) if np_[0][0] == ng[0][0] else None
        dp, dg = distinct(np_), distinct(ng)
        if dp is None or dg is None or set(dp) != set(dg):
            return None
        return _elements_equal([dp[k] for k in dp], [dg[k] for k in dp], True, pred_percent, gold_percent)
    named, other = (np_, g) if np_ is not None else (ng, p)
    elems = _unnamed_elements(other)
    if elems is None:
        return None
    sols = solutions(named)
    if sols is not None:
        if enclosing_structure(other) is not None:
            return None  # "x=1,x=2" against a tuple "(1,2)": not the same kind of answer
        ps, gs = (sols, elems) if np_ is not None else (elems, sols)
        return _elements_equal(ps, gs, False, pred_percent, gold_percent)
    d = distinct(named)
    if d is None:
        return None
    vals = [d[k] for k in sorted(d, key=_name_order)]
    ps, gs = (vals, elems) if np_ is not None else (elems, vals)
    return _elements_equal(ps, gs, True, pred_percent, gold_percent)


def _base_numeral_value(m: re.Match | None) -> int | None:
    """Value of a base-``b`` numeral ``52_8`` / ``(1011)_{2}``; None if the digits are not valid."""
    if m is None:
        return None
    digits, base = m.group(1), int(m.group(2))
    if not 2 <= base <= 36 or not any(c.isdigit() for c in digits):
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _base_numerals_equal(p: str, g: str) -> bool | None | _Rule:
    """Base subscripts. Returns a verdict, or ``NOT_APPLICABLE`` when neither side is a base-``b`` numeral.

    * Two numerals: equal iff they denote the same number (``40_6`` is 24, ``40_9`` is 36).
    * A numeral against a plain number: equal when the plain number has the same digits (the
      answer written in the asked base without its subscript: ``52`` for ``52_8``) or the same
      value read in base ten (``11`` for ``1011_2``); otherwise not equal.
    """
    mp, mg = _BASE_NUMERAL_RE.fullmatch(p), _BASE_NUMERAL_RE.fullmatch(g)
    vp, vg = _base_numeral_value(mp), _base_numeral_value(mg)
    if vp is None and vg is None:
        return NOT_APPLICABLE
    if vp is not None and vg is not None:
        return vp == vg
    if mp is not None and mg is not None and mp.group(2) == mg.group(2):
        return False  # same base, one side's digits invalid ("90_9" vs "40_9"): different strings
    if (mp is not None and vp is None) or (mg is not None and vg is None):
        return None  # the other side looks like a numeral with digits invalid for its base
    m, v, other = (mp, vp, g) if vp is not None else (mg, vg, p)
    if re.fullmatch(r"[0-9A-Za-z]+", other) and other.lstrip("0").upper() == m.group(1).lstrip("0").upper():
        return True
    c = constant_value(other)
    if c is None:
        cv = complex_value(other)
        return False if cv is not None and cv[2] else None  # a numeral is not a non-real number
    return values_equal(c, Fraction(v))


def _choices_equal(p: str, g: str) -> bool | None | _Rule:
    """Multiple choice: a bare letter ``D`` against ``(D)`` / ``(D)12`` (the label with its value).

    Returns a verdict, or ``NOT_APPLICABLE`` when the rule does not apply."""
    lp = p if len(p) == 1 and p in "ABCDE" else None
    lg = g if len(g) == 1 and g in "ABCDE" else None
    mp, mg = _CHOICE_WITH_VALUE_RE.match(p), _CHOICE_WITH_VALUE_RE.match(g)
    if lp is None and mp is not None:
        lp = mp.group(1)
    elif lg is None and mg is not None:
        lg = mg.group(1)
    if lp is None or lg is None or (p == lp and g == lg):
        return NOT_APPLICABLE
    return lp == lg


def _resolve_tuple_assignment(s: str, other: str) -> str:
    """``(x,y)=(3,2)``: against a named answer it becomes ``x=3,y=2``; otherwise ``(3,2)`` (the
    values in the order the names were written)."""
    m = _TUPLE_ASSIGNMENT_RE.match(s)
    if not m:
        return s
    values = s[m.end() :]
    if _named_parts(other) is not None and enclosing_structure(values) is not None:
        names, vals = m.group(1).split(","), split_top_level(enclosing_structure(values).inner)
        if vals is not None and len(names) == len(vals):
            return ",".join(f"{n}={v}" for n, v in zip(names, vals))
    return values


_UNIT_IN_TEXT_RE = re.compile(r"\\(?:text|mbox|mathrm)\s*\{\s*(?:[\d.]+\s+)?([a-zA-Z][a-zA-Z ]*?)\s*\}\s*(?:\^\s*\{?\d\}?)?\s*\.?\s*$")
_UNIT_AFTER_NUMBER_RE = re.compile(r"(?<=[\d}])\s+(" + _UNIT_WORDS + r")\s*\.?$", re.IGNORECASE)


def unit_of_answer(ans: str) -> str | None:
    """The unit an answer ends with (``12 \\text{ cm}``, ``\\text{12 cm}``, ``5 meters``), singular, lower case."""
    m = _UNIT_IN_TEXT_RE.search(ans) or _UNIT_AFTER_NUMBER_RE.search(ans)
    if not m:
        return None
    u = re.sub(r"\s+", " ", re.sub(r"\^.*$", "", m.group(1)).strip().lower())  # cm^2 -> cm (lenient)
    return u[:-1] if u.endswith("s") and len(u) > 3 else u


def fast_equal(pred: str, gold: str) -> bool | None:
    """True / False when certain, None when math-verify must decide."""
    p, pred_percent = normalize(pred)
    g, gold_percent = normalize(gold)
    if not p or not g:
        return None
    up, ug = unit_of_answer(pred), unit_of_answer(gold)
    if up is not None and ug is not None and up != ug and _is_number(p) and _is_number(g):
        return False  # "12 cm" is not "12 m": units stripped on both sides must agree
    if p == g:
        return True
    tp, tg = text_answer_word(pred), text_answer_word(gold)
    if tp is not None and tg is not None:
        return tp == tg  # text answers ("Monday", "\text{odd}"): case/space-insensitive
    r = _choices_equal(p, g)
    if r is not NOT_APPLICABLE:
        return r
    if len(p) == 1 and len(g) == 1 and p.isupper() and g.isupper():
        return False  # different choice letters / point names
    for x, ty in ((p, tg), (g, tp)):
        if len(x) == 1 and x in "ABCDE" and ty is not None and len(ty) >= 3:
            return False  # a choice letter is not a word answer ("B" vs "\text{Evelyn}")
    # a number against a choice letter or a (non-number) word
    for x, tx, y in ((p, tp, g), (g, tg, p)):
        if (tx is not None and tx not in _NUMBER_WORDS) or (len(x) == 1 and x.isupper()):
            if _is_number(y):
                return False
    r = _base_numerals_equal(p, g)
    if r is not NOT_APPLICABLE:
        return r
    for x, tx, y in ((p, tp, g), (g, tg, p)):
        if tx is not None and tx not in _NUMBER_WORDS and _element_count(y) >= 2:
            return False  # a word never equals a tuple / list / matrix
    p, g = _expand_plus_minus(p), _expand_plus_minus(g)
    p, g = _resolve_tuple_assignment(p, g), _resolve_tuple_assignment(g, p)
    if p == g:
        return True
    try:
        r = _named_results_equal(p, g, pred_percent, gold_percent)
    except (RecursionError, Undecided):
        return None
    if r is not NOT_APPLICABLE:
        return r
    cp, cg = complex_value(p), complex_value(g)
    if cp is not None and cg is not None and (cp[2] or cg[2]):
        r_re, r_im = values_equal(cp[0], cg[0]), values_equal(cp[1], cg[1])
        if r_re is True and r_im is True:
            return True
        if r_re is False or r_im is False:
            return False
        return None
    if "\\cup" in p or "\\cup" in g:
        up, ug = _split_union(p), _split_union(g)
        if up and ug and len(up) > 1 and len(ug) > 1:
            try:
                return _elements_equal(up, ug, False, pred_percent, gold_percent)
            except (RecursionError, Undecided):
                return None
        if (len(up or []) > 1 and _is_scalar_value(g)) or (len(ug or []) > 1 and _is_scalar_value(p)):
            return False  # a union of intervals is not a number or a scalar expression
        return None
    if ("=" in p and _is_number(g) and "=" not in g) or ("=" in g and _is_number(p) and "=" not in p):
        return False  # an equation / relation is not a number
    if "=" in p or "=" in g or "<" in p or "<" in g:
        return None
    try:
        r = _compare_answers(p, g, pred_percent, gold_percent)
        if r is None:
            # a number or scalar expression never equals a structure of two or more elements
            if (_is_scalar_value(p) and _element_count(g) >= 2) or (_is_scalar_value(g) and _element_count(p) >= 2):
                return False
        return r
    except (RecursionError, Undecided):
        return None


_LONG_DECIMAL_RE = re.compile(r"-?\d*\.\d{3,}")


def decimal_approximation(pred: str, gold: str) -> bool:
    """True when ``pred`` is a decimal with 3+ fractional digits and ``gold`` is an exact answer whose
    value this module cannot compute exactly (``\\log_2 3``, ``\\sin 1``): math-verify compares such
    pairs numerically and would accept the approximation, which the project's rules reject. Used to
    overrule math-verify's "equal" (a rational gold is decided exactly by :func:`fast_equal`)."""
    p, _ = normalize(pred)
    g, _ = normalize(gold)
    if not _LONG_DECIMAL_RE.fullmatch(p) or re.search(r"\d\.\d", g):
        return False
    v = constant_value(g)
    return not is_exact(v) if v is not None else True
