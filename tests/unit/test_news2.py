"""NEWS2 at every band boundary of every parameter (RCP 2017 chart), both SpO2 scales,
the risk bands including a single 3, and incompleteness."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.news2 import (
    News2Band,
    latest,
    news2,
    score_pulse,
    score_resp_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic,
    score_temp,
)
from alerts.window import MetricWindow


def one(fn, value: float) -> int:  # type: ignore[no-untyped-def]
    return int(fn(np.array([value]))[0])


@pytest.mark.parametrize(
    ("rr", "score"),
    [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (11.4, 1), (11.5, 0)],
)
def test_resp_rate(rr: float, score: int) -> None:
    assert one(score_resp_rate, rr) == score


@pytest.mark.parametrize(
    ("spo2", "score"), [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (95.5, 0)]
)
def test_spo2_scale1(spo2: float, score: int) -> None:
    assert one(score_spo2_scale1, spo2) == score


@pytest.mark.parametrize(
    ("spo2", "oxygen", "score"),
    [
        (83, False, 3),
        (84, False, 2),
        (85, False, 2),
        (86, False, 1),
        (87, False, 1),
        (88, False, 0),
        (92, False, 0),
        (93, False, 0),
        (99, False, 0),
        (88, True, 0),
        (92, True, 0),
        (93, True, 1),
        (94, True, 1),
        (95, True, 2),
        (96, True, 2),
        (97, True, 3),
        (100, True, 3),
    ],
)
def test_spo2_scale2(spo2: float, oxygen: bool, score: int) -> None:
    assert int(score_spo2_scale2(np.array([spo2]), np.array([oxygen]))[0]) == score


@pytest.mark.parametrize(
    ("sbp", "score"), [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)]
)
def test_systolic(sbp: float, score: int) -> None:
    assert one(score_systolic, sbp) == score


@pytest.mark.parametrize(
    ("pulse", "score"),
    [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
)
def test_pulse(pulse: float, score: int) -> None:
    assert one(score_pulse, pulse) == score


@pytest.mark.parametrize(
    ("temp", "score"),
    [
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (38.04, 0),
        (38.05, 1),
    ],
)
def test_temperature(temp: float, score: int) -> None:
    assert one(score_temp, temp) == score


def _run(**over: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = dict(
        resp_rate=np.array([16.0]),
        resp_rate_present=np.array([True]),
        spo2=np.array([97.0]),
        spo2_present=np.array([True]),
        on_oxygen=np.array([False]),
        systolic=np.array([125.0]),
        systolic_present=np.array([True]),
        pulse=np.array([75.0]),
        pulse_present=np.array([True]),
        consciousness_alert=np.array([True]),
        temp_c=np.array([37.0]),
        temp_present=np.array([True]),
        spo2_scale2=np.array([False]),
    )
    base.update({k: np.array([v]) for k, v in over.items()})
    return news2(**base)  # type: ignore[arg-type]


def test_risk_bands() -> None:
    assert int(_run().band[0]) == News2Band.LOW
    assert int(_run().total[0]) == 0
    single_three = _run(resp_rate=26.0)
    assert (int(single_three.total[0]), int(single_three.band[0])) == (3, News2Band.LOW_MEDIUM)
    medium = _run(resp_rate=22.0, pulse=115.0, temp_c=38.5)  # 2 + 2 + 1
    assert (int(medium.total[0]), int(medium.band[0])) == (5, News2Band.MEDIUM)
    high = _run(resp_rate=26.0, spo2=93.0, pulse=115.0)  # 3 + 2 + 2
    assert (int(high.total[0]), int(high.band[0])) == (7, News2Band.HIGH)
    oxygen = _run(on_oxygen=True)
    assert int(oxygen.scores[0, 2]) == 2


def test_missing_parameters_make_it_incomplete_not_normal() -> None:
    r = _run(temp_present=False, temp_c=np.nan)
    assert not bool(r.complete[0])
    assert int(r.scores[0, 6]) == 0
    assert bool(_run().complete[0])


def test_latest_value_within_freshness() -> None:
    values = np.array([[90.0, 91.0, 0.0, 0.0], [80.0, 0.0, 0.0, 0.0]])
    present = np.array([[True, True, False, False], [True, False, False, False]])
    v, has = latest(MetricWindow(values, present), 60, 180)  # last 3 bins
    assert has.tolist() == [True, False]
    assert v[0] == 91.0


def test_settled_value_ignores_a_minute_of_artifact_not_a_real_fall() -> None:
    # a continuous oximeter: 97 %, one artifact minute at 84 %, then 97 again
    values = np.array([[97.0, 97.0, 96.0, 97.0, 84.0], [97.0, 90.0, 89.0, 89.0, 88.0]])
    present = np.ones_like(values, dtype=np.bool_)
    raw, _ = latest(MetricWindow(values, present), 60, 3600)
    settled, has = latest(MetricWindow(values, present), 60, 3600, settle_s=300)
    assert raw.tolist() == [84.0, 88.0]
    assert has.tolist() == [True, True]
    assert settled.tolist() == [97.0, 89.0]  # the artifact settles, the real fall stays
    assert one(score_spo2_scale1, settled[0]) == 0
    assert one(score_spo2_scale1, settled[1]) == 3


def test_a_spot_reading_alone_in_its_span_counts_as_it_is() -> None:
    values = np.array([[0.0, 0.0, 0.0, 85.0, 0.0, 0.0]])
    present = np.array([[False, False, False, True, False, False]])
    settled, has = latest(MetricWindow(values, present), 60, 3600, settle_s=300)
    assert has.tolist() == [True]
    assert settled.tolist() == [85.0]
