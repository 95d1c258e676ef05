"""The README's pictures: rendered by benchmarks/render_pictures.py from the labs' own outputs, small, referenced."""

from __future__ import annotations

import base64
import json
import struct
import sys

import pytest
from conftest import LABS, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import render_pictures as pictures  # noqa: E402

IMG = ROOT / "docs" / "img"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("picture", pictures.PICTURES, ids=lambda p: p.file)
def test_each_picture_is_committed_and_shown_in_the_readme(picture):
    path = IMG / picture.file
    assert path.exists(), f"{path} is missing: run `python benchmarks/render_pictures.py`"
    width, height = png_size(path.read_bytes())
    assert width >= 400 and height >= 100
    assert f"docs/img/{picture.file}" in (ROOT / "README.md").read_text()


def test_pictures_together_stay_under_a_megabyte():
    total = sum((IMG / p.file).stat().st_size for p in pictures.PICTURES if (IMG / p.file).exists())
    assert 0 < total < pictures.MAX_TOTAL_BYTES


@pytest.mark.parametrize("picture", [p for p in pictures.PICTURES if p.cell_id], ids=lambda p: p.file)
def test_the_cell_each_plot_comes_from_still_draws_a_figure(picture):
    notebook = json.loads((LABS / f"{picture.lab}.ipynb").read_text())
    sources = {cell.get("id"): "".join(cell["source"]) for cell in notebook["cells"]}
    assert picture.cell_id in sources, f"lab {picture.lab} lost cell {picture.cell_id}: update PICTURES"
    assert "plt." in sources[picture.cell_id] or "plot" in sources[picture.cell_id]


def executed(cells: list[dict]) -> dict:
    return {"cells": [{"cell_type": "code", "id": cid, "source": [], "outputs": outputs} for cid, outputs in cells]}


def test_plot_png_returns_the_cells_image_byte_for_byte():
    first, second = b"\x89PNG first", b"\x89PNG second"
    notebook = executed([("a", [{"output_type": "stream", "name": "stdout", "text": "hello"}]),
                         ("b", [{"output_type": "display_data", "data": {"image/png": base64.b64encode(first).decode()}},
                                {"output_type": "display_data", "data": {"image/png": base64.b64encode(second).decode()}}])])
    assert pictures.plot_png(notebook, pictures.Picture("x.png", "lab", "what", "b")) == first
    assert pictures.plot_png(notebook, pictures.Picture("x.png", "lab", "what", "b", image_index=1)) == second
    with pytest.raises(LookupError, match="found 0 image"):
        pictures.plot_png(notebook, pictures.Picture("x.png", "lab", "what", "a"))
    with pytest.raises(LookupError, match="no cell with id 'gone'"):
        pictures.plot_png(notebook, pictures.Picture("x.png", "lab", "what", "gone"))


def test_masking_html_finds_the_view_that_marks_tokens_by_colour():
    table = "<table>" + "<span>x</span>" * 20 + "</table>"  # many spans, none marked: not the view
    view = "<div>" + '<span style="background:#c8f7c5">a</span>' + "<span>b</span>" * 12 + "</div>"
    notebook = executed([("t", [{"output_type": "display_data", "data": {"text/html": table}}]),
                         ("v", [{"output_type": "display_data", "data": {"text/html": [view]}}])])
    assert pictures.masking_html(notebook, "01") == view
    with pytest.raises(LookupError, match="masked-token view"):
        pictures.masking_html(executed([("t", [{"output_type": "display_data", "data": {"text/html": table}}])]), "01")
