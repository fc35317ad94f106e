"""Argument checks shared by the network builders."""

import numbers


def check_positive_ints(what, values):
    values = tuple(values)
    for v in values:
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{what} must be positive integers, got {values!r}")
    return tuple(int(v) for v in values)


def check_shape(what, shape):
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{what} must be a shape like (28, 28, 1), got {shape!r}") from None
    if len(shape) != 3:
        raise ValueError(f"{what} must be an image shape (height, width, channels), got {shape!r}")
    return check_positive_ints(what, shape)
