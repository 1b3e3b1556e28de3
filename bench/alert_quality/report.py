"""The alert quality report: tables a clinician can read (printed, and as Markdown), the
figures as JSON, and one PNG with detection, time to alert and false alerts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import numpy as np

from bench.alert_quality.margins import MissMargin
from bench.alert_quality.score import EventOutcome, Score
from vitals.catalogue import BY_NAME

TARGET_MEDIAN_MIN = 30.0
TARGET_FALSE_PER_DAY = 0.2
TARGET_LABELS = {
    "every_deterioration_detected": "every deterioration detected",
    "median_under_30_min": "median time to alert under 30 min",
    "false_clinical_at_most_0_2_per_patient_day": "at most 0.2 false clinical alerts a patient-day",
}


def _median(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.median(vals)) if vals else None


def _worst(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(max(vals)) if vals else None


def _condition_rows(events: list[EventOutcome]) -> list[dict[str, Any]]:
    rows = []
    for condition in sorted({e.condition for e in events}):
        es = [e for e in events if e.condition == condition]
        rows.append(
            {
                "condition": condition,
                "category": es[0].category,
                "events": len(es),
                "detected": sum(e.detected for e in es),
                "detected_any_alert": sum(e.any_alert_ms is not None for e in es),
                "median_min_from_abnormal": _median(e.minutes_from_abnormal for e in es),
                "worst_min_from_abnormal": _worst(e.minutes_from_abnormal for e in es),
                "median_min_from_onset": _median(e.minutes_from_onset for e in es),
                "worst_min_from_onset": _worst(e.minutes_from_onset for e in es),
                "first_rules": sorted({e.rule_id for e in es if e.rule_id}),
            }
        )
    return rows


def summary(score: Score) -> dict[str, Any]:
    """Every figure of the report, overall and per protocol."""
    protocols = sorted(score.all_patient_days)

    def block(protocol: str | None) -> dict[str, Any]:
        events = [e for e in score.events if protocol in (None, e.protocol)]
        false = [f for f in score.false_alerts if protocol in (None, f.protocol)]
        well_days = sum(d for p, d in score.well_patient_days.items() if protocol in (None, p))
        all_days = sum(d for p, d in score.all_patient_days.items() if protocol in (None, p))
        well_false = [f for f in false if not f.before_onset]
        technical = [
            t for t in score.technical_alerts if protocol in (None, score.protocol_of[t.patient_id])
        ]
        clinical_events = [e for e in events if e.category == "clinical"]
        by_rule: dict[str, int] = {}
        for f in well_false:
            by_rule[f.rule_id] = by_rule.get(f.rule_id, 0) + 1
        return {
            "conditions": _condition_rows(events),
            "clinical_events": len(clinical_events),
            "clinical_detected": sum(e.detected for e in clinical_events),
            "clinical_detected_any_alert": sum(e.any_alert_ms is not None for e in clinical_events),
            "clinical_missed_beyond_limit_in_time": sum(
                not e.detected
                and e.beyond_limit_ms is not None
                and e.beyond_limit_ms <= e.deadline_ms
                for e in clinical_events
            ),
            "median_min_from_abnormal": _median(e.minutes_from_abnormal for e in clinical_events),
            "well_patient_days": well_days,
            "false_clinical_alerts": len(well_false),
            "false_clinical_per_patient_day": len(well_false) / well_days if well_days else None,
            "false_clinical_at_night": sum(f.night for f in well_false),
            "false_clinical_by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1])),
            # which signs made the false NEWS2 alerts: an alert counts once for each
            "false_news2_by_scored": dict(
                Counter(
                    p for f in well_false if f.rule_id == "news2" for p in f.scored
                ).most_common()
            ),
            "false_clinical_by_priority": {
                p: sum(f.priority == p for f in well_false) for p in ("high", "medium", "low")
            },
            "clinical_alerts_before_onset": sum(f.before_onset for f in false),
            "false_clinical_late": sum(f.late for f in well_false),
            "technical_alerts": len(technical),
            "technical_by_rule": dict(Counter(t.rule_id for t in technical).most_common()),
            "technical_per_patient_day": len(technical) / all_days if all_days else None,
        }

    out = {
        "overall": block(None),
        "protocols": {p: block(p) for p in protocols},
        "subgroups": _subgroups(score),
    }
    overall = out["overall"]
    overall["targets"] = {
        "every_deterioration_detected": overall["clinical_detected"] == overall["clinical_events"],
        "median_under_30_min": (overall["median_min_from_abnormal"] or 0) < TARGET_MEDIAN_MIN,
        "false_clinical_at_most_0_2_per_patient_day": (
            overall["false_clinical_per_patient_day"] or 0
        )
        <= TARGET_FALSE_PER_DAY,
    }
    return out


SUBGROUP_ORDER = ("age", "copd", "osa", "obesity", "beta_blocker", "low_bp", "kit", "protocol")


def _subgroups(score: Score) -> dict[str, dict[str, dict[str, Any]]]:
    """Per dimension (age band, COPD, OSA, ...) and subgroup: deteriorations detected by
    a related alert (and by any alert), false clinical alerts per well patient-day."""
    dims = sorted(
        {d for e in score.events for d in e.groups} | {d for d, _ in score.well_days_by_group},
        key=lambda d: SUBGROUP_ORDER.index(d) if d in SUBGROUP_ORDER else len(SUBGROUP_ORDER),
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for dim in dims:
        names = sorted(
            {e.groups[dim] for e in score.events if dim in e.groups}
            | {g for d, g in score.well_days_by_group if d == dim}
        )
        out[dim] = {}
        for name in names:
            es = [e for e in score.events if e.category == "clinical" and e.groups.get(dim) == name]
            false = [
                f for f in score.false_alerts if not f.before_onset and f.groups.get(dim) == name
            ]
            days = score.well_days_by_group.get((dim, name), 0.0)
            out[dim][name] = {
                "clinical_events": len(es),
                "clinical_detected": sum(e.detected for e in es),
                "clinical_detected_any_alert": sum(e.any_alert_ms is not None for e in es),
                "well_patient_days": days,
                "false_clinical_alerts": len(false),
                "false_clinical_per_patient_day": len(false) / days if days else None,
                "false_clinical_at_night": sum(f.night for f in false),
            }
    return out


def _subgroup_table(groups: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    lines = [
        "| subgroup | deteriorations detected (related alert) | by any alert | "
        "false clinical alerts / well patient-day | of them at night |",
        "|---|---|---|---|---|",
    ]
    for dim, block in groups.items():
        for name, g in block.items():
            n = g["clinical_events"]
            lines.append(
                f"| {dim.replace('_', ' ')}: {name} "
                f"| {g['clinical_detected']}/{n} | {g['clinical_detected_any_alert']}/{n} "
                f"| {_fmt(g['false_clinical_per_patient_day'], 3)} "
                f"({g['false_clinical_alerts']} in {g['well_patient_days']:.0f} days) "
                f"| {g['false_clinical_at_night']} |"
            )
    return lines


def _fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _condition_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| condition | detected (related alert) | by any alert | median min from abnormal "
        "| worst | median min from onset | worst | first alert by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['condition'].replace('_', ' ')} ({r['category']}) "
            f"| {r['detected']}/{r['events']} | {r['detected_any_alert']}/{r['events']} "
            f"| {_fmt(r['median_min_from_abnormal'])} | {_fmt(r['worst_min_from_abnormal'])} "
            f"| {_fmt(r['median_min_from_onset'])} | {_fmt(r['worst_min_from_onset'])} "
            f"| {', '.join(r['first_rules'])} |"
        )
    return lines


def _signed(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def _margin_table(margins: Sequence[MissMargin]) -> list[str]:
    """One row per metric of each missed deterioration (``margins``)."""
    lines = [
        "Usual: the median of the patient's readings of the same kind (waking, or asleep) "
        "in the 48 h before the onset. Moved: the change from it of the reading that went "
        "furthest the complication's way (then of the second furthest, for a rule that "
        "confirms), among those measured after the onset and in the database before the "
        "deadline. Well days as far: the share of well "
        "patient-days (from their third day, against their own 48 h before) whose "
        "readings moved as far the same way, the least a rule catching the miss on that "
        "move alone would fire on (the budget: 0.2 false alerts a well patient-day for "
        "every rule together).",
        "",
        "| patient | condition | metric | readings | moved | well days as far "
        "| second | well days as far |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in margins:
        digits = 0 if BY_NAME[g.metric].decimals == 0 else 1
        lines.append(
            f"| {g.patient_id} | {g.condition.replace('_', ' ')} "
            f"| {g.metric}{' (asleep)' if g.asleep else ''} | {g.readings} "
            f"| {_signed(g.furthest, digits)} | {_share(g.well_share)} "
            f"| {_signed(g.second, digits)} | {_share(g.well_share_second)} |"
        )
    return lines


def markdown(
    s: Mapping[str, Any], meta: Mapping[str, Any], margins: Sequence[MissMargin] = ()
) -> str:
    """Tables for people: per condition, then per protocol."""
    lines = [
        f"# Alert quality: {meta['patients']} simulated patients, {meta['days']:g} days "
        f"({meta.get('cohort', 'realistic')} cohort, seed {meta['seed']}"
        f" ({meta.get('seed_role', 'exploration')}), protocols: {meta['protocols_source']})",
        "",
        "Detected: a RELATED alert (its rule watches a metric the complication changes, or a "
        "NEWS2 that scored on one) between onset and deadline. Tune on seed 1; seed 2 is "
        "held out.",
        "",
        *_condition_table(s["overall"]["conditions"]),
    ]
    if "full_set_requests" in meta:
        lines += [
            "",
            f"Full-set requests to the patients' phones (one reading off, the others not "
            f"fresh): {meta['full_set_requests']} "
            f"({meta['full_set_requests_per_patient_day']:.3f} a patient-day; "
            f"{meta.get('full_set_requests_uneventful_per_patient_day', 0):.3f} a day of a "
            f"patient with no complication), {meta['full_set_answered']} answered.",
        ]
    for name, block in s["protocols"].items():
        lines += ["", f"## {name.replace('_', ' ')}", "", *_condition_table(block["conditions"])]
    lines += [
        "",
        "## Per protocol",
        "",
        "| protocol | deteriorations detected | median min from abnormal | "
        "false clinical alerts / patient-day (well) | before onset | "
        "technical alerts / patient-day |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in [*s["protocols"].items(), ("all", s["overall"])]:
        lines.append(
            f"| {name.replace('_', ' ')} | {b['clinical_detected']}/{b['clinical_events']} "
            f"| {_fmt(b['median_min_from_abnormal'])} "
            f"| {_fmt(b['false_clinical_per_patient_day'], 3)} "
            f"({b['false_clinical_alerts']} in {b['well_patient_days']:.0f} days) "
            f"| {b['clinical_alerts_before_onset']} "
            f"| {_fmt(b['technical_per_patient_day'], 2)} |"
        )
    o = s["overall"]
    if s.get("subgroups"):
        lines += ["", "## Per subgroup", "", *_subgroup_table(s["subgroups"])]
    lines += [
        "",
        f"Deteriorations detected by a related alert: {o['clinical_detected']}/"
        f"{o['clinical_events']}; by any clinical alert: {o['clinical_detected_any_alert']}/"
        f"{o['clinical_events']}. False clinical alerts at night (22:00-07:00 at home): "
        f"{o['false_clinical_at_night']} of {o['false_clinical_alerts']}.",
        "",
        "Missed with a reading past a fixed limit before the deadline (a single reliable "
        "waking reading beyond a related spot-check limit, or a shock index beyond its "
        "limit): "
        f"{o.get('clinical_missed_beyond_limit_in_time', 0)} of "
        f"{o['clinical_events'] - o['clinical_detected']} missed; the others had no "
        "reading past a fixed limit in time.",
        "",
        "False clinical alerts by rule: "
        + (", ".join(f"{k} {v}" for k, v in o["false_clinical_by_rule"].items()) or "none")
        + f"; of them, opened late (homes back online): {o['false_clinical_late']}",
        "",
        "False NEWS2 alerts by the parameters that scored at their opening (an alert "
        "counts once for each): "
        + (", ".join(f"{k} {v}" for k, v in o["false_news2_by_scored"].items()) or "none"),
        "",
        "Technical alerts by rule: "
        + (", ".join(f"{k} {v}" for k, v in o["technical_by_rule"].items()) or "none"),
        "",
        "Targets: "
        + ", ".join(f"{TARGET_LABELS[k]}: {'yes' if v else 'NO'}" for k, v in o["targets"].items()),
    ]
    if margins:
        lines += ["", "## Missed deteriorations: how far their readings moved", ""]
        lines += _margin_table(margins)
    return "\n".join(lines) + "\n"


def plot(s: Mapping[str, Any], score: Score, path: Path) -> None:
    """Three panels: detection per condition, minutes to alert, false alerts per day."""
    rows = s["overall"]["conditions"]
    names = [r["condition"].replace("_", " ") for r in rows]
    groups = s.get("subgroups") or {}
    panels = 4 if groups else 3
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 6), constrained_layout=True)

    ax = axes[0]
    rate = [100 * r["detected"] / r["events"] for r in rows]
    colours = ["#2e7d32" if x == 100 else "#c62828" for x in rate]
    ax.barh(names, rate, color=colours)
    for i, r in enumerate(rows):
        colour = "white" if rate[i] > 15 else "black"
        ax.text(2, i, f"{r['detected']}/{r['events']}", va="center", color=colour)
    ax.set_xlim(0, 100)
    ax.set_xlabel("events detected in time (%)")
    ax.set_title("Detection per condition")
    ax.invert_yaxis()

    ax = axes[1]
    for i, r in enumerate(rows):
        xs = [
            e.minutes_from_abnormal
            for e in score.events
            if e.condition == r["condition"] and e.minutes_from_abnormal is not None
        ]
        ax.scatter(xs, [i] * len(xs), alpha=0.6, s=18, color="#1565c0")
        if r["median_min_from_abnormal"] is not None:
            ax.plot([r["median_min_from_abnormal"]] * 2, [i - 0.3, i + 0.3], color="black")
    ax.axvline(TARGET_MEDIAN_MIN, color="#c62828", linestyle="--", label="30 min target")
    ax.set_yticks(range(len(names)), names)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)  # an alert never precedes the abnormal signal in this measure
    ax.set_xlabel("minutes from abnormal signal to alert (bar: median)")
    ax.set_title("Time to alert")
    ax.invert_yaxis()
    ax.legend(loc="lower right")

    ax = axes[2]
    protos = list(s["protocols"])
    per_day = [s["protocols"][p]["false_clinical_per_patient_day"] or 0 for p in protos]
    ax.bar([p.replace("_", "\n") for p in protos], per_day, color="#6a1b9a")
    ax.axhline(TARGET_FALSE_PER_DAY, color="#c62828", linestyle="--", label="0.2 target")
    ax.set_ylabel("false clinical alerts per patient-day")
    ax.set_title("False alerts on uneventful recoveries")
    ax.legend()

    if groups:
        ax = axes[3]
        labels, missed, false = [], [], []
        for dim, block in groups.items():
            if dim == "protocol":
                continue
            for name, g in block.items():
                labels.append(f"{dim.replace('_', ' ')}: {name}")
                n = g["clinical_events"]
                missed.append(100 * (n - g["clinical_detected"]) / n if n else 0.0)
                false.append(g["false_clinical_per_patient_day"] or 0.0)
        y = np.arange(len(labels))
        ax.barh(y - 0.2, missed, height=0.4, color="#c62828", label="% missed (related)")
        ax2 = ax.twiny()
        ax2.barh(y + 0.2, false, height=0.4, color="#6a1b9a", label="false / patient-day")
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("deteriorations missed by a related alert (%)", color="#c62828")
        ax2.set_xlabel("false clinical alerts per well patient-day", color="#6a1b9a")
        ax.set_title("Per subgroup")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    out_dir: Path,
    s: Mapping[str, Any],
    score: Score,
    meta: Mapping[str, Any],
    margins: Sequence[MissMargin] = (),
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "alert-quality.json",
        "markdown": out_dir / "alert-quality.md",
        "png": out_dir / "alert-quality.png",
    }
    doc = {
        "meta": dict(meta),
        "summary": s,
        "events": [
            {
                **asdict(e),
                "minutes_from_onset": e.minutes_from_onset,
                "minutes_from_abnormal": e.minutes_from_abnormal,
            }
            for e in score.events
        ],
        "false_alerts": [asdict(f) for f in score.false_alerts],
        "miss_margins": [asdict(g) for g in margins],
    }
    paths["json"].write_text(json.dumps(doc, indent=1), encoding="utf-8")
    paths["markdown"].write_text(markdown(s, meta, margins), encoding="utf-8")
    plot(s, score, paths["png"])
    return paths
