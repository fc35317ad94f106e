"""Pictures of a trained model: reconstructions, samples, latent traversals, KL per dimension.

Every function draws with matplotlib's Agg backend into a PNG file and returns the path, so it
works on headless machines and in tests. Image arrays are ``[N, H, W, C]`` in [0, 1].

Example:
  >>> from tfvae import plots
  >>> plots.plot_reconstructions(model, test_images[:8], "reconstructions.png")
  >>> plots.plot_traversals(model, test_images[0], "traversals.png")
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _show(ax, image):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(np.clip(image, 0.0, 1.0), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path):
    path = os.fspath(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def image_grid(rows, path, title=None, row_labels=None, column_labels=None):
    """Draws a grid of images: ``rows`` is a list of image lists (or an array [R, C, H, W, ch])."""
    rows = [list(r) for r in rows]
    num_rows, num_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(1.1 * num_cols + 0.8, 1.1 * num_rows + 0.4),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j in range(num_cols):
            if j < len(row):
                _show(axes[i, j], row[j])
            else:
                axes[i, j].axis("off")
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=8)
    if column_labels is not None:
        for j, label in enumerate(column_labels):
            axes[0, j].set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_reconstructions(model, images, path, title="originals (top) and reconstructions (bottom)"):
    """Originals above their reconstructions ``model.reconstruct(images)``; for vector data
    (examples shaped ``[D]``) each example's profile, original against reconstruction."""
    images = np.asarray(images, np.float32)
    reconstructions = np.asarray(model.reconstruct(images))
    if images.ndim == 2:
        return plot_profiles(images, reconstructions, path)
    return image_grid([images, reconstructions], path, title=title)


def plot_profiles(originals, reconstructions, path, max_examples=6,
                  title="feature profiles: originals and reconstructions"):
    """Vector examples ``[N, D]`` as line profiles over the feature index, one panel each."""
    count = min(max_examples, len(originals))
    fig, axes = plt.subplots(count, 1, figsize=(8, 1.3 * count + 0.5), sharex=True, squeeze=False)
    for i in range(count):
        ax = axes[i, 0]
        ax.plot(originals[i], color="0.2", linewidth=1, label="original")
        ax.plot(reconstructions[i], color="C1", linewidth=1, linestyle="--", label="reconstruction")
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("feature")
    fig.suptitle(title)
    return _save(fig, path)


def plot_samples(model, path, num_samples=32, seed=0, columns=8, title="samples from the prior"):
    """Mean images of p(x|z) for ``num_samples`` codes drawn from the prior."""
    samples = np.asarray(model.sample(num_samples, seed=seed))
    rows = [samples[i:i + columns] for i in range(0, num_samples, columns)]
    return image_grid(rows, path, title=title)


def plot_traversals(model, image, path, dimensions=None, values=np.linspace(-3.0, 3.0, 9),
                    kl=None, max_dimensions=10, title="latent traversals"):
    """One row per latent dimension: decode the code of ``image`` with that dimension set to each
    of ``values`` (the others held at the code's value).

    Args:
      dimensions: which dimensions to show, in order; by default the ``max_dimensions`` with the
        largest ``kl`` (per-dimension KL in nats, as from
        :func:`tfvae.evaluation.kl_per_dimension`), or the first ones when ``kl`` is None.
    """
    code = np.asarray(model.encode(np.asarray(image, np.float32)[None]))[0]
    if dimensions is None:
        order = np.argsort(-np.asarray(kl)) if kl is not None else np.arange(code.shape[-1])
        dimensions = order[:max_dimensions]
    dimensions = [int(d) for d in dimensions]
    values = np.asarray(values, np.float32)
    codes = np.repeat(code[None, None], len(dimensions), 0).repeat(len(values), 1)
    for row, dim in enumerate(dimensions):
        codes[row, :, dim] = values
    decoded = np.asarray(model.decode(codes.reshape(-1, code.shape[-1])))
    decoded = decoded.reshape((len(dimensions), len(values)) + decoded.shape[1:])
    labels = [f"z{d}" + (f"\nKL {kl[d]:.2f}" if kl is not None else "") for d in dimensions]
    return image_grid(decoded, path, title=title, row_labels=labels,
                      column_labels=[f"{v:+.1f}" for v in values])


def plot_kl_per_dimension(kl, path, title="KL(q(z_j|x) || p(z_j)) per latent dimension"):
    """Bar chart of the information each latent dimension carries, in nats."""
    kl = np.asarray(kl, np.float64)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(kl) + 1.5), 3.0))
    ax.bar(np.arange(len(kl)), kl, color="tab:blue")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats)")
    ax.set_xticks(np.arange(len(kl)))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_history(history, path, keys=("loss",), title="training"):
    """Curves of ``history`` (a dict name -> list per epoch, as Keras' History.history) by epoch."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for key in keys:
        for name in (key, f"val_{key}"):
            if name in history:
                ax.plot(np.arange(1, len(history[name]) + 1), history[name], label=name)
    ax.set_xlabel("epoch")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)
