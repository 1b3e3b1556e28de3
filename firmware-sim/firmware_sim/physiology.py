"""A seeded model of a patient recovering at home after surgery: the true value of each
vital sign at any instant, and, separately, what each kind of home device would measure.

Keeping truth and measurement apart is the point: tests and benchmarks score the pipeline
against what the body did, not against what a noisy cuff said. Truth is a deterministic
function of time (baselines, a circadian rhythm, sleep and activity, a post-operative
trend that settles over days, slow random wander built from seeded sinusoids), so it can
be asked for any instant in any order. Measurements draw noise and artifacts from the
generator the caller passes, so a device's schedule decides reproducibility.

Complications (infection, bleeding, embolism, fluid overload) are layered on later as
``Deviation`` objects that add deltas to the truth over time; only an uneventful recovery
is modelled here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

import numpy as np

from firmware_sim.ieee11073 import Special
from firmware_sim.population import Profile

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

TRUTH_METRICS = (
    "heart_rate_bpm",
    "spo2_pct",
    "temp_c",
    "bp_systolic_mmhg",
    "bp_diastolic_mmhg",
    "bp_mean_mmhg",
    "resp_rate_per_min",
    "weight_kg",
    "glucose_mmol_l",
    "pain_score",
)


def derive_rng(seed: int, key: str, *words: int) -> np.random.Generator:
    """A generator for one purpose (a patient, a device-day, a night): the same seed,
    key and words always give the same stream, and different ones independent streams."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, int.from_bytes(digest), *words])


class Deviation(Protocol):
    """A complication scenario: how much it shifts ``metric`` away from an uneventful
    recovery at ``t_ms`` (0 before its onset). Deltas of several deviations add up;
    ``bp_mean_mmhg`` follows the systolic and diastolic deltas by itself."""

    def delta(self, metric: str, t_ms: int) -> float: ...


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The patient's own values once recovered, drawn from adult population spreads."""

    age_years: float
    height_m: float
    weight_kg: float
    heart_rate_bpm: float
    spo2_pct: float
    temp_c: float
    bp_systolic_mmhg: float
    bp_diastolic_mmhg: float
    resp_rate_per_min: float
    glucose_mmol_l: float
    daily_steps: float
    bedtime_h: float  # local hour of falling asleep (may exceed 24)
    sleep_h: float  # hours asleep a night

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Baseline:
        age = float(rng.uniform(30, 82))
        height = _clip(float(rng.normal(1.70, 0.09)), 1.50, 1.95)
        bmi = _clip(float(rng.normal(27.0, 4.0)), 19.0, 40.0)
        systolic = _clip(float(rng.normal(118 + 0.3 * age, 12)), 100, 165)
        diastolic = _clip(float(rng.normal(77, 7)), 58, min(100, systolic - 30))
        return cls(
            age_years=age,
            height_m=height,
            weight_kg=round(bmi * height**2, 1),
            heart_rate_bpm=_clip(float(rng.normal(70, 8)), 52, 92),
            spo2_pct=_clip(float(rng.normal(97.0, 1.0)), 94, 99.5),
            temp_c=_clip(float(rng.normal(36.7, 0.2)), 36.2, 37.2),
            bp_systolic_mmhg=systolic,
            bp_diastolic_mmhg=diastolic,
            resp_rate_per_min=_clip(float(rng.normal(15, 1.8)), 11, 20),
            glucose_mmol_l=_clip(float(rng.normal(5.4, 0.6)), 4.2, 7.2),
            daily_steps=_clip(float(rng.lognormal(math.log(5500), 0.4)), 1500, 14000),
            bedtime_h=_clip(float(rng.normal(23.0, 0.7)), 21.0, 25.5),
            sleep_h=_clip(float(rng.normal(7.6, 0.6)), 6.0, 9.0),
        )

    @classmethod
    def for_profile(cls, rng: np.random.Generator, p: Profile) -> Baseline:
        """The resting values of the patient a ``Profile`` describes.

        - Systolic pressure rises about 0.5 mmHg a year of age; treated hypertensives
          sit around 135-150 at home (ESH 2023 home targets; assumption for the spread);
          constitutional low pressure around 95-105.
        - Resting heart rate: beta-blockers lower it by about 10-15/min (Cucherat 2007,
          Eur Heart J meta-analysis: -12/min average in heart-rate reduction trials).
        - SpO2 awake: about 96-97 % in younger adults, about 95 % over 70 (Crapo et al.
          1999, Am J Respir Crit Care Med: arterial saturation falls slowly with age);
          obesity lowers it a little; COPD 92-95 %, and 88-92 % for patients prescribed
          that target (O'Driscoll et al. 2017, BTS guideline).
        - Breathing: COPD 2-4/min faster at rest (assumption).
        """
        age = p.age_years
        if p.low_bp:
            systolic = float(rng.normal(100, 4))
        elif p.hypertension:
            systolic = float(rng.normal(142, 8))
        else:
            systolic = float(rng.normal(112 + 0.3 * age, 9))
        systolic = _clip(systolic, 88, 175)
        diastolic = _clip(float(rng.normal(0.55 * systolic + 10, 6)), 52, systolic - 30)
        heart_rate = float(rng.normal(72, 8)) - (12 if p.beta_blocker else 0)
        spo2 = float(rng.normal(97.2 - 0.03 * max(0.0, age - 40), 0.8))
        spo2 -= 0.15 * max(0.0, p.bmi_kg_m2 - 30)
        if p.copd_hypoxaemic:
            spo2 = float(rng.uniform(88.5, 91.5))
        elif p.copd:
            spo2 = min(spo2, float(rng.normal(93.8, 1.0)))
        resp = float(rng.normal(15, 1.8)) + (3 if p.copd else 0)
        return cls(
            age_years=age,
            height_m=p.height_m,
            weight_kg=round(p.bmi_kg_m2 * p.height_m**2, 1),
            heart_rate_bpm=_clip(heart_rate, 48, 95),
            spo2_pct=_clip(spo2, 87.5, 99.5),
            temp_c=_clip(float(rng.normal(36.6 - 0.003 * max(0.0, age - 50), 0.2)), 36.0, 37.2),
            bp_systolic_mmhg=systolic,
            bp_diastolic_mmhg=diastolic,
            resp_rate_per_min=_clip(resp, 11, 24),
            glucose_mmol_l=_clip(float(rng.normal(5.6, 0.7)), 4.2, 8.0),
            daily_steps=_clip(
                float(rng.lognormal(math.log(6000 - 40 * max(0.0, age - 50)), 0.45)), 800, 14000
            ),
            bedtime_h=_clip(float(rng.normal(23.0, 0.7)), 21.0, 25.5),
            sleep_h=_clip(float(rng.normal(7.4 - 0.01 * max(0.0, age - 50), 0.6)), 5.5, 9.0),
        )


