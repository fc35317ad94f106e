"""shapes2d / dsprites (data of known factors) and the disentanglement metrics on codes whose
answer is known: the factors themselves, rotations of them, duplicates, noise."""

import math
import time

import numpy as np
import pytest

from tfvae import data
from tfvae.data import dsprites, sources
from tfvae.data.shapes2d import HALF_SIZE, MARGIN, Shapes2D
from tfvae.evaluation import disentanglement as dis

SMALL = dict(num_orientations=4, num_positions=3)  # 3 x 6 x 4 x 3 x 3 = 648 grid points


def centroid_and_area(images):
    """Per image: (column, row) of the centre of mass in pixel units, and the pixel count."""
    images = np.asarray(images)[..., 0]
    rows, cols = np.indices(images.shape[1:])
    area = images.sum(axis=(1, 2))
    return ((images * cols).sum(axis=(1, 2)) / area, (images * rows).sum(axis=(1, 2)) / area,
            area)


# ------------------------------------------------------------------------------ shapes2d grid

def test_default_grid_is_dsprites():
    shapes = Shapes2D()
    assert shapes.factor_names == ("shape", "scale", "orientation", "position_x", "position_y")
    assert shapes.factor_sizes == (3, 6, 40, 32, 32) and shapes.num_images == 737_280
    assert shapes.image_shape == (64, 64, 1)
    np.testing.assert_allclose(shapes.factor_values("scale"), [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    angles = shapes.factor_values("orientation")
    assert angles[0] == 0 and angles.max() < 2 * np.pi
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 40)
    np.testing.assert_allclose(shapes.factor_values("position_x"), np.arange(32) / 31)
    info = data.info("shapes2d")
    assert info.factor_sizes == shapes.factor_sizes and info.factor_names == shapes.factor_names
    assert info.num_examples["train"] + info.num_examples["test"] == shapes.num_images
    assert data.info("dsprites").factor_sizes == shapes.factor_sizes
    assert data.info("mnist").factor_names == ()


def test_options_make_coarser_grids_and_lower_resolutions():
    shapes = data.factors("shapes2d", image_size=32, num_scales=2, num_orientations=10,
                          num_positions=8)
    assert shapes.factor_sizes == (3, 2, 10, 8, 8) and shapes.image_shape == (32, 32, 1)
    np.testing.assert_allclose(shapes.factor_values("scale"), [0.5, 1.0])
    images = shapes.images_for(shapes.sample_factors(50, rng=0))
    assert images.shape == (50, 32, 32, 1) and images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0} and images.sum(axis=(1, 2, 3)).min() > 0


def test_rendering_is_deterministic_and_fast():
    shapes = Shapes2D()
    factors = shapes.sample_factors(10_000, rng=3)
    np.testing.assert_array_equal(factors, shapes.sample_factors(10_000, rng=3))
    start = time.process_time()
    images = shapes.images_for(factors)
    assert time.process_time() - start < 5.0  # ~0.3 s measured; "tens of thousands in seconds"
    np.testing.assert_array_equal(images[::97], shapes.images_for(factors[::97]))
    # every image differs from the image of a different grid point... spot check a few
    other = factors.copy()
    other[:, 3] = (other[:, 3] + 16) % 32
    assert np.all(np.any(shapes.images_for(other[:50]) != images[:50], axis=(1, 2, 3)))


def test_splits_are_disjoint_seeded_random_subsets():
    shapes = Shapes2D(**SMALL)
    train, test = shapes.split_factors("train"), shapes.split_factors("test")
    assert len(test) == 64 and len(train) == 648 - 64  # a tenth of a small grid
    everything = np.concatenate([shapes.index_of(train), shapes.index_of(test)])
    np.testing.assert_array_equal(np.sort(everything), np.arange(648))  # disjoint, complete
    np.testing.assert_array_equal(shapes.split_factors("train", limit=20), train[:20])
    # the order is random: the first 200 training points cover every shape and position
    assert len(np.unique(train[:200, 0])) == 3 and len(np.unique(train[:200, 3])) == 3
    assert Shapes2D().split_sizes == {"train": 727_280, "test": 10_000}


