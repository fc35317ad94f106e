"""``shapes2d``: binary images of 2D shapes drawn from dSprites' factor grid, rendered analytically.

The original dSprites file (Matthey et al. 2017) cannot be brought onto every machine, so this
module draws the same kind of images from the same factors (:mod:`tfvae.data.ground_truth`):
a white square, ellipse or heart on black, at one of 6 scales, 40 orientations and 32 x 32
positions, 737,280 images in all at 64 x 64, or any other resolution or coarser grid.

Geometry, in units of the image side (so every resolution shows the same picture):

* a shape at scale ``s`` spans ``2 · s · HALF_SIZE`` (0.25 of the side at s = 1): the square is
  ``max(|u|, |v|) <= 1``, the ellipse ``u² + (v / 0.6)² <= 1`` and the heart the implicit curve
  ``(x² + y² − 1)³ − x² y³ <= 0`` fitted into the same box, where ``(u, v)`` are the pixel centre's
  coordinates relative to the shape's centre, in units of ``s · HALF_SIZE``, rotated by the
  orientation ``θ`` (the shape turns anticlockwise as ``θ`` grows; the heart points down at 0);
* the centre is at ``MARGIN + (1 − 2 · MARGIN) · position`` across (``position_x``, left to right)
  and down (``position_y``, top to bottom), so that every shape at every angle stays inside;
* a pixel is 1 when its centre is inside the shape (no anti-aliasing: binary, like dSprites).

Each image is computed only in a window around its shape, vectorised over the images with numpy:
about 20,000 images of 64 x 64 per second on one core.

Example:
  >>> from tfvae.data.shapes2d import Shapes2D
  >>> shapes = Shapes2D(image_size=32, num_orientations=10)     # a coarser grid, 32 x 32
  >>> images = shapes.images_for([[2, 5, 0, 0, 31]])            # a big heart, bottom left
"""

import math

import numpy as np

from tfvae.data.ground_truth import FACTOR_NAMES, FACTOR_SIZES, FactorDataset, _check_int

#: half the side of a shape at scale 1, as a fraction of the image side
HALF_SIZE = 0.125
#: the shape centres keep this far (fraction of the side) from the edges
MARGIN = 0.2
#: the ellipse's minor semi-axis over its major one
ELLIPSE_ASPECT = 0.6
#: dSprites' value ranges
SCALE_RANGE = (0.5, 1.0)
POSITION_RANGE = (0.0, 1.0)

# The heart (x² + y² − 1)³ = x² y³ spans x in [−1.139, 1.139] and y in [−1, 1.236]: mapped onto
# the box [−1, 1]² by x = HEART_X · u and y = HEART_Y · v + HEART_SHIFT.
_HEART_X = 1.139
_HEART_Y = 1.118
_HEART_SHIFT = 0.118


class Shapes2D(FactorDataset):
    """dSprites' factors rendered on the fly; see the module doc for the geometry.

    Args:
      image_size: side of the square images in pixels (>= 8; 64 as dSprites).
      num_scales: scales, evenly spaced over [0.5, 1] (dSprites: 6).
      num_orientations: angles ``2π k / num_orientations``, k = 0, 1, ... (dSprites: 40).
      num_positions: positions per axis, evenly spaced over [0, 1] (dSprites: 32).

    The factors are ``shape`` (square, ellipse, heart), ``scale``, ``orientation``,
    ``position_x`` and ``position_y``; see :class:`tfvae.data.ground_truth.FactorDataset` for the
    interface.

    Example:
      >>> shapes = Shapes2D()
      >>> shapes.factor_sizes, shapes.num_images
      ((3, 6, 40, 32, 32), 737280)
    """

    name = "shapes2d"
    factor_names = FACTOR_NAMES

    def __init__(self, image_size=64, num_scales=FACTOR_SIZES[1], num_orientations=FACTOR_SIZES[2],
                 num_positions=FACTOR_SIZES[3]):
        self.image_size = _check_int("image_size", image_size, 8)
        num_scales = _check_int("num_scales", num_scales, 1)
        num_orientations = _check_int("num_orientations", num_orientations, 1)
        num_positions = _check_int("num_positions", num_positions, 1)
        self.image_shape = (self.image_size, self.image_size, 1)
        self.factor_sizes = (FACTOR_SIZES[0], num_scales, num_orientations, num_positions,
                             num_positions)
        positions = _spaced(POSITION_RANGE, num_positions)
        self._factor_values = (np.arange(FACTOR_SIZES[0], dtype=np.float64),
                               _spaced(SCALE_RANGE, num_scales),
                               2 * np.pi * np.arange(num_orientations) / num_orientations,
                               positions, positions)
        # the largest shape at any angle fits in a disc of radius √2 · HALF_SIZE (the square's
        # corners), so its pixels all lie in a window of this side around the centre
        self._window = min(self.image_size,
                           int(math.ceil(2 * math.sqrt(2) * HALF_SIZE * max(SCALE_RANGE)
                                         * self.image_size)) + 2)

    def options(self):
        """The constructor arguments, e.g. for ``tfvae.data.load("shapes2d", **options)``."""
        return dict(image_size=self.image_size, num_scales=self.factor_sizes[1],
                    num_orientations=self.factor_sizes[2], num_positions=self.factor_sizes[3])

    def _render(self, factors):
        size, window = self.image_size, self._window
        shape, scale, angle, pos_x, pos_y = (self._factor_values[i][factors[:, i]]
                                             for i in range(len(FACTOR_NAMES)))
        count = len(factors)
        # centres and the shapes' unit length, in pixels
        centre_x = (MARGIN + (1 - 2 * MARGIN) * pos_x) * size
        centre_y = (MARGIN + (1 - 2 * MARGIN) * pos_y) * size
        unit = scale * HALF_SIZE * size
        left = np.clip(np.floor(centre_x - window / 2).astype(np.int64), 0, size - window)
        top = np.clip(np.floor(centre_y - window / 2).astype(np.int64), 0, size - window)
        offsets = np.arange(window) + 0.5
        # pixel centre relative to the shape's centre, x to the right and y *up*, in units
        dx = ((left[:, None] + offsets - centre_x[:, None]) / unit[:, None])[:, None, :]
        dy = (-(top[:, None] + offsets - centre_y[:, None]) / unit[:, None])[:, :, None]
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        # rotating the point by −θ is rotating the shape by +θ
        u = (cos * dx + sin * dy).astype(np.float32)
        v = (cos * dy - sin * dx).astype(np.float32)
        inside = np.empty((count, window, window), bool)
        for kind, test in enumerate((_inside_square, _inside_ellipse, _inside_heart)):
            mine = shape == kind
            if mine.any():
                inside[mine] = test(u[mine], v[mine])
        images = np.zeros((count, size, size, 1), np.uint8)
        rows = (top[:, None] + np.arange(window))[:, :, None]
        cols = (left[:, None] + np.arange(window))[:, None, :]
        images[np.arange(count)[:, None, None], rows, cols, 0] = inside
        return images


def _spaced(bounds, count):
    low, high = bounds
    return np.array([(low + high) / 2.0]) if count == 1 else np.linspace(low, high, count)


def _inside_square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 1.0


def _inside_ellipse(u, v):
    return u * u + (v / ELLIPSE_ASPECT) ** 2 <= 1.0


def _inside_heart(u, v):
    x = _HEART_X * u
    y = _HEART_Y * v + _HEART_SHIFT
    radius = x * x + y * y - 1.0
    return radius * radius * radius - x * x * y * y * y <= 0.0


__all__ = ["HALF_SIZE", "MARGIN", "Shapes2D"]
