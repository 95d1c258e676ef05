"""Hardware figures live in labhelpers.course.hardware; the notebook headers and the README are generated from it
(written by labhelpers.course.generated, whose own tests corrupt and restore every block)."""

from __future__ import annotations

from conftest import ROOT

from labhelpers.config import config_labs
from labhelpers.course import generated, hardware


def test_every_lab_has_its_figures():
    assert set(hardware.HARDWARE) == set(config_labs())


def test_headers_and_readme_show_the_figures_of_the_one_place():
    assert generated.update(ROOT, check=True, only=["hardware"]) == [], "run python -m labhelpers.course.generated"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert generated.block(readme, "hardware") == hardware.readme_table()


def test_each_figure_says_whether_it_was_measured_and_how():
    for lab, hw in hardware.HARDWARE.items():
        for figure in (hw.tiny_time, hw.full_time, hw.full_gpu_memory):
            assert figure.how and figure.low <= figure.high, lab
            assert ("measured" if figure.measured else "estimate") in figure.text()
            if figure.measured:  # a measured figure names where it was measured
                assert "CPU" in figure.how or "H200" in figure.how or "T4" in figure.how, (lab, figure.how)
        assert not hw.full_time.measured or "T4" in hw.full_time.how, lab


def test_the_t4_estimate_follows_its_formula():
    work = hardware.Workload(trained_tokens=1e6, frozen_tokens=0, model="gpt2", other_minutes=0)
    fast, slow = hardware.t4_minutes(work)
    flops = 6 * 124e6 * 1e6
    assert (fast, slow) == (round(flops / 15e12 / 60 + 3), round(flops / 5e12 / 60 + 3))
    bigger = hardware.Workload(trained_tokens=1e9, frozen_tokens=0, model="gpt2", other_minutes=0)
    assert hardware.t4_minutes(bigger)[1] > slow


def test_a_drifted_header_is_reported(tmp_path):
    import shutil

    import nbformat

    (tmp_path / "labs").mkdir()
    for lab in hardware.HARDWARE:
        shutil.copy(ROOT / "labs" / f"{lab}.ipynb", tmp_path / "labs")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    path = tmp_path / "labs" / "03_dpo.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("13.1 GiB", "10 GB")
    nbformat.write(nb, str(path))
    drifted = ["labs/03_dpo.ipynb cell 0 <!-- hardware:start -->"]
    assert generated.update(tmp_path, check=True, only=["hardware"]) == drifted
    assert generated.update(tmp_path, only=["hardware"]) == drifted
    assert generated.update(tmp_path, check=True, only=["hardware"]) == []
    assert "13.1 GiB" in nbformat.read(str(path), as_version=4).cells[0].source