def test_load_gives_the_split_images_labelled_by_shape():
    shapes = Shapes2D(image_size=16, **SMALL)
    factors = shapes.split_factors("test")
    images, labels = data.load_arrays("shapes2d", "test", image_size=16, **SMALL)
    np.testing.assert_array_equal(images, shapes.images_for(factors))
    np.testing.assert_array_equal(labels, factors[:, 0])
    batches = data.load("shapes2d", "train", batch_size=16, limit=40, image_size=16, **SMALL)
    x, y = next(iter(batches))
    first = shapes.split_factors("train", limit=16)
    np.testing.assert_array_equal(x.numpy(), shapes.images_for(first))
    np.testing.assert_array_equal(y.numpy(), first[:, 0])
    assert sum(int(b[0].shape[0]) for b in batches) == 40


# ------------------------------------------------------------------------ what each factor does

def test_position_moves_the_centroid_by_the_stated_geometry():
    shapes = Shapes2D(image_size=64, num_positions=5)
    # square, scale 1, angle 0: symmetric, so the centroid is the centre exactly
    factors = np.array([[0, 5, 0, px, py] for px in range(5) for py in range(5)])
    cx, cy, _ = centroid_and_area(shapes.images_for(factors))
    expected = (MARGIN + (1 - 2 * MARGIN) * shapes.factor_values("position_x")) * 64 - 0.5
    np.testing.assert_allclose(cx, np.repeat(expected, 5), atol=0.5)  # x grows left to right
    np.testing.assert_allclose(cy, np.tile(expected, 5), atol=0.5)    # y grows downwards


def test_scale_sets_the_area():
    shapes = Shapes2D(image_size=64, num_scales=2, num_positions=3)
    # axis-aligned square centred on a pixel corner: side 2 * scale * HALF_SIZE * 64 px exactly
    _, _, area = centroid_and_area(shapes.images_for([[0, 0, 0, 1, 1], [0, 1, 0, 1, 1]]))
    np.testing.assert_array_equal(area, [(2 * 0.5 * HALF_SIZE * 64) ** 2, (2 * HALF_SIZE * 64) ** 2])
    _, _, ellipse = centroid_and_area(shapes.images_for([[1, 1, 0, 1, 1]]))
    assert ellipse[0] == pytest.approx(math.pi * 0.6 * (HALF_SIZE * 64) ** 2, rel=0.05)
    # scale grows the area of every shape at every angle, as scale squared
    factors = shapes.sample_factors(300, rng=0)
    factors[:, 1] = 0
    small = centroid_and_area(shapes.images_for(factors))[2]
    factors[:, 1] = 1
    large = centroid_and_area(shapes.images_for(factors))[2]
    np.testing.assert_allclose(large / small, 4.0, rtol=0.2)


def test_orientation_turns_the_shape():
    shapes = Shapes2D(image_size=64, num_orientations=4, num_positions=3)
    square, ellipse, heart = (shapes.images_for([[s, 5, k, 1, 1] for k in range(4)])[..., 0]
                              for s in range(3))
    # a square turned by 90 degrees is the same square; an ellipse turned by 90 degrees is its
    # transpose; a heart turned by 180 degrees is its mirror image top to bottom
    assert np.sum(square[1] != square[0]) <= 2
    assert np.sum(ellipse[1] != ellipse[0].T) <= 2 and np.sum(ellipse[1] != ellipse[0]) > 50
    assert np.sum(heart[2] != heart[0][::-1]) <= 2 and np.sum(heart[2] != heart[0]) > 50
    # the heart points down at angle 0: more of it lies above its centre than below
    assert heart[0][:32].sum() > heart[0][32:].sum()
    # at 45 degrees the square reaches further out: its bounding box is about √2 wider
    upright = square[0]
    turned = Shapes2D(image_size=64, num_orientations=8, num_positions=3).images_for([[0, 5, 1, 1, 1]])[0, ..., 0]
    width = np.ptp(np.nonzero(upright.any(axis=0))[0]) + 1
    assert width == 16 and np.ptp(np.nonzero(turned.any(axis=0))[0]) + 1 == pytest.approx(np.sqrt(2) * width, abs=2)


