"""Fast in-process equivalence: string normalisation + exact numeric evaluation.

``fast_equal(pred, gold)`` returns True (certainly equal), False (certainly different) or None
(undecided: ask math-verify). It must never return True for answers that are not equal.

* Normalisation removes notation only: spacing commands, ``\\left``/``\\right``, ``\\dfrac`` /
  ``\\tfrac``, degree signs, ``\\%``, trailing ``\\text{unit}``, ``\\$``, thousands separators,
  ``x =`` prefixes, trailing periods.
* A small recursive-descent evaluator handles integers, decimals, scientific notation,
  ``\\frac``, ``\\sqrt``, ``^``, ``\\pi``, ``+ - * /`` and implicit products. Rational
  arithmetic is exact (``fractions.Fraction``); anything with roots or pi is a float compared at
  a relative 1e-9 (values computed to ~1e-16; different closed forms of math answers are never
  that close). Expressions in single-letter variables are compared by exact evaluation at fixed
  random rational points (polynomial identity testing) -- only when they are rational functions.
* Tuples, intervals, sets, comma lists and matrices are compared element by element (sets and
  bare comma lists unordered).
* Percent: "50\\%" equals "50" and "0.5" (a percent sign on one side scales by 100).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u03c0": "\\pi ",
    "\u221a": "\\sqrt", "\u00b0": "^\\circ", "\u221e": "\\infty ", "\u2264": "\\le ",
    "\u2265": "\\ge ", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}
_REMOVE = [
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
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|rm|bf)\s*\{")
_TRAIL_TEXT_UNIT_RE = re.compile(
    r"^(?P<num>.*?(?:[\d}]|\\pi))\s*\\(?:text|mbox|mathrm)\s*\{\s*(?P<u>[^{}]*)\}\s*(?:\^\s*\{?\d\}?)?\s*$"
)
_AND_RE = re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s*(?:and|or)\s*\}\s*|(?<=\d)\s+(?:and|or)\s+(?=[-\d\\])")
_OVERLINE_RE = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating(m: re.Match) -> str:
    """0.4\\overline{6} -> \\frac{7}{15} (exact)."""
    sign, ip, fp, rep = m.group(1), m.group(2) or "0", m.group(3), m.group(4)
    a = Fraction(int(ip + fp + rep) - int(ip + fp or "0"), (10 ** len(rep) - 1) * 10 ** len(fp))
    return f"{sign}\\frac{{{a.numerator}}}{{{a.denominator}}}"
_TRAIL_UNIT_RE = re.compile(r"^(?P<num>.*?(?:[\d}]|\\pi))\s+(?:" + _UNIT_WORDS + r")\s*\.?$", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ASSIGN_RE = re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[\w]+\}?)?\s*(?:=|\\in)\s*(?=\S)")
_FRAC_SHORT_RE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_SHORT2_RE = re.compile(r"\\frac\s*(\d)\s*\{")
_FRAC_SHORT3_RE = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT_RE = re.compile(r"\\sqrt\s*(\d|[a-zA-Z](?![a-zA-Z]))")
_MC_RE = re.compile(r"^\(?([A-E])\)?$")


def _unwrap_text(s: str) -> str:
    """``\\text{abc}`` -> ``abc`` (balanced braces)."""
    out = []
    i = 0
    while True:
        m = _TEXT_CMD_RE.search(s, i)
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
        if re.search(r"[A-Za-z]{2,}", inner):
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
    for k, v in _UNICODE.items():
        if k in s:
            s = s.replace(k, v)
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    if s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2]
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    for r in _REMOVE:
        if r in s:
            s = s.replace(r, "")
    s = re.sub(r"(?<!\\)\\ ", " ", s).replace("~", " ")
    s = s.replace("\\geq", "\\ge").replace("\\leq", "\\le").replace("\\neq", "\\ne")
    s = _AND_RE.sub(",", s)
    s = _OVERLINE_RE.sub(_repeating, s)
    s = s.replace("{,}", ",")
    # degree signs
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree", "", s)
    # percent
    pct = False
    if re.search(r"\\?%|\\percent", s):
        pct = True
        s = re.sub(r"\\?%|\\percent", "", s)
    s = s.replace("\\$", "")
    s = s.strip()
    # trailing units: "10 \text{ cm}", "10 cm", "5 \text{ square units}"
    m = _TRAIL_TEXT_UNIT_RE.match(s)
    if m and re.fullmatch(r"[a-zA-Z\s.^\d/]*", m.group("u")) and re.search(r"[a-zA-Z]", m.group("u")):
        s = m.group("num").strip()
    s = _unwrap_text(s)
    m = _TRAIL_UNIT_RE.match(s)
    if m:
        s = m.group("num").strip()
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"[.\s]+$", "", s) if not re.search(r"\d\.$", s) else s[:-1]
    # "x = 5", "k \in [1,2]" (only a single assignment)
    m = _ASSIGN_RE.match(s)
    if m and not re.search(r"=|<|>|\\le|\\ge|\\neq", s[m.end() :]):
        s = s[m.end() :]
    # shorthand \frac12, \frac1{x}, \sqrt2
    s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_SHORT2_RE.sub(r"\\frac{\1}{", s)
    s = _FRAC_SHORT3_RE.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", s)
    s = s.replace("\\emptyset", "\\varnothing")
    # spaces: keep a separator only where it separates a command from a letter
    s = re.sub(r"(\\[a-zA-Z]+) (?=[a-zA-Z])", r"\1{}", s)
    s = s.replace(" ", "")
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    s = s.replace(",\\!", ",")
    # multiple choice "(C)" -> "C"
    mc = _MC_RE.match(s)
    if mc:
        s = mc.group(1)
    return s, pct


# --------------------------------------------------------------------------------------------
# exact / numeric evaluation
# --------------------------------------------------------------------------------------------


class _Undecided(Exception):
    pass


_TOKEN_RE = re.compile(
    r"\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?"
    r"|\\[a-zA-Z]+|[a-zA-Z]|\*\*|[-+*/^(){}\[\]]"
)
_ALLOWED_CMDS = {"\\frac", "\\sqrt", "\\pi", "\\sin", "\\cos", "\\tan", "\\ln", "\\log", "\\exp"}
_MAX_INT_BITS = 4000

# fixed "random" evaluation points for variables: distinct primes ratios, positive (so even
# roots and logs of variables stay real for typical answers)
_VARS = "abcdfghjklmnopqrstuvwxyzABCDFGHJKLMNOPQRSTUVWXYZ"  # not e, i, E, I (constants)
_VAR_POINTS = [
    {c: Fraction(p, q) for c, p, q in zip(_VARS, range(1000003, 10**9, 7919), range(1009, 10**6, 97))},
    {c: Fraction(p, q) for c, p, q in zip(_VARS, range(3000017, 10**9, 6151), range(2003, 10**6, 89))},
]


def _tokenize(s: str) -> list[str]:
    s = s.replace("{}", "*")  # "\\pi{}r" (command/letter separator) is a product
    pos = 0
    toks = []
    for m in _TOKEN_RE.finditer(s):
        if m.start() != pos:
            raise _Undecided
        toks.append(m.group(0))
        pos = m.end()
    if pos != len(s):
        raise _Undecided
    return toks


class _Eval:
    """Recursive-descent evaluator. Values: Fraction (exact) or float (inexact)."""

    __slots__ = ("t", "i", "vars", "used")

    def __init__(self, toks, vars_):
        self.t = toks
        self.i = 0
        self.vars = vars_
        self.used = set()

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, tok=None):
        x = self.peek()
        if x is None or (tok is not None and x != tok):
            raise _Undecided
        self.i += 1
        return x

    def run(self):
        v = self.expr()
        if self.i != len(self.t):
            raise _Undecided
        return v

    def expr(self):
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            w = self.term()
            v = _add(v, w) if op == "+" else _add(v, _neg(w))
        return v

    def term(self):
        v = self.unary()
        while True:
            p = self.peek()
            if p in ("*", "/"):
                self.take()
                w = self.unary()
                v = _mul(v, w) if p == "*" else _div(v, w)
            elif p is not None and (p in ("(", "{") or p in _ALLOWED_CMDS or p.isalpha() or p[0].isdigit() or p[0] == "."):
                # implicit product: 2\sqrt{3}, 3\pi, 2x, (1)(2). A number followed by a number
                # or by \frac of numbers (mixed number "2\frac12"?) is ambiguous -> undecided.
                if p[0].isdigit() or p[0] == "." or p == "\\frac":
                    raise _Undecided
                w = self.power()
                v = _mul(v, w)
            else:
                return v

    def unary(self):
        p = self.peek()
        if p == "-":
            self.take()
            return _neg(self.unary())
        if p == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            if self.peek() == "{":
                self.take()
                e = self.expr()
                self.take("}")
            elif self.peek() == "-":
                self.take()
                e = _neg(self.atom_simple())
            else:
                e = self.atom_simple()
            return _pow(base, e)
        return base

    def atom_simple(self):
        p = self.take()
        if p[0].isdigit():
            if len(p) > 1 and "." not in p and "e" not in p.lower():
                # "x^23" in LaTeX is x^2 * 3; ambiguous
                raise _Undecided
            return _num(p)
        if p.isalpha() and len(p) == 1:
            return self.var(p)
        if p == "\\pi":
            return math.pi
        raise _Undecided

    def group(self):
        if self.peek() == "{":
            self.take()
            v = self.expr()
            self.take("}")
            return v
        return self.atom_simple()

    def var(self, c):
        if c in ("e", "i", "E", "I") or c not in self.vars:
            raise _Undecided
        self.used.add(c)
        return self.vars[c]

    def atom(self):
        p = self.take()
        if p[0].isdigit() or p[0] == ".":
            return _num(p)
        if p == "(":
            v = self.expr()
            self.take(")")
            return v
        if p == "{":
            v = self.expr()
            self.take("}")
            return v
        if p == "\\frac":
            a = self.group()
            b = self.group()
            return _div(a, b)
        if p == "\\sqrt":
            if self.peek() == "[":
                self.take()
                n = self.expr()
                self.take("]")
                x = self.group()
                return _root(x, n)
            return _root(self.group(), Fraction(2))
        if p == "\\pi":
            return math.pi
        if p in ("\\sin", "\\cos", "\\tan", "\\ln", "\\log", "\\exp"):
            if self.peek() in ("(", "{"):
                x = self.atom()
            else:
                raise _Undecided
            f = {"\\sin": math.sin, "\\cos": math.cos, "\\tan": math.tan, "\\ln": math.log,
                 "\\log": math.log10, "\\exp": math.exp}[p]
            try:
                return f(float(x))
            except (ValueError, OverflowError):
                raise _Undecided from None
        if p.isalpha() and len(p) == 1:
            return self.var(p)
        raise _Undecided


def _num(tok: str):
    try:
        if "e" in tok or "E" in tok:
            mant, _, ex = tok.lower().partition("e")
            ex_i = int(ex)
            if abs(ex_i) > 400:
                raise _Undecided
            return Fraction(mant) * Fraction(10) ** ex_i
        return Fraction(tok)
    except (ValueError, ZeroDivisionError):
        raise _Undecided from None


def _chk(v):
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > _MAX_INT_BITS or v.denominator.bit_length() > _MAX_INT_BITS:
            raise _Undecided
        return v
    if isinstance(v, complex) or math.isnan(v) or math.isinf(v):
        raise _Undecided
    return v


def _neg(a):
    return -a


def _add(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _chk(a + b)
    return _chk(float(a) + float(b))


def _mul(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _chk(a * b)
    return _chk(float(a) * float(b))


def _div(a, b):
    if b == 0:
        raise _Undecided
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return _chk(a / b)
    return _chk(float(a) / float(b))


def _exact_root(x: Fraction, n: int):
    if x < 0:
        if n % 2 == 0:
            raise _Undecided
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
    if isinstance(n, Fraction) and n.denominator == 1 and n > 0:
        k = int(n)
        if isinstance(x, Fraction):
            r = _exact_root(x, k)
            if r is not None:
                return r
        x = float(x)
        if x < 0:
            if k % 2 == 0:
                raise _Undecided
            return _chk(-((-x) ** (1.0 / k)))
        return _chk(x ** (1.0 / k))
    raise _Undecided


def _pow(a, e):
    if isinstance(e, Fraction) and e.denominator == 1:
        k = int(e)
        if isinstance(a, Fraction):
            if abs(k) > 10000 or (a.numerator.bit_length() + a.denominator.bit_length()) * abs(k) > _MAX_INT_BITS:
                raise _Undecided
            if a == 0 and k < 0:
                raise _Undecided
            return _chk(a**k)
        try:
            return _chk(float(a) ** k)
        except (OverflowError, ZeroDivisionError):
            raise _Undecided from None
    if isinstance(e, Fraction) and isinstance(a, Fraction) and a > 0 and e.denominator <= 12:
        r = _exact_root(a, e.denominator)
        if r is not None:
            return _pow(r, Fraction(e.numerator))
    a, e = float(a), float(e)
    if a < 0 or (a == 0 and e <= 0):
        raise _Undecided
    try:
        return _chk(a**e)
    except OverflowError:
        raise _Undecided from None


def _evaluate(s: str, point: int):
    ev = _Eval(_tokenize(s), _VAR_POINTS[point])
    return ev.run(), frozenset(ev.used)


_REL_TOL = 1e-9


def _values_equal(a, b) -> bool | None:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    fa, fb = float(a), float(b)
    scale = max(abs(fa), abs(fb))
    if scale > 1e12:
        return None  # floats too coarse to decide
    diff = abs(fa - fb)
    if diff <= _REL_TOL * max(1.0, scale):
        return True
    return False


_MIXED_RE = re.compile(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")


@lru_cache(maxsize=65536)
def _scalar_values(s: str):
    """Values of ``s`` at the evaluation points, with the variables used; None if not evaluable."""
    if not s or len(s) > 300:
        return None
    m = _MIXED_RE.fullmatch(s)
    if m:  # "137\frac{1}{2}" is the mixed number 137 1/2
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if den == 0:
            return None
        v = whole + Fraction(num, den)
        return ((-v if m.group(1) else v),), frozenset()
    try:
        v0, used = _evaluate(s, 0)
        if not used:
            return (v0,), used
        v1, _ = _evaluate(s, 1)
        return (v0, v1), used
    except (_Undecided, RecursionError, ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None


def _scalar_equal(p: str, g: str, ppct: bool, gpct: bool) -> bool | None:
    if p == g and ppct == gpct:
        return True
    vp = _scalar_values(p)
    vg = _scalar_values(g)
    if vp is None or vg is None:
        if p == g:
            return True  # percent on one side only: "50%" vs "50"
        if p.isalpha() and g.isalpha() and len(p) >= 3 and p.lower() == g.lower():
            return True  # text answers: "Monday" vs "monday"
        return None
    (pv, pused), (gv, gused) = vp, vg
    if pused != gused:
        # a constant never equals a non-constant expression (different values at two points)
        for used, vals, other_used in ((pused, pv, gused), (gused, gv, pused)):
            if used and not other_used and _values_equal(vals[0], vals[1]) is False:
                return False
        return None  # different variables: let math-verify decide
    res = [_values_equal(a, b) for a, b in zip(pv, gv)]
    if all(r is True for r in res):
        return True
    if ppct != gpct and not pused:
        # "50%" == "0.5"
        scaled = [(a / 100 if ppct else a) for a in pv]
        gscaled = [(b / 100 if gpct else b) for b in gv]
        r2 = [_values_equal(a, b) for a, b in zip(scaled, gscaled)]
        if all(r is True for r in r2):
            return True
        if (pv[0] == gv[0]) if isinstance(pv[0], Fraction) and isinstance(gv[0], Fraction) else res[0]:
            return True
        if any(r is None for r in r2):
            return None
    if any(r is None for r in res):
        return None
    if pused:
        # rational functions: exact disagreement at a point proves inequality
        exact = all(isinstance(x, Fraction) for x in pv + gv)
        return False if exact else None
    return False


# --------------------------------------------------------------------------------------------
# structures
# --------------------------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}


def _split_top(s: str, seps=(",",)) -> list[str] | None:
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


def _outer(s: str):
    """(kind, inner) of a bracketed structure, if the brackets enclose the whole string."""
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        if _split_top(inner) is not None:
            return "set", inner
    if s.startswith("\\begin{") and s.endswith("}"):
        m = re.fullmatch(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}", s, re.S)
        if m:
            return "matrix", m.group(2)
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
        return "br" + s[0] + s[-1], s[1:-1]
    return None


def _is_scalar(s: str) -> bool:
    return _outer(s) is None and _split_top(s) == [s]


def _elements_equal(ps, gs, ordered, ppct, gpct) -> bool | None:
    if len(ps) != len(gs):
        return False
    if ordered:
        undecided = False
        for a, b in zip(ps, gs):
            r = _compare(a, b, ppct, gpct)
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
            r = _compare(a, b, ppct, gpct)
            if r is True:
                hit = k
                break
            if r is None:
                undecided = True
        if hit is None:
            return None if undecided else False
        remaining.pop(hit)
    return True


def _compare(p: str, g: str, ppct: bool, gpct: bool) -> bool | None:
    if p == g:
        return True
    op, og = _outer(p), _outer(g)
    if op is None and og is None:
        sp, sg = _split_top(p), _split_top(g)
        if sp is None or sg is None:
            return None
        if len(sp) == 1 and len(sg) == 1:
            return _scalar_equal(p, g, ppct, gpct)
        if len(sp) > 1 and len(sg) > 1:
            return _elements_equal(sp, sg, False, ppct, gpct)
        return None
    if op is None or og is None:
        kind, inner = op or og
        if kind == "br()" and _split_top(inner) == [inner]:
            # "(-2)" vs "-2": parentheses around a single value
            return _compare(inner, g, ppct, gpct) if op else _compare(p, inner, ppct, gpct)
        # "\{1,2\}" vs "1,2": a set and a bare list are both unordered collections
        bare = p if op is None else g
        if kind == "set":
            sb = _split_top(bare)
            si = _split_top(inner)
            if sb is None or si is None:
                return None
            ps, gs = (sb, si) if op is None else (si, sb)
            return _elements_equal(ps, gs, False, ppct, gpct)
        return None
    if op[0] != og[0]:
        if op[0].startswith("br") and og[0].startswith("br"):
            sp, sg = _split_top(op[1]), _split_top(og[1])
            if sp and sg and len(sp) == 2 and len(sg) == 2:
                return False  # "(1,2)" vs "(1,2]": different intervals
        return None
    kind = op[0]
    if kind == "matrix":
        rp = [r for r in re.split(r"\\\\", op[1]) if r.strip()]
        rg = [r for r in re.split(r"\\\\", og[1]) if r.strip()]
        if len(rp) != len(rg):
            return None
        cp = [r.split("&") for r in rp]
        cg = [r.split("&") for r in rg]
        if any(len(a) != len(b) for a, b in zip(cp, cg)):
            return None
        return _elements_equal(sum(cp, []), sum(cg, []), True, ppct, gpct)
    sp, sg = _split_top(op[1]), _split_top(og[1])
    if sp is None or sg is None:
        return None
    if kind == "set":
        return _elements_equal(sp, sg, False, ppct, gpct)
    if len(sp) == 1 and len(sg) == 1:
        return _compare(sp[0], sg[0], ppct, gpct)  # "(5)" vs "(3+2)"
    return _elements_equal(sp, sg, True, ppct, gpct)


_TEXT_WORD_RE = re.compile(
    r"\s*(?:\\(?:text|textbf|mbox|mathrm)\s*\{\s*([A-Za-z][A-Za-z ]*[A-Za-z])\s*\}|([A-Za-z]{3,}))\s*\.?\s*"
)
_PM_RE = re.compile(r"^(.*?)\\(?:pm|mp)(.*)$")
_ELEM_ASSIGN_RE = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?=(?=[^=]+$)")


_NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "twenty", "hundred", "thousand", "million", "half", "third", "quarter",
    "none", "infinity", "infinite", "undefined",
}
_BASE_RE = re.compile(r"\(?([0-9A-Za-z]+)\)?_\{?(\d+)\}?")


def _is_number(s: str) -> bool:
    v = _scalar_values(s)
    return v is not None and not v[1]


def _n_elements(s: str) -> int:
    """Number of elements of a structure (tuple, set, matrix, bare list); 1 for a scalar."""
    o = _outer(s)
    if o is None:
        parts = _split_top(s)
        return len(parts) if parts else 1
    kind, inner = o
    if kind == "matrix":
        return len(re.split(r"\\\\|&", inner))
    parts = _split_top(inner)
    return len(parts) if parts else 1


def _split_cup(s: str) -> list[str] | None:
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


def _complex_value(s: str):
    """(re, im, has_i) for ``a+bi`` / ``bi`` / real numbers; None if not of that shape."""
    if not s.endswith("i") or s.endswith("\\pi"):
        v = _scalar_values(s)
        if v is not None and not v[1]:
            return v[0][0], Fraction(0), False
        return None
    m = _COMPLEX_RE.match(s)
    if not m:
        return None
    re_s, sign, im_s = m.group("re"), m.group("sign"), m.group("im")
    if "i" in re_s.replace("\\pi", "") or "i" in im_s.replace("\\pi", ""):
        return None
    im_v = _scalar_values(im_s) if im_s else ((Fraction(1),), frozenset())
    re_v = _scalar_values(re_s) if re_s else ((Fraction(0),), frozenset())
    if im_v is None or re_v is None or im_v[1] or re_v[1]:
        return None
    im = im_v[0][0]
    return re_v[0][0], (-im if sign == "-" else im), True


def _text_word(raw: str) -> str | None:
    """Lower-cased word if ``raw`` is a plain text answer (``\text{odd}``, ``Monday``)."""
    m = _TEXT_WORD_RE.fullmatch(raw)
    if not m:
        return None
    return (m.group(1) or m.group(2)).lower().replace(" ", "")


def _expand_pm(s: str) -> str:
    """``a\pm b`` (one sign, no list) -> ``a+b,a-b``."""
    if s.count("\\pm") + s.count("\\mp") != 1 or "," in s:
        return s
    m = _PM_RE.match(s)
    a, b = m.group(1), m.group(2)
    if not b:
        return s
    return f"{a}+{b},{a}-{b}"


def _strip_elem_assign(s: str) -> str:
    """``x=2,x=3`` -> ``2,3``."""
    parts = _split_top(s)
    if not parts or len(parts) < 2:
        return s
    return ",".join(_ELEM_ASSIGN_RE.sub("", x) for x in parts)


def fast_equal(pred: str, gold: str) -> bool | None:
    """True / False when certain, None when math-verify must decide."""
    p, ppct = normalize(pred)
    g, gpct = normalize(gold)
    if not p or not g:
        return None
    if p == g:
        return True
    tp, tg = _text_word(pred), _text_word(gold)
    if tp is not None and tg is not None:
        return tp == tg  # text answers ("Monday", "\text{odd}"): case/space-insensitive
    if len(p) == 1 and len(g) == 1 and p.isupper() and g.isupper():
        return False  # different choice letters / point names
    # a number against a choice letter or a (non-number) word
    for x, tx, y in ((p, tp, g), (g, tg, p)):
        if (tx is not None and tx not in _NUMBER_WORDS) or (len(x) == 1 and x.isupper()):
            if _is_number(y):
                return False
    bp, bg = _BASE_RE.fullmatch(p), _BASE_RE.fullmatch(g)
    if bp and bg and bp.group(2) == bg.group(2):
        # "204_5" vs "0204_{5}": same base, compare digits
        return bp.group(1).lstrip("0").upper() == bg.group(1).lstrip("0").upper()
    for x, tx, y in ((p, tp, g), (g, tg, p)):
        if tx is not None and tx not in _NUMBER_WORDS and _n_elements(y) >= 2:
            return False  # a word never equals a tuple / list / matrix
    if bp or bg:
        bx, y = (bp, g) if bp else (bg, p)
        if not (bp and bg) and _is_number(y):
            try:
                val = int(bx.group(1), int(bx.group(2)))
            except ValueError:
                return None
            if Fraction(val) != _scalar_values(y)[0][0]:
                return False  # "52_8" (= 42) vs "1251"
            return None  # same value, other base: math-verify decides
    p, g = _strip_elem_assign(_expand_pm(p)), _strip_elem_assign(_expand_pm(g))
    if p == g:
        return True
    cp, cg = _complex_value(p), _complex_value(g)
    if cp is not None and cg is not None and (cp[2] or cg[2]):
        r_re, r_im = _values_equal(cp[0], cg[0]), _values_equal(cp[1], cg[1])
        if r_re is True and r_im is True:
            return True
        if r_re is False or r_im is False:
            return False
        return None
    if "\\cup" in p or "\\cup" in g:
        up, ug = _split_cup(p), _split_cup(g)
        if up and ug and len(up) > 1 and len(ug) > 1:
            try:
                return _elements_equal(up, ug, False, ppct, gpct)
            except (RecursionError, _Undecided):
                return None
        if (len(up or []) > 1 and _is_number(g)) or (len(ug or []) > 1 and _is_number(p)):
            return False  # a union of intervals is not a number
        return None
    if ("=" in p and _is_number(g) and "=" not in g) or ("=" in g and _is_number(p) and "=" not in p):
        return False  # an equation / relation is not a number
    if "=" in p or "=" in g or "\\cup" in p or "\\cup" in g or "<" in p or "<" in g:
        return None
    try:
        r = _compare(p, g, ppct, gpct)
        if r is None:
            # a number can never equal a structure of two or more elements
            if (_is_number(p) and _n_elements(g) >= 2) or (_is_number(g) and _n_elements(p) >= 2):
                return False
        return r
    except (RecursionError, _Undecided):
        return None
