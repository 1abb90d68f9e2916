"""The progress bar's rate column: long jobs such as `evaluate` show their throughput in their own unit."""

from __future__ import annotations

import re

import pytest

from forwardlab.progress import progress_bar


def test_bar_with_a_unit_shows_a_rate_in_that_unit(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("evaluating videos", 4, unit="videos") as advance:
        for done in range(1, 5):
            advance(done, 4)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "4/4" in line
    rate = re.search(r"([\d.]+) videos/s", line)
    assert rate is not None and float(rate.group(1)) > 0


def test_bar_without_a_unit_shows_no_rate(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("generating clips", 2) as advance:
        advance(2, 2)
    assert "/s" not in capsys.readouterr().err