def test_shapes_differ_and_stay_inside_the_frame():
    shapes = Shapes2D(image_size=32, num_orientations=8, num_positions=2)
    corners = np.array([[s, 5, k, x, y] for s in range(3) for k in range(8) for x in range(2) for y in range(2)])
    images = shapes.images_for(corners)[..., 0]
    border = images[:, 0].sum() + images[:, -1].sum() + images[:, :, 0].sum() + images[:, :, -1].sum()
    assert border == 0
    centred = Shapes2D(image_size=32, num_orientations=8, num_positions=3)
    middle = centred.images_for(np.c_[corners[:, :3], np.ones((len(corners), 2), int)])
    # nothing is clipped at the corners: the same shape and angle has the same area (±rounding)
    np.testing.assert_allclose(images.sum(axis=(1, 2)), middle.sum(axis=(1, 2, 3)), rtol=0.15)
    by_shape = images.reshape(3, -1, 32, 32)[:, 0]
    assert np.sum(by_shape[0] != by_shape[1]) > 5 and np.sum(by_shape[1] != by_shape[2]) > 5


# ------------------------------------------------------------------------------------ dsprites

def dsprites_like_npz(path, shapes):
    """An npz laid out as dSprites' (color column, grid order) from shapes2d's images."""
    classes = shapes.factors_at(np.arange(shapes.num_images))
    values = shapes.values_for(classes)
    np.savez_compressed(path, imgs=shapes.images_for(classes)[..., 0].astype(np.uint8),
                        latents_classes=np.c_[np.zeros(len(classes), int), classes],
                        latents_values=np.c_[np.ones(len(classes)), values])
    return classes


def test_dsprites_npz_reads_with_the_same_interface(tmp_path):
    shapes = Shapes2D(image_size=16, num_scales=2, num_orientations=2, num_positions=2)
    (tmp_path / "dsprites").mkdir()
    dsprites_like_npz(tmp_path / "dsprites" / dsprites.DSPRITES_FILE, shapes)
    loaded = dsprites.load_dsprites(tmp_path, factor_sizes=shapes.factor_sizes)
    assert loaded.factor_names == shapes.factor_names and loaded.image_shape == (16, 16, 1)
    factors = shapes.sample_factors(30, rng=0)
    np.testing.assert_array_equal(loaded.images_for(factors), shapes.images_for(factors))
    np.testing.assert_allclose(loaded.values_for(factors), shapes.values_for(factors))
    # so the metrics run on it as on shapes2d
    score = dis.beta_vae_score(lambda x: x.reshape(len(x), -1)[:, ::8], loaded, batch_size=4,
                               num_train=20, num_eval=10)
    assert 0.0 <= score <= 1.0


def test_dsprites_out_of_order_is_corrupt(tmp_path):
    shapes = Shapes2D(image_size=8, num_scales=2, num_orientations=2, num_positions=2)
    path = tmp_path / "dsprites" / dsprites.DSPRITES_FILE
    path.parent.mkdir()
    classes = dsprites_like_npz(path, shapes)
    with np.load(path) as npz:
        arrays = {k: npz[k][::-1] for k in npz.files}
    np.savez(path, **arrays)
    with pytest.raises(data.CorruptDataError, match="not in the factor grid's order"):
        dsprites.load_dsprites(tmp_path, factor_sizes=shapes.factor_sizes)
    np.savez(path, images=arrays["imgs"])
    with pytest.raises(data.CorruptDataError, match="no imgs, latents_classes, latents_values"):
        dsprites.load_dsprites(tmp_path, factor_sizes=shapes.factor_sizes)
    assert len(classes) == shapes.num_images


