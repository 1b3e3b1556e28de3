"""Rules evaluation speed: the numpy kernels over 10,000 patients x 24 h at 1-minute
bins, against a plain-Python loop doing the same (one patient, one bin at a time) in the
same run. The loop runs on a sample of patients and is extrapolated linearly (it is
linear in patients); both must give identical results on that sample."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from alerts.news2 import latest, news2
from alerts.rules import sustained
from alerts.window import MetricWindow

ROOT = Path(__file__).resolve().parent.parent
BIN_S = 60
RULES = [  # (metric, direction, threshold, duration_s, max_gap_s)
    ("spo2_pct", "below", 90.0, 300, 120),
    ("heart_rate_bpm", "above", 120.0, 900, 180),
    ("heart_rate_bpm", "below", 45.0, 600, 180),
    ("resp_rate_per_min", "above", 24.0, 900, 300),
]
MEANS = {
    "spo2_pct": (95, 3),
    "heart_rate_bpm": (85, 20),
    "resp_rate_per_min": (17, 5),
    "temp_c": (37.0, 0.6),
    "bp_systolic_mmhg": (125, 20),
}


@dataclass(frozen=True)
class Result:
    patients: int
    bins: int
    numpy_s: float
    loop_sample_patients: int
    loop_s_extrapolated: float
    speedup: float
    identical_on_sample: bool


def make_data(patients: int, bins: int, seed: int = 11) -> dict[str, MetricWindow]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (mean, sd) in MEANS.items():
        drift = np.cumsum(rng.normal(0, sd / 20, size=(patients, bins)), axis=1)
        values = mean + drift + rng.normal(0, sd / 4, size=(patients, bins))
        present = rng.random((patients, bins)) > 0.2
        out[name] = MetricWindow(values, present)
    return out


def run_numpy(data: dict[str, MetricWindow]) -> list[NDArray[np.int64]]:
    p = data["spo2_pct"].values.shape[0]
    results: list[NDArray[np.int64]] = []
    for metric, direction, thr, duration, gap in RULES:
        r = sustained(data[metric], BIN_S, direction, np.full(p, thr), duration, gap)  # type: ignore[arg-type]
        results.append(r.firing.astype(np.int64))
    lat = {m: latest(data[m], BIN_S, 4 * 3600) for m in MEANS}
    score = news2(
        resp_rate=lat["resp_rate_per_min"][0],
        resp_rate_present=lat["resp_rate_per_min"][1],
        spo2=lat["spo2_pct"][0],
        spo2_present=lat["spo2_pct"][1],
        on_oxygen=np.zeros(p, dtype=bool),
        systolic=lat["bp_systolic_mmhg"][0],
        systolic_present=lat["bp_systolic_mmhg"][1],
        pulse=lat["heart_rate_bpm"][0],
        pulse_present=lat["heart_rate_bpm"][1],
        consciousness_alert=np.ones(p, dtype=bool),
        temp_c=lat["temp_c"][0],
        temp_present=lat["temp_c"][1],
        spo2_scale2=np.zeros(p, dtype=bool),
    )
    results.append(score.total)
    return results


def _loop_sustained(
    values: list[float], present: list[bool], above: bool, thr: float, duration_s: int, gap_s: int
) -> bool:
    brk, last_seen, brk_at_last = -1, -1, -1
    for i, (v, here) in enumerate(zip(values, present, strict=True)):
        if here:
            if not (v > thr if above else v < thr):
                brk = i
            last_seen, brk_at_last = i, brk
        elif (i - last_seen) * BIN_S > gap_s:
            brk = i
    if last_seen < 0 or (len(values) - 1 - last_seen) * BIN_S > gap_s:
        return False
    v = values[last_seen]
    if not (v > thr if above else v < thr):
        return False
    since = next(i for i in range(brk_at_last + 1, last_seen + 1) if present[i])
    return (last_seen - since + 1) * BIN_S >= duration_s


def _score(x: float, edges: list[float], scores: list[int]) -> int:
    for edge, s in zip(edges, scores, strict=False):
        if x <= edge:
            return s
    return scores[-1]


def _loop_news2(lat: dict[str, float | None]) -> int:
    def r(x: float, d: int = 0) -> float:
        return float(np.floor(x * 10**d + 0.5) / 10**d)

    total = 0
    if lat["resp_rate_per_min"] is not None:
        total += _score(r(lat["resp_rate_per_min"]), [8, 11, 20, 24], [3, 1, 0, 2, 3])
    if lat["spo2_pct"] is not None:
        total += _score(r(lat["spo2_pct"]), [91, 93, 95], [3, 2, 1, 0])
    if lat["bp_systolic_mmhg"] is not None:
        total += _score(r(lat["bp_systolic_mmhg"]), [90, 100, 110, 219], [3, 2, 1, 0, 3])
    if lat["heart_rate_bpm"] is not None:
        total += _score(r(lat["heart_rate_bpm"]), [40, 50, 90, 110, 130], [3, 1, 0, 1, 2, 3])
    if lat["temp_c"] is not None:
        total += _score(r(lat["temp_c"], 1), [35.05, 36.05, 38.05, 39.05], [3, 1, 0, 1, 2])
    return total


def run_loop(data: dict[str, MetricWindow], patients: range) -> list[list[int]]:
    results: list[list[int]] = [[] for _ in range(len(RULES) + 1)]
    plain = {m: (w.values.tolist(), w.present.tolist()) for m, w in data.items()}
    fresh = 4 * 3600 // BIN_S
    for p in patients:
        for k, (metric, direction, thr, duration, gap) in enumerate(RULES):
            values, present = plain[metric][0][p], plain[metric][1][p]
            results[k].append(
                int(_loop_sustained(values, present, direction == "above", thr, duration, gap))
            )
        lat: dict[str, float | None] = {}
        for m in MEANS:
            values, present = plain[m][0][p], plain[m][1][p]
            lat[m] = next(
                (
                    values[i]
                    for i in range(len(values) - 1, len(values) - 1 - fresh, -1)
                    if present[i]
                ),
                None,
            )
        results[-1].append(_loop_news2(lat))
    return results


def main(patients: int = 10_000, bins: int = 1440, sample: int = 300) -> None:
    data = make_data(patients, bins)
    t = time.perf_counter()
    fast = run_numpy(data)
    numpy_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = run_loop(data, range(sample))
    loop_s = (time.perf_counter() - t) * patients / sample
    identical = all(
        np.asarray(f[:sample]).astype(int).tolist() == s for f, s in zip(fast, slow, strict=True)
    )
    result = Result(patients, bins, numpy_s, sample, loop_s, loop_s / numpy_s, identical)
    print(
        f"{'patients':>9} {'bins':>5} {'numpy s':>8} {'loop s (extrap.)':>17} {'speed-up':>9}"
        f" {'identical':>9}"
    )
    print(
        f"{patients:>9} {bins:>5} {numpy_s:>8.2f} {loop_s:>17.1f} {loop_s / numpy_s:>9.0f}"
        f" {identical!s:>9}"
    )
    out = ROOT / "bench" / "results" / "rules_speed.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "rules_speed",
                "at": datetime.now(UTC).isoformat(),
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "numpy": np.__version__,
                },
                "result": asdict(result),
            },
            indent=2,
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
