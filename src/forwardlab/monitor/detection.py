"""How well the monitor catches the built-in scenarios: detection delay and false alarms, per scenario.

Each scenario is replayed (`simulate.simulate`, the real service and monitor) into its own folder, and its
months are scored against the known onset: the delay is the number of windows from the onset's window to
the first window with an alert (0: caught in the month it began); a false alarm is a window before the
onset with any alert (for the control, any window at all). Reports are off by default here: they do not
change a verdict, and the table is about verdicts.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.monitor.scenarios import SCENARIOS, Scenario, get_scenario
from forwardlab.monitor.simulation import DEFAULT_SAMPLE, MonthResult, SimulationResult, simulate

CSV_FILE, MARKDOWN_FILE = "detection.csv", "detection.md"


@dataclass(frozen=True)
class Detection:
    """One scenario's verdict: when its change began, when the monitor first alerted, and its false alarms."""

    scenario: str
    change: str
    expected: str
    windows: int
    onset: str | None
    first_alert: str | None
    delay_windows: int | None
    alerts_at_detection: list[str]
    false_alarms: int
    windows_before_onset: int

    @property
    def detected(self) -> bool:
        return self.delay_windows is not None


def score(scenario: Scenario, months: Sequence[MonthResult]) -> Detection:
    """Score replayed months against the scenario's onset (None for the control: every window is before it)."""
    onset = scenario.onset
    before = [m for m in months if onset is None or m.start < f"{onset:%Y-%m-%d}"]
    after = list(months[len(before) :])  # months are in order: those before the onset come first
    first = next((m for m in after if m.alerts), None)
    return Detection(
        scenario=scenario.name,
        change=scenario.description,
        expected=scenario.expected,
        windows=len(months),
        onset=None if onset is None else f"{onset:%Y-%m}",
        first_alert=None if first is None else first.start[:7],
        delay_windows=None if first is None else after.index(first),
        alerts_at_detection=[] if first is None else first.alerts,
        false_alarms=sum(1 for m in before if m.alerts),
        windows_before_onset=len(before),
    )


def run_scenarios(
    out_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    sample: float = DEFAULT_SAMPLE,
    reports: bool = False,
    on_scenario: Callable[[Detection, SimulationResult], None] | None = None,
) -> list[Detection]:
    """Replay each scenario into `out_dir/NAME` (resuming what is there) and score it; write the table files."""
    out = Path(out_dir)
    detections = []
    for name in names or list(SCENARIOS):
        scenario = get_scenario(name)
        result = simulate(scenario.name, out_dir=out / scenario.name, sample=sample, reports=reports)
        detection = score(scenario, result.months)
        detections.append(detection)
        if on_scenario:
            on_scenario(detection, result)
    write_tables(detections, out)
    return detections


def write_tables(detections: Sequence[Detection], out_dir: Path) -> tuple[Path, Path]:
    """detection.csv (one row per scenario) and detection.md (the table as in the README)."""
    csv_path, md_path = out_dir / CSV_FILE, out_dir / MARKDOWN_FILE
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        fields = list(asdict(detections[0])) if detections else []
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for d in detections:
            writer.writerow(asdict(d) | {"alerts_at_detection": " ".join(d.alerts_at_detection)})
    write_text_atomic(md_path, markdown_table(detections))
    return csv_path, md_path


def markdown_table(detections: Sequence[Detection]) -> str:
    rows = [
        "| scenario | change | onset | first alert | delay (windows) | alerts then | false alarms before onset |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in detections:
        delay = "-" if d.onset is None else ("missed" if d.delay_windows is None else str(d.delay_windows))
        rows.append(
            f"| {d.scenario} | {d.change} | {d.onset or '-'} | {d.first_alert or '-'} | {delay} | "
            f"{', '.join(d.alerts_at_detection) or '-'} | {d.false_alarms} of {d.windows_before_onset} |"
        )
    return "\n".join(rows) + "\n"