def test_dsprites_missing_offline_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(sources, "network_available", lambda *args, **kwargs: False)
    start = time.monotonic()
    with pytest.raises(data.DataNotFoundError) as raised:
        data.load("dsprites", "train", data_dir=tmp_path, limit=10)
    assert time.monotonic() - start < 30.0  # no waiting on a network (mostly importing tfds)
    message = str(raised.value)
    assert str(tmp_path / "dsprites") in message and dsprites.DSPRITES_FILE in message
    assert "tensorflow-datasets" in message and "no network" in message and "shapes2d" in message


def test_dsprites_is_found_by_the_shared_file_search(tmp_path, monkeypatch):
    """dSprites and the file-based data sets look in the same places through
    sources.find_files: data_dir/<folder>, else $TFVAE_DATA_DIR/<folder>, then system folders."""
    shapes = Shapes2D(image_size=8, num_scales=2, num_orientations=2, num_positions=2)
    (tmp_path / "env" / "dsprites").mkdir(parents=True)
    dsprites_like_npz(tmp_path / "env" / "dsprites" / dsprites.DSPRITES_FILE, shapes)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "env"))
    searched = []
    real_find_files = sources.find_files
    monkeypatch.setattr(sources, "find_files", lambda *a, **k: searched.append(a) or real_find_files(*a, **k))
    loaded = dsprites.load_dsprites(factor_sizes=shapes.factor_sizes)  # from $TFVAE_DATA_DIR
    assert loaded.source == str(tmp_path / "env" / "dsprites" / dsprites.DSPRITES_FILE)
    assert searched == [("dsprites", (dsprites.DSPRITES_FILE,), None)]
    # data_dir wins over the environment; every place looked is reported
    looked = []
    assert real_find_files("dsprites", ["a.npz"], tmp_path, looked=looked) is None
    assert looked == [f"{tmp_path / 'dsprites'} (the data_dir argument): missing a.npz"]
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / "a.npz").write_bytes(b"")
    looked = []
    assert real_find_files("x", ["a.npz"], system_folders=[str(tmp_path / "debian")], looked=looked) \
        == [tmp_path / "debian" / "a.npz"]
    assert looked == [f"{tmp_path / 'env' / 'x'} (${sources.DATA_DIR_ENV}): missing a.npz"]
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    looked = []
    assert real_find_files("x", ["a.npz"], looked=looked) is None
    assert looked == [f"${sources.DATA_DIR_ENV}: not set"]


# ------------------------------------------------------------------ metrics on known codes

class FactorsAsObservations:
    """A data set of known factors whose 'image' is the vector of standardised factor classes,
    so that a representation is a function of the factors themselves."""

    def __init__(self, sizes=(3, 6, 10, 8, 8)):
        self.factor_sizes = tuple(sizes)
        self.num_factors = len(sizes)
        self.factor_names = tuple(f"factor_{i}" for i in range(len(sizes)))
        self.image_shape = (len(sizes),)

    def sample_factors(self, num, rng):
        rng = np.random.default_rng(rng)
        return np.stack([rng.integers(0, size, num) for size in self.factor_sizes], axis=1)

    def images_for(self, factors):
        sizes = np.asarray(self.factor_sizes, np.float64)
        return (np.asarray(factors) - (sizes - 1) / 2) / np.sqrt((sizes ** 2 - 1) / 12)


def pair_rotation():
    """45° rotations mixing factors (0, 1) and (2, 3); factor 4 alone."""
    c = np.sqrt(0.5)
    return np.array([[c, c, 0, 0, 0], [c, -c, 0, 0, 0], [0, 0, c, c, 0], [0, 0, c, -c, 0],
                     [0, 0, 0, 0, 1.0]])


def noise_encoder(latent_dim=5, seed=0):
    rng = np.random.default_rng(seed)
    return lambda x: rng.normal(size=(len(x), latent_dim))


COUNTS = dict(beta=dict(num_train=1000, num_eval=500), factor=dict(num_train=1000, num_eval=500,
              num_variance_estimate=2000), mig=dict(num_train=5000))