@dataclass(frozen=True, slots=True)
class Recovery:
    """Post-operative excess over baseline at the time of surgery, fading exponentially:
    inflammatory tachycardia and low-grade fever, atelectasis, fluid retention, stress
    hyperglycaemia, pain, and mobility coming back."""

    surgery_ms: int
    hr_excess_bpm: float
    temp_excess_c: float
    spo2_deficit_pct: float
    resp_excess_per_min: float
    weight_excess_kg: float
    glucose_excess_mmol_l: float
    pain_initial: float
    tau_days: float
    tau_weight_days: float
    tau_pain_days: float
    tau_mobility_days: float

    @classmethod
    def draw(cls, rng: np.random.Generator, surgery_ms: int) -> Recovery:
        return cls(
            surgery_ms=surgery_ms,
            hr_excess_bpm=_clip(float(rng.normal(14, 4)), 4, 25),
            temp_excess_c=_clip(float(rng.normal(0.5, 0.15)), 0.1, 0.9),
            spo2_deficit_pct=_clip(float(rng.normal(2.0, 0.6)), 0.5, 3.5),
            resp_excess_per_min=_clip(float(rng.normal(3, 1)), 0.5, 6),
            weight_excess_kg=_clip(float(rng.normal(1.8, 0.6)), 0.3, 3.5),
            glucose_excess_mmol_l=_clip(float(rng.normal(1.5, 0.5)), 0.2, 3),
            pain_initial=_clip(float(rng.normal(6.5, 1.2)), 3, 9),
            tau_days=_clip(float(rng.normal(2.5, 0.5)), 1.5, 4),
            tau_weight_days=_clip(float(rng.normal(4, 1)), 2, 7),
            tau_pain_days=_clip(float(rng.normal(6, 1.5)), 3, 10),
            tau_mobility_days=_clip(float(rng.normal(5, 1.2)), 2.5, 9),
        )

    def remaining(self, t_ms: int, tau_days: float) -> float:
        """The share of the post-operative excess still present at ``t_ms``."""
        days = max(0.0, (t_ms - self.surgery_ms) / DAY_MS)
        return math.exp(-days / tau_days)


@dataclass(frozen=True, slots=True)
class Circadian:
    """Day-night rhythm (local time): cosine peaks, and what sleep takes away."""

    hr_amplitude_bpm: float = 4.0
    hr_peak_h: float = 15.0
    temp_amplitude_c: float = 0.25
    temp_peak_h: float = 17.5
    bp_amplitude_mmhg: float = 4.0
    bp_peak_h: float = 11.0
    hr_sleep_drop_bpm: float = 7.0
    systolic_night_dip: float = 0.12  # 'dipper' pattern: 10-20 % lower asleep
    diastolic_night_dip: float = 0.10
    resp_sleep_drop_per_min: float = 1.5
    spo2_sleep_drop_pct: float = 0.7
    morning_surge_mmhg: float = 7.0  # in the two hours after waking


@dataclass(frozen=True, slots=True)
class SensorNoise:
    """Random error of one device for one metric: a per-reading normal deviation (as a
    fraction of the value when ``relative``) on top of a fixed bias."""

    sd: float
    bias: float = 0.0
    relative: bool = False


@dataclass(frozen=True, slots=True)
class DeviceAccuracy:
    """Typical accuracy of consumer home devices, per metric they measure."""

    oximeter_spo2: SensorNoise = SensorNoise(1.2)  # ISO 80601-2-61: Arms <= 2-3 %
    oximeter_pulse: SensorNoise = SensorNoise(1.5)
    cuff_systolic: SensorNoise = SensorNoise(5.0)  # ISO 81060-2: mean error <= 5, sd <= 8
    cuff_diastolic: SensorNoise = SensorNoise(4.0)
    cuff_pulse: SensorNoise = SensorNoise(2.0)
    # an ear thermometer in a patient's own hands: aim and ear canal add to the device's
    # error (one person's ear readings from one morning to the next: Sund-Levander 2004)
    thermometer: SensorNoise = SensorNoise(0.25, bias=-0.05)
    scale: SensorNoise = SensorNoise(0.1)
    patch_heart_rate: SensorNoise = SensorNoise(1.5)
    patch_resp_rate: SensorNoise = SensorNoise(1.0)
    glucose_meter: SensorNoise = SensorNoise(0.06, relative=True)  # ISO 15197: +/-15 %
    pain_report: SensorNoise = SensorNoise(0.7)


@dataclass(frozen=True, slots=True)
class ArtifactRates:
    """How often devices misbehave, as probabilities per reading."""

    oximeter_motion_asleep: float = 0.01
    oximeter_motion_active: float = 0.25  # at full activity; scales with activity
    oximeter_spurious_low_given_motion: float = 0.45  # SpO2 falsely low by 4-15 %
    oximeter_dropout_given_motion: float = 0.15  # NaN SpO2 and pulse
    oximeter_questionable_given_motion: float = 0.5  # device also says 'questionable'
    device_nres: float = 0.002  # a value not representable at the device's resolution
    cuff_loose: float = 0.02  # reads high
    cuff_movement: float = 0.04  # noisier
    cuff_failure: float = 0.01  # every value NaN
    thermometer_low: float = 0.01  # 'Lo': probe not in the ear, -INF
    scale_unsuccessful: float = 0.01  # 0xFFFF
    patch_contact_loss: float = 0.005
    glucose_nres: float = 0.005


