"""Notation clean-up: an answer string -> a canonical string (LaTeX, unicode, text, units).

Normalisation removes notation only, never mathematics: spacing commands, ``\\left``/``\\right``,
``\\dfrac`` / ``\\tfrac``, degree signs, ``\\%`` (reported separately), units, ``\\$``, thousands
separators (``1,234`` without spaces or ``1,\\!234``), ``x =`` prefixes, trailing periods, unicode
fractions and symbols. The comparison (:mod:`.compare`) works on these canonical strings; the raw
answer is still read here for what normalisation drops on purpose (its unit, a plain text word).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

__all__ = ["normalize", "text_answer_word", "unit_of_answer"]

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


_TEXT_ANSWER_RE = re.compile(
    r"\s*(?:\\(?:text|textbf|mbox|mathrm)\s*\{\s*([A-Za-z][A-Za-z ]*[A-Za-z])\s*\}|([A-Za-z]{3,}))\s*\.?\s*"
)


def text_answer_word(raw: str) -> str | None:
    """Lower-cased word if ``raw`` is a plain text answer (``\\text{odd}``, ``Monday``)."""
    m = _TEXT_ANSWER_RE.fullmatch(raw)
    if not m:
        return None
    return (m.group(1) or m.group(2)).lower().replace(" ", "")


_UNIT_IN_TEXT_RE = re.compile(r"\\(?:text|mbox|mathrm)\s*\{\s*(?:[\d.]+\s+)?([a-zA-Z][a-zA-Z ]*?)\s*\}\s*(?:\^\s*\{?\d\}?)?\s*\.?\s*$")
_UNIT_AFTER_NUMBER_RE = re.compile(r"(?<=[\d}])\s+(" + _UNIT_WORDS + r")\s*\.?$", re.IGNORECASE)


def unit_of_answer(ans: str) -> str | None:
    """The unit an answer ends with (``12 \\text{ cm}``, ``\\text{12 cm}``, ``5 meters``), singular, lower case."""
    m = _UNIT_IN_TEXT_RE.search(ans) or _UNIT_AFTER_NUMBER_RE.search(ans)
    if not m:
        return None
    u = re.sub(r"\s+", " ", re.sub(r"\^.*$", "", m.group(1)).strip().lower())  # cm^2 -> cm (lenient)
    return u[:-1] if u.endswith("s") and len(u) > 3 else u