def scores(encode, dataset=None):
    dataset = dataset or FactorsAsObservations()
    return (dis.beta_vae_score(encode, dataset, **COUNTS["beta"]),
            dis.factor_vae_score(encode, dataset, **COUNTS["factor"]),
            dis.mutual_information_gap(encode, dataset, **COUNTS["mig"]))


def test_the_factors_themselves_score_near_one():
    beta, factor, mig = scores(lambda x: x)
    assert beta > 0.98 and factor > 0.98
    assert mig > 0.95  # every factor has <= 20 values, so 20 bins keep all its information


def test_a_rotation_of_the_factors_scores_lower():
    rotation = pair_rotation()
    beta, factor, mig = scores(lambda x: x @ rotation)
    _, details = dis.beta_vae_score(lambda x: x @ rotation, FactorsAsObservations(), return_details=True,
                                    **COUNTS["beta"])
    confusion = details["confusion"]  # rows: true fixed factor, columns: predicted
    assert confusion.sum() == 500 and confusion[4, 4] == confusion[4].sum()
    for pair in ((0, 1), (2, 3)):  # each factor of a pair is mistaken for the other, not others
        block = confusion[np.ix_(pair, pair)]
        assert block.sum() == confusion[list(pair)].sum() and block[0, 1] > 10 and block[1, 0] > 10
    # fixing factor 0 or 1 shrinks codes 0 and 1 alike (and 2 / 3 likewise): each pair of factors
    # is told apart by chance, so 3 of 5 factors are found: 0.6
    assert beta == pytest.approx(0.6, abs=0.08)
    assert factor == pytest.approx(0.6, abs=0.08)
    # the two best codes know factors 0..3 equally well: only factor 4 has a gap
    assert mig < 0.3
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))
    random_rotation = scores(lambda x: x @ q)
    identity = scores(lambda x: x)
    assert all(r < i - 0.02 for r, i in zip(random_rotation, identity))
    assert random_rotation[2] < 0.5
    # the FactorVAE score is largely blind to a rotation; MIG is the metric that punishes it
    assert random_rotation[1] > 0.8
    assert identity[2] - random_rotation[2] > identity[1] - random_rotation[1] + 0.3


def test_scaled_scores_never_give_mig_fewer_than_10000_images_nor_other_bins(monkeypatch):
    """MIG's plug-in histogram mutual information is biased upwards on small samples (pure noise
    scores several times higher on 1,000 images than on 10,000), so a small ``scale`` shrinks the
    other metrics' samples but not MIG's."""
    noise = [dis.mutual_information_gap(noise_encoder(seed=s), FactorsAsObservations(), num_train=n, seed=s)
             for n in (1000, 10_000) for s in range(3)]
    assert np.mean(noise[:3]) > 3 * np.mean(noise[3:])
    calls = {}
    def recorded(name):
        def score(*args, **kwargs):
            calls.setdefault(name, []).append(kwargs)
            return (0.5, {"standard_error": 0.01}) if kwargs.get("return_details") else 0.5
        return score

    for name in ("beta_vae_score", "factor_vae_score", "mutual_information_gap"):
        monkeypatch.setattr(dis, name, recorded(name))
    for scale in (0.01, 2.0):
        assert dis.disentanglement_scores(lambda x: x, FactorsAsObservations(), scale=scale) == \
            {"beta_vae_score": 0.5, "factor_vae_score": 0.5, "mig": 0.5}
    assert [c["num_train"] for c in calls["mutual_information_gap"]] == [10_000, 20_000]
    assert [c["num_train"] for c in calls["beta_vae_score"]] == [100, 20_000]
    assert [c["num_variance_estimate"] for c in calls["factor_vae_score"]] == [100, 20_000]
    # the histogram's bins are not a sample count: 20 at every scale (it was scaled to 2, then 40)
    assert [c["num_bins"] for c in calls["mutual_information_gap"]] == [20, 20]
    assert [c["batch_size"] for c in calls["factor_vae_score"]] == [64, 64]


