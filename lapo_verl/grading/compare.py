"""Structural comparison of two normalised answers: the fast path's verdict equal / not equal / undecided.

``fast_equal(pred, gold)`` returns True (certainly equal), False (certainly different) or None
(undecided: ask math-verify). It must never return True for answers that are not equal: "equal"
comes only from identical normalised strings, exact arithmetic, or an identity proven by exact
evaluation (:mod:`.evaluate`; see docs/grading.md, "Equivalence", for every rule).

* Tuples and intervals compare in order, sets and bare comma lists unordered, named results
  (``x=3, y=2``) by name, base-``b`` numerals by value, matrices element by element, complex numbers
  by real and imaginary part, unions of intervals as unordered parts.
* Percent: "50\\%" equals "50" and "0.5" (a percent sign on one side scales by 100).
* Special rules (multiple-choice letters, text words, units that disagree) run before the structure.
"""

from __future__ import annotations

import re
from enum import Enum
from fractions import Fraction
from typing import NamedTuple

from .evaluate import (
    EVALUATION_ERRORS,
    Undecided,
    complex_value,
    constant_value,
    divide,
    functions_equal,
    is_exact,
    is_undefined,
    scalar_values,
    values_equal,
    varies,
)
from .notation import normalize, text_answer_word, unit_of_answer

__all__ = ["fast_equal", "decimal_approximation", "Structure", "NOT_APPLICABLE"]

def _percent_to_fraction(v):
    """``50`` read as "50%": ``1/2``."""
    return divide(v, Fraction(100))


_INFINITY = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1}


def _scalars_equal(p: str, g: str, pred_percent: bool, gold_percent: bool) -> bool | None:
    """Two single values (numbers, infinities, expressions in variables; percent flags from :func:`normalize`)."""
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


def _elements_equal(ps: list[str], gs: list[str], pred_percent: bool, gold_percent: bool, *,
                    ordered: bool) -> bool | None:
    """Element lists of two structures: in order (tuples, intervals, matrices) or as multisets (sets, lists)."""
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
    """Two normalised answers of any shape: scalars, bare lists, tuples, intervals, sets, matrices."""
    if p == g:
        return True
    p_enclosed, g_enclosed = enclosing_structure(p), enclosing_structure(g)
    if p_enclosed is None and g_enclosed is None:
        sp, sg = split_top_level(p), split_top_level(g)
        if sp is None or sg is None:
            return None
        if len(sp) == 1 and len(sg) == 1:
            return _scalars_equal(p, g, pred_percent, gold_percent)
        if len(sp) > 1 and len(sg) > 1:
            return _elements_equal(sp, sg, pred_percent, gold_percent, ordered=False)
        return None
    if p_enclosed is None or g_enclosed is None:
        kind, inner = p_enclosed or g_enclosed
        if kind is Structure.PARENTHESES and split_top_level(inner) == [inner]:
            # "(-2)" vs "-2": parentheses around a single value
            if p_enclosed:
                return _compare_answers(inner, g, pred_percent, gold_percent)
            return _compare_answers(p, inner, pred_percent, gold_percent)
        # "\{1,2\}" vs "1,2": a set and a bare list are both unordered collections
        bare = p if p_enclosed is None else g
        if kind is Structure.SET:
            sb = split_top_level(bare)
            si = split_top_level(inner)
            if sb is None or si is None:
                return None
            ps, gs = (sb, si) if p_enclosed is None else (si, sb)
            return _elements_equal(ps, gs, pred_percent, gold_percent, ordered=False)
        return None
    if p_enclosed.kind is not g_enclosed.kind:
        sp, sg = split_top_level(p_enclosed.inner), split_top_level(g_enclosed.inner)
        if p_enclosed.kind.bracketed and g_enclosed.kind.bracketed:
            if sp and sg and len(sp) == 2 and len(sg) == 2:
                return False  # "(1,2)" vs "(1,2]": different intervals
        elif (
            (p_enclosed.kind is Structure.SET and g_enclosed.kind.bracketed)
            or (g_enclosed.kind is Structure.SET and p_enclosed.kind.bracketed)
        ) and (sp and sg and len(sp) >= 2 and len(sg) >= 2):
            return False  # "(1,2)" vs "\{1,2\}": a tuple or an interval is not a set
        return None
    kind = p_enclosed.kind
    if kind is Structure.MATRIX:
        rp = [r for r in re.split(r"\\\\", p_enclosed.inner) if r.strip()]
        rg = [r for r in re.split(r"\\\\", g_enclosed.inner) if r.strip()]
        if len(rp) != len(rg):
            return None
        cp = [r.split("&") for r in rp]
        cg = [r.split("&") for r in rg]
        if any(len(a) != len(b) for a, b in zip(cp, cg)):
            return None
        return _elements_equal(sum(cp, []), sum(cg, []), pred_percent, gold_percent, ordered=True)
    sp, sg = split_top_level(p_enclosed.inner), split_top_level(g_enclosed.inner)
    if sp is None or sg is None:
        return None
    if kind is Structure.SET:
        return _elements_equal(sp, sg, pred_percent, gold_percent, ordered=False)
    if len(sp) == 1 and len(sg) == 1:
        return _compare_answers(sp[0], sg[0], pred_percent, gold_percent)  # "(5)" vs "(3+2)"
    return _elements_equal(sp, sg, pred_percent, gold_percent, ordered=True)


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


def _expand_plus_minus(s: str) -> str:
    """``a\\pm b`` (one sign, no list) -> ``a+b,a-b``."""
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
            same_unknown = np_[0][0] == ng[0][0]
            return _elements_equal(sp, sg, pred_percent, gold_percent, ordered=False) if same_unknown else None
        dp, dg = distinct(np_), distinct(ng)
        if dp is None or dg is None or set(dp) != set(dg):
            return None
        return _elements_equal([dp[k] for k in dp], [dg[k] for k in dp], pred_percent, gold_percent,
                               ordered=True)
    named, other = (np_, g) if np_ is not None else (ng, p)
    elems = _unnamed_elements(other)
    if elems is None:
        return None
    sols = solutions(named)
    if sols is not None:
        if enclosing_structure(other) is not None:
            return None  # "x=1,x=2" against a tuple "(1,2)": not the same kind of answer
        ps, gs = (sols, elems) if np_ is not None else (elems, sols)
        return _elements_equal(ps, gs, pred_percent, gold_percent, ordered=False)
    d = distinct(named)
    if d is None:
        return None
    vals = [d[k] for k in sorted(d, key=_name_order)]
    ps, gs = (vals, elems) if np_ is not None else (elems, vals)
    return _elements_equal(ps, gs, pred_percent, gold_percent, ordered=True)


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
                return _elements_equal(up, ug, pred_percent, gold_percent, ordered=False)
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
