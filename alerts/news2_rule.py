"""NEWS2 as a rule (RCP 2017): the latest settled value of each parameter, judged as
the patient's own usual values and nights allow (a saturation that runs low by day, a
sleeping saturation or pulse within their own nights), scored on the patient's SpO2
scale, an alert from the band the protocol (or a clinician, per patient) sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts.evaluation_round import MINUTE_S, Round
from alerts.lifecycle import RANK, Finding
from alerts.limits import news2_scale_override
from alerts.protocol import News2Rule
from alerts.sleep import asleep_when_taken
from alerts.window import Window, metric_of

NEWS2_METRICS = ("resp_rate_per_min", "spo2_pct", "bp_systolic_mmhg", "heart_rate_bpm", "temp_c")
# the NEWS2 parameters in the order of ``news2.News2Result.scores``: a finding's evidence
# ``scored_params`` lists those that scored (which signs made the score)
NEWS2_SCORED_AS = (
    "resp_rate_per_min",
    "spo2_pct",
    "on_oxygen",
    "bp_systolic_mmhg",
    "heart_rate_bpm",
    "consciousness",
    "temp_c",
)
# asleep, a pulse at the patient's usual night less this margin scores as NEWS2's 51/min
PULSE_NORMAL_FLOOR = 51.0
NIGHT_PULSE_MARGIN = 5.0
# the top of NEWS2's normal respiratory band (12-20/min)
RESP_NORMAL_TOP = 20.0


@dataclass(frozen=True, slots=True)
class News2Score:
    """A patient's latest NEWS2, kept for the dashboard's ordering even when no alert fires."""

    patient_id: int
    total: int
    band: int
    complete: bool


def news2_findings(
    rnd: Round,
    rule: News2Rule,
    short: Window,
    scores: list[News2Score] | None,
    usual_night: dict[str, NDArray[np.float64]],
    usual_day: dict[str, NDArray[np.float64]],
) -> list[Finding]:
    """The rule's findings from ``short`` (one-minute bins of the NEWS2 parameters);
    every patient's score goes to ``scores`` if given."""
    ids, ctx, mask = rnd.ids, rnd.ctx, rnd.mask
    usual_night_spo2 = usual_night.get("spo2_pct")
    usual_night_pulse = usual_night.get("heart_rate_bpm")
    latest = {
        m: n2.latest(metric_of(short, m), MINUTE_S, rule.freshness_s, rule.settle_s)
        for m in NEWS2_METRICS
    }
    if rule.resp_rate_settle_s > rule.settle_s:
        # a patch's respiratory rate (talking, walking) over the longer span
        latest["resp_rate_per_min"] = n2.latest(
            metric_of(short, "resp_rate_per_min"),
            MINUTE_S,
            rule.freshness_s,
            rule.resp_rate_settle_s,
        )
    day_lift = np.zeros(len(ids))
    if rule.spo2_usual_allowance and "spo2_pct" in usual_day:
        # a patient whose own saturation runs low (COPD not on scale 2, an old lung):
        # their usual value is not a new sign; judged as lifted by how far it runs
        # below 96 % (at most the allowance); a fall from it still scores
        usual = usual_day["spo2_pct"]
        day_lift = np.nan_to_num(np.clip(96.0 - usual, 0.0, rule.spo2_usual_allowance))
        value, has = latest["spo2_pct"]
        latest["spo2_pct"] = (value + day_lift, has)
    if rule.resp_rate_usual_allowance and "resp_rate_per_min" in usual_day:
        # likewise a patient who breathes fast at rest from the first day (COPD): judged
        # as lowered by how far their usual rate runs above 20/min (at most the allowance)
        usual = usual_day["resp_rate_per_min"]
        drop = np.nan_to_num(np.clip(usual - RESP_NORMAL_TOP, 0.0, rule.resp_rate_usual_allowance))
        value, has = latest["resp_rate_per_min"]
        latest["resp_rate_per_min"] = (value - drop, has)
    # a reading is judged as sleeping or awake by when it was taken, not by the clock
    # now: the latest settled value stays scored for hours (``freshness_s``)
    taken_asleep = asleep_when_taken(
        rnd,
        rule.night_start_h,
        rule.night_end_h,
        rule.night_worn_extends_h,
        short,
        ("spo2_pct", "heart_rate_bpm"),
    )
    spo2_asleep, pulse_asleep = taken_asleep["spo2_pct"], taken_asleep["heart_rate_bpm"]
    if rule.night_spo2_settle_s > rule.settle_s:
        slow = n2.latest(
            metric_of(short, "spo2_pct"), MINUTE_S, rule.freshness_s, rule.night_spo2_settle_s
        )
        # asleep, the saturation is judged as the patient's own nights allow: raised by
        # how far their usual night runs below 96 % (at most the allowance), or by the
        # allowance for an unknown night; never less than by day (a saturation that runs
        # low awake runs lower asleep, not higher)
        usual = usual_night_spo2 if usual_night_spo2 is not None else np.full(len(ids), np.nan)
        deficit = np.clip(96.0 - usual, 0.0, rule.night_spo2_allowance)
        night_lift = np.where(np.isnan(usual), rule.night_spo2_unknown_allowance, deficit)
        lift = np.maximum(night_lift, day_lift)
        day = latest["spo2_pct"]
        latest["spo2_pct"] = (np.where(spo2_asleep, slow[0] + lift, day[0]), day[1])
    if rule.night_pulse_allowance or rule.night_pulse_beta_blocker_allowance:
        # asleep, a slow pulse within the patient's own nights is their rest, not a sign:
        # raised toward 51/min by how far their usual night runs below 56 (a beta-blocked
        # patient's pulse, while their nights are unknown, by the beta-blocker allowance)
        usual_hr = usual_night_pulse if usual_night_pulse is not None else np.full(len(ids), np.nan)
        own = np.clip(
            PULSE_NORMAL_FLOOR + NIGHT_PULSE_MARGIN - usual_hr, 0.0, rule.night_pulse_allowance
        )
        unknown = np.where(ctx.beta_blocker[mask], rule.night_pulse_beta_blocker_allowance, 0.0)
        lift = np.where(np.isnan(usual_hr), unknown, own)
        pulse, has = latest["heart_rate_bpm"]
        raised = np.where(
            pulse < PULSE_NORMAL_FLOOR, np.minimum(pulse + lift, PULSE_NORMAL_FLOOR), pulse
        )
        latest["heart_rate_bpm"] = (np.where(pulse_asleep, raised, pulse), has)
    scale = news2_scale_override(rnd)
    scale2 = np.where(np.isnan(scale), ctx.spo2_scale2[mask], scale == 2)
    result = n2.news2(
        resp_rate=latest["resp_rate_per_min"][0],
        resp_rate_present=latest["resp_rate_per_min"][1],
        spo2=latest["spo2_pct"][0],
        spo2_present=latest["spo2_pct"][1],
        on_oxygen=ctx.on_oxygen[mask],
        systolic=latest["bp_systolic_mmhg"][0],
        systolic_present=latest["bp_systolic_mmhg"][1],
        pulse=latest["heart_rate_bpm"][0],
        pulse_present=latest["heart_rate_bpm"][1],
        consciousness_alert=np.ones(len(ids), dtype=np.bool_),
        temp_c=latest["temp_c"][0],
        temp_present=latest["temp_c"][1],
        spo2_scale2=scale2,
    )
    if scores is not None:
        scores += [
            News2Score(int(pid), int(total), int(band), bool(complete))
            for pid, total, band, complete in zip(
                ids.tolist(),
                result.total.tolist(),
                result.band.tolist(),
                result.complete.tolist(),
                strict=True,
            )
        ]
    # asleep, a single red score from SpO2 alone is the sleeping saturation the SpO2
    # rules judge against the patient's own nights; it still counts in the total
    spo2_alone_asleep = np.zeros(len(ids), dtype=np.bool_)
    if not rule.night_spo2_single_opens:
        threes = result.scores == 3
        spo2_alone_asleep = spo2_asleep & threes[:, 1] & (threes.sum(axis=1) == 1)
    by_band = {
        n2.News2Band.LOW_MEDIUM: rule.low_medium,
        n2.News2Band.MEDIUM: rule.medium,
        n2.News2Band.HIGH: rule.high,
    }
    # a clinician may raise, per patient, the band from which NEWS2 opens an alert
    # (override ``alert_from_band``: 1 low-medium, 2 medium, 3 high), e.g. for a patient
    # whose chronic state already scores a 3
    from_band = rnd.overridden(rule.id, "alert_from_band", np.ones(len(ids)))
    priorities: list[str] = []
    firing = np.zeros(len(ids), dtype=np.bool_)
    for i, band in enumerate(result.band.tolist()):
        prio = by_band.get(n2.News2Band(band))
        ok = bool(result.complete[i]) or not rule.require_complete
        firing[i] = prio is not None and ok and band >= min(from_band[i], 3)
        if band == n2.News2Band.LOW_MEDIUM and spo2_alone_asleep[i]:
            firing[i] = False
        priorities.append(prio if prio is not None else "low")
    capped = [p if RANK[p] <= RANK[rule.priority] else rule.priority for p in priorities]
    scored = np.asarray(
        [
            ",".join(NEWS2_SCORED_AS[j] for j in np.flatnonzero(row).tolist())
            for row in (result.scores > 0)
        ],
        dtype=object,
    )
    return rnd.findings(
        rule,
        firing,
        {
            "score": result.total,
            "band": result.band,
            "complete": result.complete,
            "scored_params": scored,
        },
        None,
        capped,
    )