def test_pure_noise_scores_near_chance():
    beta, factor, mig = scores(noise_encoder())
    assert beta == pytest.approx(0.2, abs=0.07)  # 5 factors
    assert factor == pytest.approx(0.2, abs=0.1)
    assert 0 <= mig < 0.03


def test_mig_of_a_duplicated_factor_is_half():
    dataset = FactorsAsObservations((4, 8))
    # factor 0 in two codes: no gap; factor 1 in one code: gap 1
    mig, details = dis.mutual_information_gap(lambda x: x[:, [0, 0, 1]], dataset, num_train=4000,
                                              return_details=True)
    assert mig == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(details["factor_entropy"], np.log([4, 8]), atol=0.01)
    np.testing.assert_allclose(details["mutual_information"][[0, 1, 2], [0, 0, 1]], np.log([4, 4, 8]),
                               atol=0.01)
    np.testing.assert_allclose(details["gaps"], [0.0, 1.0], atol=0.01)


def test_invariances():
    dataset = FactorsAsObservations()
    base = lambda x: x @ pair_rotation() + 0.3 * np.sin(3 * x)  # noqa: E731
    # (up to rounding where a code value falls on a bin edge or two variances tie)
    # MIG: histogram bins follow each code's range, so a positive affine map changes nothing
    assert dis.mutual_information_gap(lambda x: 3 * base(x) + 1, dataset, num_train=2000) == \
        pytest.approx(dis.mutual_information_gap(base, dataset, num_train=2000), abs=0.01)
    # FactorVAE: normalised by each dimension's variance over the data
    scaled = np.array([1, 10, 100, 0.5, 2.0])
    assert dis.factor_vae_score(lambda x: base(x) * scaled, dataset, **COUNTS["factor"]) == \
        pytest.approx(dis.factor_vae_score(base, dataset, **COUNTS["factor"]), abs=0.01)
    # β-VAE score: a linear classifier does not care about the order of the code dimensions
    order = [3, 0, 4, 1, 2]
    assert dis.beta_vae_score(lambda x: base(x)[:, order], dataset, **COUNTS["beta"]) == \
        pytest.approx(dis.beta_vae_score(base, dataset, **COUNTS["beta"]), abs=0.01)


def test_factor_vae_prunes_collapsed_dimensions():
    dataset = FactorsAsObservations()
    rng = np.random.default_rng(0)

    def encode(x):
        # codes 0..4 are the factors; code 5 is nearly constant (a collapsed latent), code 6 noise
        return np.c_[x, 0.01 * rng.normal(size=len(x)), 0.1 * rng.normal(size=len(x))]

    score, details = dis.factor_vae_score(encode, dataset, return_details=True, **COUNTS["factor"])
    assert details["active_dims"] == [0, 1, 2, 3, 4, 6]
    assert score > 0.98 and details["votes"][5].sum() == 0
    np.testing.assert_array_equal(np.argmax(details["votes"][:5], axis=1), np.arange(5))
    # a code that is collapsed everywhere says nothing: 0
    assert dis.factor_vae_score(lambda x: 0.001 * x, dataset, **COUNTS["factor"]) == 0.0


def test_hand_made_image_encoder_on_shapes2d():
    """Centroid and size read off the pixels find position and scale, and nothing else."""
    shapes = Shapes2D(image_size=32, num_orientations=8, num_positions=8)

    def encode(images):
        cx, cy, area = centroid_and_area(images)
        return np.c_[cx, cy, np.sqrt(area)]

    mig, details = dis.mutual_information_gap(encode, shapes, num_train=4000, return_details=True)
    gaps = dict(zip(shapes.factor_names, details["gaps"]))
    assert gaps["position_x"] > 0.8 and gaps["position_y"] > 0.8
    assert gaps["orientation"] < 0.1
    factor, votes = dis.factor_vae_score(encode, shapes, batch_size=32, num_train=300, num_eval=200,
                                         num_variance_estimate=1000, return_details=True)
    majority = np.argmax(votes["votes"], axis=1)
    assert list(majority[:2]) == [3, 4]  # centroid x -> position_x, y -> position_y
    assert majority[2] in (0, 1)  # the size: scale, but a heart is bigger than an ellipse too
    assert 0.45 < factor < 0.75  # 3 of 5 factors found; orientation and shape share no code


