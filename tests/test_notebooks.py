"""The notebooks run top to bottom, so they cannot rot.

Every notebook reads a small-setting switch in its first code cell,
``QUICK = os.environ.get("TFVAE_NOTEBOOK_QUICK") == "1"``, and then runs the same code on less
data with fewer epochs and Monte Carlo samples; the tests set it. Each notebook runs in a fresh
kernel (in a scratch directory, so the files it writes stay out of the checkout) under one
wall-clock budget for the whole notebook, kernel start included; two notebooks run at a time
(a kernel spends most of its time in single-threaded tracing and XLA compilation, so two
share two cores well). The quickstart and own_data notebooks go through the run layer
(``tfvae.run.train``) as ``tfvae train`` does.

The notebooks are stored with the outputs of one run (figures inline as PNG); the tests also
check that those outputs are there, in order and free of errors.
"""

import concurrent.futures
import os
import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: one notebook per model family beside the quickstart
FAMILY_NOTEBOOKS = ("vsc", "iwae", "llgae", "disentanglement", "own_data")
#: notebooks that train through tfvae.run.train, and the run directory each writes under runs/
RUNS = {"quickstart": "quickstart", "own_data": "cancer"}
QUICK_SWITCH = 'QUICK = os.environ.get("TFVAE_NOTEBOOK_QUICK") == "1"'
#: wall-clock seconds for one whole notebook in the quick setting. The quick runs take 30-55 s of
#: CPU each (kernel start and TensorFlow import: 8 s); on 2 cores shared with load 10 they took
#: 2-3 minutes of wall time, hence the margin. TFVAE_NOTEBOOK_TIMEOUT overrides it.
TIMEOUT_S = float(os.environ.get("TFVAE_NOTEBOOK_TIMEOUT", 300))
#: notebooks executed at once, each in its own kernel
WORKERS = min(2, os.cpu_count() or 1)
#: the notebooks' quick runs, longest first, so that the two workers finish together
ORDER = ("disentanglement", "iwae", "quickstart", "vsc", "llgae", "own_data")


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _outputs(notebook):
    return [output for cell in _code_cells(notebook) for output in cell.get("outputs", [])]


def _has_png(notebook):
    return any("image/png" in output.get("data", {}) for output in _outputs(notebook))


def test_there_is_a_quickstart():
    assert any(path.name == "quickstart.ipynb" for path in NOTEBOOKS)


def test_there_is_a_notebook_per_family():
    assert set(FAMILY_NOTEBOOKS) <= {path.stem for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_with_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    counts = [cell.execution_count for cell in _code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name} was not run top to bottom once: {counts}"
    assert not [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    assert _has_png(notebook), f"{path.name} holds no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reads_the_quick_switch_and_says_which_setting_it_shows(path):
    notebook = nbformat.read(path, as_version=4)
    assert QUICK_SWITCH in _code_cells(notebook)[0].source
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert "normal setting" in first.source or "quick setting" in first.source


def _execute(path, workdir):
    """``path`` run top to bottom in a fresh kernel started in ``workdir`` with the quick switch
    set, under the notebook's wall-clock budget; the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    for cell in _code_cells(notebook):                # so that a figure below is one made now
        cell.outputs = []
    deadline = time.monotonic() + TIMEOUT_S
    # each cell may take what is left of the notebook's budget (nbclient's timeout is per cell)
    client = NotebookClient(notebook, kernel_name="python3", record_timing=False,
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=dict(os.environ, TFVAE_NOTEBOOK_QUICK="1"))   # the kernel's environment
    return notebook


@pytest.fixture(scope="module")
def executions(request, tmp_path_factory):
    """The notebooks this session tests, WORKERS at a time: ``{path: (future, workdir)}``."""
    wanted = {item.callspec.params["path"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_notebook_runs_top_to_bottom"}
    wanted = sorted(wanted, key=lambda path: ORDER.index(path.stem) if path.stem in ORDER else len(ORDER))
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        started = {}
        for path in wanted:
            workdir = tmp_path_factory.mktemp(path.stem)
            started[path] = (pool.submit(_execute, path, workdir), workdir)
        yield started
        for future, _ in started.values():
            future.cancel()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, executions):
    future, workdir = executions[path]
    notebook = future.result()
    assert not [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    assert _has_png(notebook)
    if path.stem in RUNS:  # the run layer wrote a whole run directory
        for name in ("model.keras", "config.json", "metrics.json", "history.json", "reconstructions.png"):
            assert (workdir / "runs" / RUNS[path.stem] / name).is_file(), name
