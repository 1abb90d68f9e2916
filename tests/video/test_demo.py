"""The video demo end to end on a small synthetic set, and the contact sheet it draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from forwardlab.video.data.synthetic import CLASSES
from forwardlab.video.demo import SHEET_FRAMES, SHEET_SIZE, run_demo
from forwardlab.video.visualize import contact_sheet


def test_demo_writes_probe_json_and_a_sheet_with_a_row_per_class(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "out", per_class=1, seed=5)
    assert result.n_clips == len(CLASSES)
    probes = json.loads(result.probe_json.read_text())
    assert {p["label"] for p in probes} == set(CLASSES)
    assert all(p["codec"] == "h264" and p["n_frames"] > 0 for p in probes)
    sheet = Image.open(result.contact_sheet)
    assert sheet.width >= SHEET_FRAMES * SHEET_SIZE
    assert sheet.height >= len(CLASSES) * SHEET_SIZE
    assert (result.dataset_root / "annotations" / "val.csv").is_file()


def test_contact_sheet_shows_every_frame_once() -> None:
    red = torch.zeros(3, 3, 10, 10, dtype=torch.uint8)
    red[:, 0] = 255
    blue = torch.zeros(2, 3, 10, 10, dtype=torch.uint8)
    blue[:, 2] = 255
    pixels = np.asarray(contact_sheet([("red", red), ("blue", blue)], max_cols=2))
    is_red = (pixels == (255, 0, 0)).all(axis=2)
    is_blue = (pixels == (0, 0, 255)).all(axis=2)
    assert is_red.sum() == 3 * 100 and is_blue.sum() == 2 * 100
    red_rows, blue_rows = np.nonzero(is_red.any(axis=1))[0], np.nonzero(is_blue.any(axis=1))[0]
    assert red_rows.max() < blue_rows.min()  # clips are stacked in order
    assert len(np.unique(np.nonzero(is_red.any(axis=1))[0] // 10)) >= 2  # 3 frames wrap at 2 columns