# --------------------------------------------------------------------- models and the report

def test_models_and_the_evaluator(tmp_path):
    import keras

    from tfvae.evaluation import budget, evaluate_model
    from tfvae.models import VAE

    keras.utils.set_random_seed(0)
    model = VAE(image_shape=(64, 64, 1), latent_dim=3, network_options={"hidden_units": (8,)})
    model.compile(optimizer="adam")
    shapes = data.open_source("shapes2d")       # a source of known factors: the metrics apply
    plan = budget.full_plan(test_images=100, log_likelihood_samples=0, disentanglement_scale=0.005)
    metrics = evaluate_model(model, shapes, plan=plan)
    for key in ("beta_vae_score", "factor_vae_score", "mig"):
        assert 0.0 <= metrics[key] <= 1.0
        assert 0.0 < metrics[f"{key}_se"] < 0.5
    assert metrics["disentanglement_scale"] == 0.005 and metrics["test_examples"] == 100
    assert metrics["beta_vae_points"] == metrics["factor_vae_points"] == 25 and metrics["mig_images"] == 10_000
    plan = budget.full_plan(test_images=100, log_likelihood_samples=0, disentanglement_scale=0)
    assert "mig" not in evaluate_model(model, shapes, plan=plan)
    # bare data (no source) carry no factors: no disentanglement metrics, whatever the scale
    assert "mig" not in evaluate_model(model, data.load("shapes2d", "test", batch_size=50, limit=100),
                                       log_likelihood_samples=0, disentanglement_scale=0.005)
    with pytest.raises(ValueError, match=r"takes images of shape \(64, 64, 1\).*\(32, 32, 1\)"):
        dis.beta_vae_score(model, data.factors("shapes2d", image_size=32))


def _variational_models():
    from tfvae import models

    return sorted(n for n, c in models.REGISTRY.items() if issubclass(c, models.VariationalModel))


@pytest.mark.parametrize("name", _variational_models())
def test_every_model_has_kl_bars_and_traversals_ordered_by_kl(name, digits, tmp_path, monkeypatch):
    import matplotlib.image

    from tfvae import evaluation, models, plots

    images = digits[0][:40]
    size = {"dataset_size": 1500} if name == "beta-tcvae" else {}  # β-TCVAE's N: digits' training set
    model = models.get(name)(image_shape=(8, 8, 1), latent_dim=4, network_options={"hidden_units": (16,)}, **size)
    kl = evaluation.kl_per_dimension(model, images)
    assert kl.shape == (4,) and np.all(np.isfinite(kl)) and np.all(kl >= 0)
    drawn = {}
    original = plots.image_grid

    def recording(rows, path, **kwargs):
        drawn.update(rows=np.asarray(rows), **kwargs)
        return original(rows, path, **kwargs)

    monkeypatch.setattr(plots, "image_grid", recording)
    path = plots.plot_traversals(model, images[0], tmp_path / "t.png", kl=kl, values=np.linspace(-3, 3, 5))
    assert [label.split("\n")[0] for label in drawn["row_labels"]] == [f"z{d}" for d in np.argsort(-kl)]
    assert drawn["rows"].shape == (4, 5, 8, 8, 1)
    assert np.ptp(drawn["rows"], axis=1).max() > 1e-4  # moving a latent changes the picture
    assert matplotlib.image.imread(path).shape[0] > 50
    assert matplotlib.image.imread(plots.plot_kl_per_dimension(kl, tmp_path / "k.png")).std() > 0.01