@dataclass(frozen=True, slots=True)
class Observation:
    """One measured quantity: the truth at that instant and what the device made of it
    (before the characteristic's rounding)."""

    metric: str
    truth: float
    value: float | Special


@dataclass(frozen=True, slots=True)
class OximeterReading:
    spo2: Observation
    pulse: Observation
    motion: bool
    questionable: bool
    # the oximeter's own irregular-pulse sign (on its display: the PLX profile has no bit
    # for it, so it never reaches the gateway)
    irregular: bool = False


@dataclass(frozen=True, slots=True)
class CuffReading:
    systolic: Observation
    diastolic: Observation
    mean: Observation
    pulse: Observation
    body_movement: bool
    cuff_loose: bool
    irregular: bool = False  # Blood Pressure Measurement status: irregular pulse detected


@dataclass(frozen=True, slots=True)
class PatchReading:
    heart_rate: Observation
    contact: bool


@dataclass(frozen=True, slots=True)
class AtrialFibrillation:
    """New atrial fibrillation from ``onset_ms`` to ``end_ms`` (spontaneous return to
    sinus rhythm, or the end of follow-up): the ventricles beat irregularly at about
    ``rate_bpm`` whatever the sinus node would do. Post-operative AF is common after
    cardiac surgery (20-40 %, peak on days 2-4: Echahidi et al. 2008, J Am Coll
    Cardiol), less after thoracic (10-20 %) and major non-cardiac surgery; most episodes
    end within a day or two. A ``Deviation`` adding nothing: the patient model asks
    ``active`` and replaces the sinus rate."""

    onset_ms: int
    end_ms: int
    rate_bpm: float

    def active(self, t_ms: int) -> bool:
        return self.onset_ms <= t_ms < self.end_ms

    def delta(self, metric: str, t_ms: int) -> float:
        return 0.0


# Beat-to-beat variability.
# - Sinus rhythm: RMSSD about 42 ms (sd 15) in healthy adults at rest (Nunan et al.
#   2010, Pacing Clin Electrophysiol, review of short-term HRV norms), falling with age
#   to about 20 ms in the 70s (Umetani et al. 1998, J Am Coll Cardiol), and with a
#   faster rate (variability scales roughly with the RR interval squared). Successive
#   intervals are correlated (an AR(1) series, a smooth respiratory modulation), which
#   keeps sinus rhythm regular in the sample-entropy sense.
# - Atrial fibrillation: intervals independent from beat to beat with a coefficient of
#   variation about 0.2 (Tateno & Glass 2001, Med Biol Eng Comput: AF RR and delta-RR
#   distributions), so RMSSD well above 100 ms and no regularity.
# - Ectopic beats: a premature beat then a compensatory pause; frequent with age
#   (assumption 1 in 500 beats, 1 in 150 over 70).
SINUS_AR = 0.8
AF_RR_CV = 0.2
_AR_TAPS = 40
_AR_KERNEL = SINUS_AR ** np.arange(_AR_TAPS + 1, dtype=np.float64)


# Day-to-day body weight: first-morning body mass of healthy people wanders by about
# 1 % from day to day (Cheuvront et al. 2004, Int J Sport Nutr Exerc Metab; the ACSM's
# 2 % dehydration line is set at twice it: Sawka et al. 2007), with weekly rhythms
# (heavier after weekends: Orsama et al. 2014, Obes Facts). Modelled as a wander with
# periods of one to seven days and a standard deviation of 0.5 % of body weight: two
# mornings in a row differ by 0.7 % (SD), and the morning weight is over 2 % under the
# highest of the 3 days before on about 1 % of days (3,000 simulated patients).
WEIGHT_WANDER_PCT = 0.5

# Body temperature of one person wanders more than a device's error: self-measured oral
# temperatures of healthy adults at home have a within-person SD of 0.40 °C (Frazer et
# al. 2019, J Med Eng Technol 43:323; between persons 0.26), and ear readings of one
# person differ by 0.2-1.7 °C from one morning to the next (Sund-Levander et al. 2004,
# Int J Nurs Pract). With the circadian rhythm, activity and the thermometer's own error,
# a wander of this SD gives the simulated well patients' readings a within-person SD of
# 0.37 °C (25 well patients, days 3-14), inside that study's 95 % CI (0.36-0.44).
TEMP_WANDER_C = 0.2


@dataclass(frozen=True, slots=True)
class _Wander:
    """Slow, smooth, seeded fluctuation with unit standard deviation: a sum of sinusoids
    with random periods (hours to a day) and phases."""

    terms: tuple[tuple[float, float, float], ...]  # (angular rate per ms, phase, weight)

    @classmethod
    def draw(cls, rng: np.random.Generator, min_h: float, max_h: float, k: int = 4) -> _Wander:
        periods = rng.uniform(min_h, max_h, k) * HOUR_MS
        weights = rng.uniform(0.5, 1.0, k)
        weights = weights / math.sqrt(float(np.sum(weights**2)) / 2)  # unit variance
        phases = rng.uniform(0, 2 * math.pi, k)
        return cls(
            tuple(
                (2 * math.pi / float(p), float(f), float(w))
                for p, f, w in zip(periods, phases, weights, strict=True)
            )
        )

    def __call__(self, t_ms: int) -> float:
        return sum(w * math.sin(rate * t_ms + phase) for rate, phase, w in self.terms)


