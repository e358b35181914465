"""Exact real numbers: rationals and sums of radicals and powers of pi, in a canonical form.

An :class:`AlgebraicNumber` is ``sum c * pi^k * prod(p^f)`` (``c`` rational, ``p`` prime,
``0 < f < 1`` rational). Those monomials are linearly independent over Q (Besicovitch/Mordell for
real radicals of primes; pi is transcendental), so two canonical forms are equal iff the numbers are
equal: equality of exact answers is structural equality, never a floating-point guess. Rationals stay
plain ``Fraction`` (the common case, kept fast). Whatever would leave this form (a nested radical,
an even root of a negative number, too many terms or digits) raises :class:`Undecided`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "MAX_INT_BITS",
    "PI",
    "AlgebraicNumber",
    "Undecided",
    "algebraic_add",
    "algebraic_inverse",
    "algebraic_mul",
    "algebraic_power",
    "checked_fraction",
    "exact_root",
    "terms_of",
]


class Undecided(Exception):
    """The expression cannot be decided here (unparsable, too large, not real, inexact where exactness is
    needed): the caller answers "undecided" and math-verify decides."""


MAX_INT_BITS = 4000  # bits of a numerator or denominator before giving up exactness
_MAX_ALGEBRAIC_TERMS = 64  # terms of an exact algebraic value before giving up exactness


def checked_fraction(v: Fraction) -> Fraction:
    """``v`` itself; :class:`Undecided` when its numerator or denominator has more than
    ``MAX_INT_BITS`` bits (exact arithmetic on such numbers is too slow to be worth it)."""
    if not isinstance(v, Fraction):
        raise Undecided
    if v.numerator.bit_length() > MAX_INT_BITS or v.denominator.bit_length() > MAX_INT_BITS:
        raise Undecided
    return v


def _negate(a):
    if isinstance(a, AlgebraicNumber):
        return AlgebraicNumber({k: -c for k, c in a.terms.items()})
    return -a


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


def terms_of(v) -> dict:
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
        checked_fraction(c)
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


def algebraic_add(a, b):
    t = dict(terms_of(a))
    for k, c in terms_of(b).items():
        t[k] = t.get(k, 0) + c
    return _from_terms(t)


def algebraic_mul(a, b):
    ta, tb = terms_of(a), terms_of(b)
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


def algebraic_inverse(v):
    """Exact ``1/v``: monomials directly, sums of square roots by conjugates; else undecided."""
    t = terms_of(v)
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
        num = algebraic_mul(num, conj_v)
        den = algebraic_mul(den, conj_v)
    else:
        raise Undecided
    if not isinstance(den, Fraction) or den == 0:
        raise Undecided
    return algebraic_mul(algebraic_mul(num, Fraction(1) / den), _from_terms({(-pi, ()): Fraction(1)}))


def _rational_power(q: Fraction, e: Fraction):
    """Exact real ``q**e`` for rational ``q`` and ``e`` (real roots of negatives for odd denominators)."""
    if e.denominator == 1:
        k = int(e)
        if q == 0 and k < 0:
            raise Undecided
        if abs(k) > 10000 or (q.numerator.bit_length() + q.denominator.bit_length()) * abs(k) > MAX_INT_BITS:
            raise Undecided
        return checked_fraction(q**k)
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
    r = exact_root(q, e.denominator)  # cheap check for perfect powers
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
    return _from_terms({(0, tuple(sorted(rad.items()))): checked_fraction(coef)})


def algebraic_power(a, e: Fraction):
    """Exact ``a**e`` for an exact ``a`` and rational ``e``."""
    if isinstance(a, Fraction):
        return _rational_power(a, e)
    t = a.terms
    if e.denominator == 1:
        k = int(e)
        if abs(k) > 64:
            raise Undecided
        if k < 0:
            a, k = algebraic_inverse(a), -k
        out, base = Fraction(1), a
        while k:
            if k & 1:
                out = algebraic_mul(out, base)
            k >>= 1
            if k:
                base = algebraic_mul(base, base)
        return out
    if len(t) != 1:
        raise Undecided
    ((pi, rad), c), = t.items()
    if (pi * e).denominator != 1:
        raise Undecided
    if c < 0 and e.denominator % 2 == 0:
        raise Undecided
    out = _from_terms({(int(pi * e), ()): Fraction(1)})
    out = algebraic_mul(out, _rational_power(c, e))
    for p, f in rad:
        out = algebraic_mul(out, _rational_power(Fraction(p), f * e))
    return out


def exact_root(x: Fraction, n: int):
    if x < 0:
        if n % 2 == 0:
            raise Undecided
        r = exact_root(-x, n)
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


PI = AlgebraicNumber({(1, ()): Fraction(1)})