def test_cli_reports_disentanglement_for_shapes2d_runs(tmp_path, capsys):
    import json

    from tfvae import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "shapes2d", "--limit", "128", "--epochs", "1", "--latent-dim", "3",
                     "--batch-size", "64", "--log-likelihood-samples", "0", "--disentanglement-scale", "0.002",
                     "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["disentanglement_scale"] == 0.002 and 0 <= metrics["mig"] <= 1
    assert len(metrics["kl_per_dimension"]) == 3 and (out / "kl_per_dimension.png").is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--log-likelihood-samples", "0", "--disentanglement-scale", "0.003",
                     "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)  # --quiet: the JSON alone, no progress lines
    assert printed["disentanglement_scale"] == 0.003 and 0 <= printed["beta_vae_score"] <= 1
    assert cli.main(["plot", str(out), "--traversals"]) == 0
    assert (out / "traversals.png").is_file()
    assert cli.main(["evaluate", str(out), "--disentanglement-scale", "-1"]) == 2
    assert "--disentanglement-scale must be a finite number >= 0" in capsys.readouterr().err


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call,pattern", [
    (lambda: dis.beta_vae_score(lambda x: x, object()), r"FactorDataset .* without 'num_factors'"),
    (lambda: dis.beta_vae_score(42, FactorsAsObservations()), r"model with an `encode` method"),
    (lambda: dis.beta_vae_score(lambda x: x, FactorsAsObservations(), num_train=0), r"num_train must be an integer >= 2"),
    (lambda: dis.factor_vae_score(lambda x: x, FactorsAsObservations(), batch_size=1), r"batch_size must be an integer >= 2"),
    (lambda: dis.factor_vae_score(lambda x: x, FactorsAsObservations(), prune_threshold=-1), r"prune_threshold"),
    (lambda: dis.mutual_information_gap(lambda x: x, FactorsAsObservations(), num_bins=1.5), r"num_bins"),
    (lambda: dis.mutual_information_gap(lambda x: x[:, :1], FactorsAsObservations()), r"at least two dimensions"),
    (lambda: dis.mutual_information_gap(lambda x: x[:-1], FactorsAsObservations()), r"must map 2048 images to codes \[2048, latent\], got shape \(2047, 5\)"),
    (lambda: dis.mutual_information_gap(lambda x: x * np.nan, FactorsAsObservations()), r"NaN or Inf codes"),
    (lambda: dis.beta_vae_score(lambda x: x, FactorsAsObservations(), seed=1.5), r"seed must be an integer"),
    (lambda: dis.disentanglement_scores(lambda x: x, FactorsAsObservations(), scale=0), r"scale must be a number > 0"),
    (lambda: dis.beta_vae_score(lambda x: x, "mnist"), r"'mnist' has no ground-truth factors"),
    (lambda: Shapes2D(image_size=4), r"image_size must be an integer >= 8"),
    (lambda: Shapes2D(num_orientations=0), r"num_orientations must be an integer >= 1"),
    (lambda: Shapes2D().images_for([[0, 0, 0, 0]]), r"factors must be shaped \[n, 5\]"),
    (lambda: Shapes2D().images_for([[0, 6, 0, 0, 0]]), r"factor 'scale' must be a class in \[0, 5\], got 6"),
    (lambda: Shapes2D().images_for([[0, 0.5, 0, 0, 0]]), r"integer class indices"),
    (lambda: Shapes2D().factor_values("colour"), r"unknown factor 'colour'"),
    (lambda: Shapes2D().split_factors("valid"), r"unknown split 'valid'"),
    (lambda: data.factors("shapes2d", size=32), r"unknown option\(s\) \['size'\] of 'shapes2d'"),
    (lambda: data.factors("dsprites", image_size=32), r"'dsprites' takes no options"),
    (lambda: data.load("digits", image_size=32), r"unknown option\(s\) \['image_size'\] for data set 'digits'"),
    (lambda: data.load("shapes2d", "valid"), r"unknown split 'valid' of data set 'shapes2d'"),
])
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