@dataclass(frozen=True, slots=True)
class _Traits:
    """What a ``Profile`` changes in the body and in the devices, drawn once per patient;
    without a profile every trait is neutral and the patient is ``Baseline.draw``'s.

    - ``hr_gain``: the share of a tachycardic response that reaches the pulse. Beta-
      blockade blunts the heart-rate response to exercise, fever and blood loss (about
      a third to a half is left: assumption from the heart-rate reserve under beta-
      blockers); older hearts respond less too (maximal rate 208 - 0.7 x age: Tanaka et
      al. 2001, J Am Coll Cardiol).
    - ``fever_gain``: a blunted febrile response in some older patients (Norman 2000).
    - Sleep: ``rem_drop_pct`` the extra SpO2 fall in REM sleep (healthy people over 60
      spend about a tenth of sleep below 93 %: Gries & Brooks 1996, Chest; COPD patients
      desaturate further in REM: Fletcher et al. 1987, Chest); ``hypovent_drop_pct`` the
      sustained fall of obesity hypoventilation (Mokhlesi 2010); ``ahi_per_h`` and
      ``dip_pct`` the apnoea-hypopnoea index and the mean depth of its desaturations,
      deeper with body weight (a smaller lung oxygen store makes desaturation faster
      and deeper in obese patients; assumption: 4 % + 0.4 % per BMI unit above 25);
      after surgery the AHI rises, most on the 3rd night (Chung et al. 2014,
      Anesthesiology: AHI about 1.5-2x the pre-operative value on night 3).
    - Devices: fixed biases of this patient's measurements (see ``population``).
    """

    hr_gain: float = 1.0
    fever_gain: float = 1.0
    sleep_model: bool = False
    rem_drop_pct: float = 0.0
    hypovent_drop_pct: float = 0.0
    ahi_per_h: float = 0.0
    dip_pct: float = 0.0
    postop_ahi_peak: float = 0.0
    cuff_bias_mmhg: float = 0.0
    oximeter_bias_pct: float = 0.0
    poor_perfusion: bool = False
    oximeter_flags_irregular: bool = False
    thermometer_bias_c: float = 0.0
    irregular_spurious_p: float = 0.0
    rmssd_ms: float = 42.0
    ectopic_p: float = 0.002

    @classmethod
    def of(cls, p: Profile | None, rng: np.random.Generator) -> _Traits:
        if p is None:
            return cls()
        age = p.age_years
        gain = float(rng.uniform(0.3, 0.5)) if p.beta_blocker else 1.0
        if age >= 75:
            gain *= 0.8
        rem = float(rng.uniform(0.8, 2.2)) + 0.02 * max(0.0, age - 40)
        if p.copd:
            rem += float(rng.uniform(2.0, 5.0))
        cuff_bias = 0.0
        if p.standard_cuff_large_arm:
            # over-reading grows with arm size (BMI), from about 5 up to about 20 mmHg
            cuff_bias = _clip(5 + 1.5 * (p.bmi_kg_m2 - 30) + float(rng.normal(0, 3)), 3, 20)
        oxi = 0.0
        if p.nail_polish:
            oxi -= float(rng.uniform(1.0, 5.0))
        if p.dark_skin:
            oxi += float(rng.uniform(1.0, 2.0))
        return cls(
            hr_gain=gain,
            fever_gain=0.5 if p.blunted_fever else 1.0,
            sleep_model=True,
            rem_drop_pct=rem,
            hypovent_drop_pct=float(rng.uniform(3.0, 6.0)) if p.ohs else 0.0,
            ahi_per_h=p.osa_ahi_per_h,
            dip_pct=4.0 + 0.4 * max(0.0, p.bmi_kg_m2 - 25),
            postop_ahi_peak=float(rng.uniform(0.4, 0.9)),
            cuff_bias_mmhg=cuff_bias,
            oximeter_bias_pct=oxi,
            poor_perfusion=p.poor_perfusion,
            # some oximeters flag an irregular pulse (assumption: one in three models)
            oximeter_flags_irregular=bool(rng.random() < 0.33),
            thermometer_bias_c=p.thermometer_bias_c,
            # a cuff's irregular-heartbeat sign also lights up for ectopic beats
            irregular_spurious_p=0.02 + (0.03 if age >= 70 else 0.0),
            rmssd_ms=_clip(float(rng.normal(58 - 0.5 * (age - 20), 10)), 10, 80),
            ectopic_p=1 / 150 if age >= 70 else 1 / 500,
        )


def _smoothstep(x: float) -> float:
    """0 -> 1 over x in [-1, 1], smooth: falling asleep or waking is not a step."""
    return 0.5 + 0.5 * math.tanh(2.0 * x)


def _bump(hours_after: float, peak_h: float) -> float:
    """A rise and slow fall after an event (a meal, waking up), 1.0 at ``peak_h``."""
    if hours_after <= 0:
        return 0.0
    x = hours_after / peak_h
    return x * math.exp(1 - x)


MEALS_H = (7.75, 12.5, 19.25)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_STEPS_ACTIVITY_MEAN = 0.45


