"""Argument checks shared by every constructor, function and command of tfvae.

Each check takes the argument's name and value, returns the value in its canonical Python type,
and raises one ``ValueError`` naming the argument, the bad value and what was expected.

Example:
  >>> positive_int("latent_dim", 10)
  10
  >>> number("beta", -1.0, minimum=0.0)
  Traceback (most recent call last):
  ...
  ValueError: beta must be a finite number >= 0.0, got -1.0
"""

import math
import numbers


def positive_int(name, value):
    """An integer ≥ 1 (bools are not integers here)."""
    return integer(name, value, minimum=1)


def integer(name, value, minimum=None):
    """An integer, optionally ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else \
            ("a positive integer" if minimum == 1 else f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def number(name, value, minimum=None, maximum=None, exclusive_minimum=False, exclusive_maximum=False):
    """A finite real number within the given bounds."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    if not ok:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
        if maximum is not None:
            bounds.append(f"{'<' if exclusive_maximum else '<='} {maximum}")
        raise ValueError(f"{name} must be a finite number{' ' + ' and '.join(bounds) if bounds else ''}, "
                         f"got {value!r}")
    return float(value)


def unit_interval(name, value):
    """A number in [0, 1]."""
    return number(name, value, minimum=0.0, maximum=1.0)


def flag(name, value):
    """True or False (not 0/1 or strings, which usually mean a mistake)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name, value, choices):
    """One of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def optional(check):
    """A check that also accepts None."""
    def check_or_none(name, value, **kwargs):
        return None if value is None else check(name, value, **kwargs)
    return check_or_none


__all__ = ["choice", "flag", "integer", "number", "optional", "positive_int", "unit_interval"]
