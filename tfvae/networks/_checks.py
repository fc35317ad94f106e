"""Argument checks shared by the network builders."""

import numbers


def check_positive_ints(what, values):
    values = tuple(values)
    for v in values:
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{what} must be positive integers, got {values!r}")
    return tuple(int(v) for v in values)


def check_shape(what, shape, ranks=(1, 3)):
    """A feature shape: ``(D,)`` for vectors or ``(H, W, C)`` for images (``ranks`` allowed)."""
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{what} must be a shape like (28, 28, 1) or (30,), got {shape!r}") from None
    if len(shape) not in ranks:
        kinds = {1: "a vector shape (features,)", 3: "an image shape (height, width, channels)"}
        raise ValueError(f"{what} must be {' or '.join(kinds.get(r, f'rank {r}') for r in ranks)}, "
                         f"got {shape!r}")
    return check_positive_ints(what, shape)