class Patient:
    """One patient: truth over time, and what each device kind measures of it.

    Baselines and the recovery are drawn from ``seed`` and ``key`` unless given; the
    circadian rhythm follows the local time of ``tz``, where the patient lives.
    """

    def __init__(
        self,
        key: str,
        seed: int,
        surgery: datetime,
        tz: tzinfo = UTC,
        *,
        baseline: Baseline | None = None,
        recovery: Recovery | None = None,
        circadian: Circadian | None = None,
        accuracy: DeviceAccuracy | None = None,
        artifacts: ArtifactRates | None = None,
        deviations: Sequence[Deviation] = (),
        profile: Profile | None = None,
    ) -> None:
        if surgery.tzinfo is None:
            raise ValueError("surgery time must be an aware datetime")
        self.key = key
        self.seed = seed
        self.tz = tz
        self.profile = profile
        self.surgery_ms = int(surgery.timestamp() * 1000)
        rng = derive_rng(seed, key, 0)
        if baseline is None and profile is not None:
            baseline = Baseline.for_profile(rng, profile)
        self.base = baseline or Baseline.draw(rng)
        self.rec = recovery or Recovery.draw(rng, self.surgery_ms)
        self.circadian = circadian or Circadian()
        self.accuracy = accuracy or DeviceAccuracy()
        self.artifacts = artifacts or ArtifactRates()
        self.deviations: list[Deviation] = list(deviations)
        self._hr_wander = _Wander.draw(rng, 2, 20)
        self._bp_wander = _Wander.draw(rng, 2, 20)
        self._temp_wander = _Wander.draw(rng, 3, 24)
        self._resp_wander = _Wander.draw(rng, 1, 12)
        self._activity_wander = _Wander.draw(rng, 0.5, 5)
        self._nights: dict[date, tuple[int, int]] = {}
        # devices ask for the same instant several times in a row (sleep, activity, each
        # metric): remembering the last answer halves the cost of a simulated day
        self._last_hour: tuple[int, float] = (-1, 0.0)
        self._last_asleep: tuple[int, float] = (-1, 0.0)
        self._apnoeas: dict[date, tuple[np.ndarray, np.ndarray]] = {}
        self._traits = _Traits.of(profile, derive_rng(seed, key, 9))
        # its own stream: adding it left every other draw of the patient unchanged
        self._weight_wander = _Wander.draw(derive_rng(seed, key, 14), 24, 168)

    def add_deviation(self, deviation: Deviation) -> None:
        self.deviations.append(deviation)

    def in_af(self, t_ms: int) -> AtrialFibrillation | None:
        """The atrial fibrillation under way at ``t_ms``, if any."""
        for d in self.deviations:
            if isinstance(d, AtrialFibrillation) and d.active(t_ms):
                return d
        return None

    # --- time of day, sleep and activity ---------------------------------------------

    def local_hour(self, t_ms: int) -> float:
        if self._last_hour[0] == t_ms:
            return self._last_hour[1]
        local = datetime.fromtimestamp(t_ms / 1000, self.tz)
        hour = local.hour + local.minute / 60 + local.second / 3600
        self._last_hour = (t_ms, hour)
        return hour

    def local_date(self, t_ms: int) -> date:
        return datetime.fromtimestamp(t_ms / 1000, self.tz).date()

    def night(self, evening: date) -> tuple[int, int]:
        """(fall asleep, wake up) in epoch ms for the night starting on ``evening``."""
        cached = self._nights.get(evening)
        if cached is None:
            rng = derive_rng(self.seed, self.key, 1, evening.toordinal())
            bed_h = self.base.bedtime_h + float(rng.normal(0, 0.4))
            hours = self.base.sleep_h + float(rng.normal(0, 0.5))
            # bedtime is a wall-clock hour (aware + timedelta adds wall time), the night
            # then lasts real hours, whatever the clocks do at a DST change
            bed = datetime.combine(evening, time(0), self.tz) + timedelta(hours=bed_h)
            bed_ms = int(bed.timestamp() * 1000)
            cached = (bed_ms, bed_ms + int(hours * HOUR_MS))
            self._nights[evening] = cached
        return cached

    def asleep(self, t_ms: int) -> float:
        """How asleep the patient is at ``t_ms``: 0 awake, 1 asleep, smooth in between."""
        if self._last_asleep[0] == t_ms:
            return self._last_asleep[1]
        # the local date is within a day of the UTC date: look at the nights around it
        # (cheaper than a time-zone conversion, and this is asked for every reading)
        utc_day = _EPOCH_ORDINAL + t_ms // DAY_MS
        level = 0.0
        for ordinal in (utc_day - 2, utc_day - 1, utc_day):
            bed_ms, wake_ms = self.night(date.fromordinal(ordinal))
            if bed_ms - HOUR_MS < t_ms < wake_ms + HOUR_MS:
                quarter_h = 15 * MINUTE_MS
                level = max(
                    level,
                    _smoothstep((t_ms - bed_ms) / quarter_h)
                    * _smoothstep((wake_ms - t_ms) / quarter_h),
                )
        self._last_asleep = (t_ms, level)
        return level

    def is_asleep(self, t_ms: int) -> bool:
        return self.asleep(t_ms) > 0.5

    def wake_time_ms(self, t_ms: int) -> int:
        """When the patient woke up on the local day of ``t_ms``."""
        return self.night(self.local_date(t_ms) - timedelta(days=1))[1]

    def mobility(self, t_ms: int) -> float:
        """How much of the usual activity the patient can do again (0.2 -> 1)."""
        return 1 - 0.8 * self.rec.remaining(t_ms, self.rec.tau_mobility_days)

    def activity(self, t_ms: int) -> float:
        """Physical activity 0-1: none asleep, varying through the day, less early on."""
        awake = 1 - self.asleep(t_ms)
        intensity = _clip(_STEPS_ACTIVITY_MEAN + 0.3 * self._activity_wander(t_ms), 0, 1)
        return awake * intensity * self.mobility(t_ms)

    def steps_per_min(self, t_ms: int) -> float:
        """True walking rate; at full mobility it adds up to the baseline daily steps."""
        awake_min = (24 - self.base.sleep_h) * 60
        return self.activity(t_ms) * self.base.daily_steps / (awake_min * _STEPS_ACTIVITY_MEAN)

    def expected_steps(self, start_ms: int, end_ms: int) -> float:
        """True steps walked in [start, end), integrated minute by minute."""
        n = max(1, (end_ms - start_ms) // MINUTE_MS)
        width = (end_ms - start_ms) / n
        return sum(
            self.steps_per_min(int(start_ms + (i + 0.5) * width)) * width / MINUTE_MS
            for i in range(n)
        )

    # --- truth -----------------------------------------------------------------------

    def _delta(self, metric: str, t_ms: int) -> float:
        return sum(d.delta(metric, t_ms) for d in self.deviations)

    def _gain(self, metric: str) -> float:
        """How much of a complication's shift this patient's body shows."""
        if metric == "heart_rate_bpm":
            return self._traits.hr_gain
        if metric == "temp_c":
            return self._traits.fever_gain
        return 1.0

    # --- sleep: REM, apnoeas, hypoventilation ------------------------------------------

    def _night_at(self, t_ms: int) -> tuple[date, int, int] | None:
        utc_day = _EPOCH_ORDINAL + t_ms // DAY_MS
        for ordinal in (utc_day - 2, utc_day - 1, utc_day):
            evening = date.fromordinal(ordinal)
            bed_ms, wake_ms = self.night(evening)
            if bed_ms <= t_ms < wake_ms:
                return evening, bed_ms, wake_ms
        return None

    @staticmethod
    def _in_rem(t_ms: int, bed_ms: int) -> bool:
        """90-minute sleep cycles after about 15 min of falling asleep, each ending in
        REM sleep that lengthens through the night (10 min, then 7 min more per cycle,
        up to 35 min): about a fifth to a quarter of the night, mostly near morning."""
        minutes = (t_ms - bed_ms) / MINUTE_MS - 15
        if minutes < 0:
            return False
        cycle, pos = divmod(minutes, 90)
        return pos >= 90 - min(10 + 7 * cycle, 35)

    def _apnoeas_of(
        self, evening: date, bed_ms: int, wake_ms: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(nadir times in ms, depths in %) of the night's obstructive events."""
        found = self._apnoeas.get(evening)
        if found is None:
            tr = self._traits
            rng = derive_rng(self.seed, self.key, 13, evening.toordinal())
            night_no = max(1, math.floor((bed_ms - self.surgery_ms) / DAY_MS) + 1)
            factor = 1 + tr.postop_ahi_peak * math.exp(-(((night_no - 3) / 1.5) ** 2))
            hours = (wake_ms - bed_ms) / HOUR_MS
            n = int(rng.poisson(tr.ahi_per_h * factor * hours))
            times = np.sort(rng.uniform(bed_ms + 15 * MINUTE_MS, wake_ms, n)).astype(np.int64)
            depths = tr.dip_pct * rng.lognormal(0.0, 0.35, n)
            rem = np.asarray([self._in_rem(int(t), bed_ms) for t in times], dtype=bool)
            depths = np.minimum(np.where(rem, 1.4 * depths, depths), 30.0)
            found = self._apnoeas[evening] = (times, depths)
        return found

    def _night_spo2_drop(self, t_ms: int) -> float:
        """How far below the patient's sleeping SpO2 this instant is: REM sleep,
        hypoventilation, and the desaturation after each apnoea or hypopnoea (a dip
        reaching its nadir about 30 s after the event, lasting about a minute)."""
        tr = self._traits
        if not tr.sleep_model:
            return 0.0
        sleep = self.asleep(t_ms)
        if sleep < 0.05:
            return 0.0
        night = self._night_at(t_ms)
        if night is None:
            return 0.0
        evening, bed_ms, wake_ms = night
        drop = tr.hypovent_drop_pct
        if self._in_rem(t_ms, bed_ms):
            drop += tr.rem_drop_pct + tr.hypovent_drop_pct
        times, depths = self._apnoeas_of(evening, bed_ms, wake_ms)
        half_ms = 30_000
        lo, hi = np.searchsorted(times, [t_ms - half_ms, t_ms + half_ms])
        for nadir, depth in zip(times[lo:hi].tolist(), depths[lo:hi].tolist(), strict=True):
            drop += depth * (1 - abs(t_ms - nadir) / half_ms)
        return sleep * min(drop, 35.0)

    def _circadian(self, t_ms: int, amplitude: float, peak_h: float) -> float:
        return amplitude * math.cos(2 * math.pi * (self.local_hour(t_ms) - peak_h) / 24)

    def _pain(self, t_ms: int) -> float:
        return self.rec.pain_initial * self.rec.remaining(t_ms, self.rec.tau_pain_days)

    def truth(self, metric: str, t_ms: int) -> float:
        """The patient's true value of ``metric`` at ``t_ms`` (epoch ms UTC)."""
        if metric == "bp_mean_mmhg":
            systolic = self.truth("bp_systolic_mmhg", t_ms)
            diastolic = self.truth("bp_diastolic_mmhg", t_ms)
            return diastolic + (systolic - diastolic) / 3 + self._delta(metric, t_ms)
        value = self._uneventful(metric, t_ms) + self._gain(metric) * self._delta(metric, t_ms)
        if metric == "heart_rate_bpm":
            af = self.in_af(t_ms)
            if af is not None:
                # the ventricular rate replaces the sinus rate; effort still adds a little
                value = (
                    af.rate_bpm
                    + 12 * self._traits.hr_gain * self.activity(t_ms)
                    - 4 * self.asleep(t_ms)
                    + 3.0 * self._hr_wander(t_ms)
                    + self._gain(metric) * self._delta(metric, t_ms)
                )
        elif metric == "spo2_pct":
            value -= self._night_spo2_drop(t_ms)
            value = min(value, 100.0)
        elif metric == "pain_score":
            value = _clip(value, 0, 10)
        return value

    def vitals(self, t_ms: int) -> dict[str, float]:
        """Every modelled metric's truth at ``t_ms``."""
        return {m: self.truth(m, t_ms) for m in TRUTH_METRICS}

    def _uneventful(self, metric: str, t_ms: int) -> float:
        b, r, c = self.base, self.rec, self.circadian
        inflammation = r.remaining(t_ms, r.tau_days)
        sleep = self.asleep(t_ms)
        act = self.activity(t_ms)
        if metric == "heart_rate_bpm":
            return (
                b.heart_rate_bpm
                + self._traits.hr_gain * r.hr_excess_bpm * inflammation
                + self._circadian(t_ms, c.hr_amplitude_bpm, c.hr_peak_h)
                - c.hr_sleep_drop_bpm * sleep
                + 20 * self._traits.hr_gain * act
                + 0.4 * self._pain(t_ms)
                + 2.0 * self._hr_wander(t_ms)
            )
        if metric == "spo2_pct":
            return (
                b.spo2_pct
                - r.spo2_deficit_pct * inflammation
                - c.spo2_sleep_drop_pct * sleep
                + 0.3 * self._resp_wander(t_ms)
            )
        if metric == "temp_c":
            return (
                b.temp_c
                + r.temp_excess_c * inflammation
                + self._circadian(t_ms, c.temp_amplitude_c, c.temp_peak_h)
                + 0.15 * act
                + TEMP_WANDER_C * self._temp_wander(t_ms)
            )
        if metric in ("bp_systolic_mmhg", "bp_diastolic_mmhg"):
            systolic = metric == "bp_systolic_mmhg"
            base = b.bp_systolic_mmhg if systolic else b.bp_diastolic_mmhg
            dip = c.systolic_night_dip if systolic else c.diastolic_night_dip
            share = 1.0 if systolic else 0.6
            since_wake_h = (t_ms - self.wake_time_ms(t_ms)) / HOUR_MS
            surge = c.morning_surge_mmhg * _bump(since_wake_h, 1.0)
            return (
                base * (1 - dip * sleep)
                + share * surge
                + share * self._circadian(t_ms, c.bp_amplitude_mmhg, c.bp_peak_h)
                + (12 if systolic else 4) * act
                + share * 0.5 * self._pain(t_ms)
                + share * 3.0 * self._bp_wander(t_ms)
            )
        if metric == "resp_rate_per_min":
            return (
                b.resp_rate_per_min
                + r.resp_excess_per_min * inflammation
                - c.resp_sleep_drop_per_min * sleep
                + 5 * act
                + 0.6 * self._resp_wander(t_ms)
            )
        if metric == "weight_kg":
            hour = self.local_hour(t_ms)
            return (
                b.weight_kg
                + r.weight_excess_kg * r.remaining(t_ms, r.tau_weight_days)
                + 0.3 * math.sin(2 * math.pi * (hour - 10) / 24)  # fuller in the evening
                + WEIGHT_WANDER_PCT / 100 * b.weight_kg * self._weight_wander(t_ms)
            )
        if metric == "glucose_mmol_l":
            hour = self.local_hour(t_ms)
            meals = sum(_bump((hour - m) % 24, 0.75) for m in MEALS_H if (hour - m) % 24 < 6)
            return (
                b.glucose_mmol_l
                + r.glucose_excess_mmol_l * inflammation
                + 2.2 * meals * (1 - sleep)
            )
        if metric == "pain_score":
            return self._pain(t_ms) + 1.0 * act
        raise KeyError(f"no model for metric {metric!r}")

    # --- what devices measure --------------------------------------------------------

    def _noisy(
        self, metric: str, t_ms: int, noise: SensorNoise, rng: np.random.Generator
    ) -> tuple[float, float]:
        """(truth, truth + bias + noise)."""
        truth = self.truth(metric, t_ms)
        sd = noise.sd * abs(truth) if noise.relative else noise.sd
        return truth, truth + noise.bias + float(rng.normal(0, sd))

    def _maybe_nres(
        self, metric: str, truth: float, value: float | Special, rng: np.random.Generator
    ) -> Observation:
        if rng.random() < self.artifacts.device_nres:
            return Observation(metric, truth, Special.NRES)
        return Observation(metric, truth, value)

    def measure_oximeter(self, t_ms: int, rng: np.random.Generator) -> OximeterReading:
        """SpO2 and pulse rate from a finger probe; movement makes them erratic: falsely
        low SpO2, a noisy pulse, or no reading at all."""
        a, acc = self.artifacts, self.accuracy
        tr = self._traits
        spo2_truth, spo2 = self._noisy("spo2_pct", t_ms, acc.oximeter_spo2, rng)
        pulse_truth, pulse = self._noisy("heart_rate_bpm", t_ms, acc.oximeter_pulse, rng)
        spo2 = min(100.0, spo2 + tr.oximeter_bias_pct)
        af = self.in_af(t_ms) if tr.sleep_model else None
        if af is not None:
            # pulse deficit: short beats make no pulse wave at the finger (assumption
            # 3-15 % of beats), and the count is noisier
            pulse = pulse_truth * float(rng.uniform(0.85, 0.97)) + float(rng.normal(0, 4))
        p_motion = a.oximeter_motion_asleep
        if not self.is_asleep(t_ms):
            p_motion += a.oximeter_motion_active * self.activity(t_ms)
        if tr.poor_perfusion:
            p_motion += 0.04 if self.is_asleep(t_ms) else 0.15  # cold fingers: erratic signal
        motion = bool(rng.random() < p_motion)
        questionable = dropout = False
        if motion:
            questionable = bool(rng.random() < a.oximeter_questionable_given_motion)
            roll = rng.random()
            dropout = roll < a.oximeter_dropout_given_motion
            if not dropout and roll < (
                a.oximeter_dropout_given_motion + a.oximeter_spurious_low_given_motion
            ):
                spo2 = max(60.0, spo2 - float(rng.uniform(4, 15)))
                pulse += float(rng.normal(0, 8))
        irregular = af is not None and tr.oximeter_flags_irregular and rng.random() < 0.7
        return OximeterReading(
            self._maybe_nres("spo2_pct", spo2_truth, Special.NAN if dropout else spo2, rng),
            self._maybe_nres("heart_rate_bpm", pulse_truth, Special.NAN if dropout else pulse, rng),
            motion,
            questionable,
            bool(irregular),
        )

    def measure_cuff(self, t_ms: int, rng: np.random.Generator) -> CuffReading:
        """An oscillometric cuff: systolic, diastolic, the mean it derives, and pulse; a
        loose cuff reads high, movement adds error, and sometimes the cuff gives up."""
        a, acc = self.artifacts, self.accuracy
        sys_truth, systolic = self._noisy("bp_systolic_mmhg", t_ms, acc.cuff_systolic, rng)
        dia_truth, diastolic = self._noisy("bp_diastolic_mmhg", t_ms, acc.cuff_diastolic, rng)
        pulse_truth, pulse = self._noisy("heart_rate_bpm", t_ms, acc.cuff_pulse, rng)
        mean_truth = self.truth("bp_mean_mmhg", t_ms)
        loose = bool(rng.random() < a.cuff_loose)
        movement = bool(rng.random() < a.cuff_movement)
        tr = self._traits
        systolic += tr.cuff_bias_mmhg
        diastolic += 0.6 * tr.cuff_bias_mmhg
        irregular = False
        if tr.sleep_model:
            # a cuff's irregular-heartbeat detection: about 9 in 10 readings in AF
            # (oscillometric AF detection, sensitivity 0.9+: Verberk et al. 2016, Int J
            # Cardiol, meta-analysis), and now and then for ectopic beats in sinus rhythm
            af = self.in_af(t_ms) is not None
            irregular = bool(rng.random() < (0.9 if af else tr.irregular_spurious_p))
            if af:
                pulse += float(rng.normal(0, 6))
                systolic += float(rng.normal(0, 6))  # beat-to-beat pressure varies in AF
        if loose:
            systolic += float(rng.uniform(8, 20))
            diastolic += float(rng.uniform(5, 12))
        if movement:
            systolic += float(rng.normal(0, 8))
            diastolic += float(rng.normal(0, 6))
        diastolic = min(diastolic, systolic - 10)
        mean = diastolic + (systolic - diastolic) / 3
        failed = bool(rng.random() < a.cuff_failure)

        def obs(metric: str, truth: float, value: float) -> Observation:
            return Observation(metric, truth, Special.NAN if failed else value)

        return CuffReading(
            obs("bp_systolic_mmhg", sys_truth, systolic),
            obs("bp_diastolic_mmhg", dia_truth, diastolic),
            obs("bp_mean_mmhg", mean_truth, mean),
            obs("heart_rate_bpm", pulse_truth, pulse),
            movement,
            loose,
            irregular,
        )

    def measure_temperature(self, t_ms: int, rng: np.random.Generator) -> Observation:
        """An ear thermometer; when not aimed into the ear canal it reads 'Lo' (-INF)."""
        truth, value = self._noisy("temp_c", t_ms, self.accuracy.thermometer, rng)
        value += self._traits.thermometer_bias_c
        low = rng.random() < self.artifacts.thermometer_low
        return Observation("temp_c", truth, Special.NEGATIVE_INFINITY if low else value)

    def measure_weight(self, t_ms: int, rng: np.random.Generator) -> Observation:
        """A bathroom scale; now and then the patient steps off too early (NaN)."""
        truth, value = self._noisy("weight_kg", t_ms, self.accuracy.scale, rng)
        failed = rng.random() < self.artifacts.scale_unsuccessful
        return Observation("weight_kg", truth, Special.NAN if failed else value)

    def measure_patch(self, t_ms: int, rng: np.random.Generator) -> PatchReading:
        """A chest patch's heart rate; with skin contact lost it still sends, noisily."""
        truth, value = self._noisy("heart_rate_bpm", t_ms, self.accuracy.patch_heart_rate, rng)
        contact = not rng.random() < self.artifacts.patch_contact_loss
        if not contact:
            value = max(25.0, value + float(rng.normal(0, 15)))
        return PatchReading(Observation("heart_rate_bpm", truth, value), contact)

    def rr_intervals(self, end_ms: int, span_s: float, rng: np.random.Generator) -> list[float]:
        """The beat-to-beat (RR) intervals in seconds of the ``span_s`` before ``end_ms``,
        as an ECG patch measures them: sinus rhythm with physiological variability, or
        atrial fibrillation's irregularly irregular intervals (see ``SINUS_AR``)."""
        hr = max(30.0, self.truth("heart_rate_bpm", end_ms))
        mean_s = 60.0 / hr
        n = max(2, round(span_s / mean_s))
        if self.in_af(end_ms) is not None:
            rr = mean_s * np.exp(rng.normal(-0.5 * AF_RR_CV**2, AF_RR_CV, n))
        else:
            tr = self._traits
            rmssd_s = tr.rmssd_ms / 1000 * (mean_s / 0.85) ** 2
            sd = rmssd_s / math.sqrt(2 * (1 - SINUS_AR))
            # AR(1) as a (truncated, 0.8**40 < 1e-3) moving average of white noise:
            # the same series without a Python loop over beats
            e = rng.normal(0, sd * math.sqrt(1 - SINUS_AR**2), n + _AR_TAPS)
            x = np.convolve(e, _AR_KERNEL, mode="valid")[:n]
            rr = mean_s + x
            ectopic = np.flatnonzero(rng.random(n - 1) < tr.ectopic_p)
            rr[ectopic] = 0.7 * mean_s
            rr[ectopic + 1] = 1.3 * mean_s
        return [float(v) for v in np.clip(rr, 0.25, 2.5)]

    def measure_resp_rate(self, t_ms: int, rng: np.random.Generator) -> Observation:
        truth, value = self._noisy("resp_rate_per_min", t_ms, self.accuracy.patch_resp_rate, rng)
        return Observation("resp_rate_per_min", truth, max(4.0, value))

    def measure_steps(self, start_ms: int, end_ms: int, rng: np.random.Generator) -> Observation:
        """Steps the patch counted in [start, end): Poisson around the true walking."""
        expected = self.expected_steps(start_ms, end_ms)
        return Observation("steps_count", expected, float(rng.poisson(expected)))

    def measure_glucose(self, t_ms: int, rng: np.random.Generator) -> Observation:
        truth, value = self._noisy("glucose_mmol_l", t_ms, self.accuracy.glucose_meter, rng)
        nres = rng.random() < self.artifacts.glucose_nres
        return Observation("glucose_mmol_l", truth, Special.NRES if nres else max(1.0, value))

    def measure_pain(self, t_ms: int, rng: np.random.Generator) -> Observation:
        """The 0-10 score the patient types: the felt pain, rounded, a little arbitrary."""
        truth, value = self._noisy("pain_score", t_ms, self.accuracy.pain_report, rng)
        return Observation("pain_score", truth, float(_clip(round(value), 0, 10)))
