"""The run's processes share the machine's cores (tests/conftest.py): this process and every kernel it starts."""

from __future__ import annotations

import os

import torch


def test_this_process_runs_on_its_share_of_the_cores():
    share = int(os.environ["OMP_NUM_THREADS"])  # set by conftest (unless the caller set it) before torch loads
    assert 1 <= share <= (os.cpu_count() or 1)
    assert torch.get_num_threads() == share
