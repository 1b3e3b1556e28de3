"""Who comes home after surgery: a post-operative European population drawn from published
prevalences, so that alert rules are judged on the patients they will meet, not on the
tidy adults of ``Baseline.draw``.

A ``Profile`` says who the patient is (age, sex, body size, lung and sleep disorders,
treatments, blood pressure habit), how they use the kit (adherence, which devices) and
which measurement errors their kit carries (a standard cuff on a large arm, nail polish,
cold fingers, ear-thermometer technique). ``physiology.Patient`` reads it to shape the
body; ``devices`` reads it to shape the measurements.

Every number below cites where it comes from (author, year, the figure taken), or says
"assumption" when no single source gives it; prevalences are rounded, the point is the
right order of magnitude and the right correlations (OSA with obesity, beta-blockers with
age and cardiac surgery, COPD with age), not a registry to the decimal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

Surgery = Literal["digestive", "orthopaedic", "cardiac", "thoracic"]
Kit = Literal["patch", "night_oximetry", "spot"]

# Share of surgery kinds among patients sent home with remote monitoring: assumption
# (a programme mixing digestive, orthopaedic and cardiothoracic wards).
SURGERY_MIX: dict[Surgery, float] = {
    "digestive": 0.40,
    "orthopaedic": 0.35,
    "cardiac": 0.15,
    "thoracic": 0.10,
}
# The shipped protocol each kind of surgery is followed with (thoracic: cardiothoracic).
PROTOCOL_OF: dict[Surgery, str] = {
    "digestive": "digestive_surgery",
    "orthopaedic": "orthopaedic_surgery",
    "cardiac": "cardiac_surgery",
    "thoracic": "cardiac_surgery",
}

# Age (mean, sd) and share of women per kind of surgery.
# - cardiac: EuroSCORE II development cohort (Nashef et al. 2012, Eur J Cardiothorac
#   Surg): mean age 64.6 (sd 12.5), 30.9 % women.
# - orthopaedic: National Joint Registry for England and Wales annual reports: mean age
#   at primary hip / knee replacement about 69, about 60 % women.
# - digestive (colorectal and upper GI, many for cancer) and thoracic (lung resection):
#   assumption, mean age in the mid-60s, from the age at diagnosis of colorectal and lung
#   cancer in Europe (about 70) tempered by benign surgery in younger adults.
AGE_SEX: dict[Surgery, tuple[float, float, float]] = {
    "digestive": (63.0, 14.0, 0.48),
    "orthopaedic": (68.0, 11.0, 0.60),
    "cardiac": (64.6, 12.5, 0.31),
    "thoracic": (65.0, 10.0, 0.42),
}

# Body mass index: log-normal around 26.5 kg/m2 with a spread giving about 22 % obese
# (>= 30) and 5 % at 35 or more. Eurostat 2019 (EHIS wave 3): 17 % of EU adults obese,
# 36 % overweight; surgical patients are older and heavier (arthroplasty especially:
# NJR reports), hence a little above the general population.
BMI_MEDIAN = 26.5
BMI_LOG_SD = 0.17
BMI_ORTHOPAEDIC_SHIFT = 1.5

# COPD by age: BOLD (Buist et al. 2007, Lancet): GOLD stage II or worse in about 10 %
# of adults over 40, rising steeply with age (a few % under 50, 15-20 % over 70 in men).
COPD_BY_AGE = ((50, 0.03), (65, 0.08), (200, 0.13))
COPD_MEN_FACTOR = 1.3
COPD_THORACIC_FACTOR = 2.5  # lung resection patients are smokers first
# COPD patients at risk of hypercapnic failure are prescribed a target of 88-92 %
# (O'Driscoll et al. 2017, BTS guideline) and scored on NEWS2 SpO2 scale 2 (RCP 2017).
# Their share among COPD patients having surgery: assumption, one in four.
COPD_HYPOXAEMIC_SHARE = 0.25

# Obstructive sleep apnoea. Moderate-to-severe (AHI >= 15): Peppard et al. 2013 (Am J
# Epidemiol): 10 % of men 30-49, 17 % of men 50-70, 3 % of women 30-49, 9 % of women
# 50-70 (HypnoLaus, Heinzer et al. 2015, found more with newer scoring: 49.7 % of men
# and 23.4 % of women over 40). Risk rises steeply with body weight: a 10 % weight gain
# multiplies the AHI by about 1.3 and the odds of moderate-to-severe OSA by about 6
# (Peppard et al. 2000, JAMA). Among surgical patients at high risk of OSA, 81 % had
# no diagnosis (Finkel et al. 2009, Sleep Med): the hospital knows one OSA in five.
OSA_MODSEV_BY_SEX_AGE = {(False, 50): 0.10, (False, 200): 0.17, (True, 50): 0.03, (True, 200): 0.09}
OSA_MILD_SHARE = 0.25  # AHI 5-15, common and mostly silent (Heinzer et al. 2015)
OSA_BMI_FACTOR = ((25.0, 0.4), (30.0, 1.0), (35.0, 2.2), (200.0, 3.2))
OSA_DIAGNOSED_SHARE = 0.19
# Obesity hypoventilation: 10-20 % of obese patients with OSA (Mokhlesi 2010, Respir
# Care); here among BMI >= 35 with OSA.
OHS_SHARE = 0.15

# Hypertension by age (NCD-RisC 2021, Lancet: about a third of adults 30-79, over half
# of those over 65 in Europe).
HYPERTENSION_BY_AGE = ((50, 0.20), (65, 0.42), (200, 0.62))
# Beta-blockers: about 14 % of patients having major non-cardiac surgery (Lindenauer et
# al. 2005, NEJM: 14 %), more with age and hypertension; after cardiac surgery most
# patients leave on a beta-blocker (ESC guidelines, post-operative AF prophylaxis):
# assumption 65 %.
BETA_BLOCKER_BY_AGE = ((50, 0.04), (65, 0.10), (200, 0.18))
BETA_BLOCKER_IF_HYPERTENSIVE = 1.7
BETA_BLOCKER_CARDIAC = 0.65
# Constitutional low blood pressure (systolic usually under 100-110): more common in
# young women (Wessely et al. 1990, BMJ, a population study defining it as systolic
# below 110 in men and 100 in women); the shares are an assumption.
LOW_BP_SHARE = {(True, 50): 0.10, (True, 200): 0.03, (False, 50): 0.04, (False, 200): 0.01}

# Adherence to home telemonitoring: reported use of the devices varies widely between
# programmes; assumption: a quarter of patients measure irregularly (skip a third of
# their spot checks, wear the oximeter on only some nights).
POOR_ADHERENCE_SHARE = 0.25

# Kits (assumption: what remote-monitoring programmes hand out): a minority get a chest
# patch (continuous heart rate, RR intervals, respiratory rate); most have no
# respiratory-rate sensor at all; some wear the oximeter at night, the rest only take
# spot checks.
KIT_MIX: dict[Kit, float] = {"patch": 0.25, "night_oximetry": 0.35, "spot": 0.40}

# Measurement error.
# - A standard adult cuff (arm 22-32 cm) on a larger arm over-reads: Pickering et al.
#   2005 (AHA statement): undercuffing overestimates by 2-10 mmHg, more on large arms;
#   Maxwell et al. 1982 (Lancet): up to about 15-20 mmHg systolic in obese arms. Share of
#   obese patients measured with a too-small cuff: assumption, one half.
STANDARD_CUFF_ON_LARGE_ARM = 0.5
# - Dark nail polish lowers SpO2 readings by a few % with some oximeters (Coté et al.
#   1988, Anesth Analg: black, blue, green polish 3-6 %); women wearing it during
#   follow-up: assumption 5 %.
NAIL_POLISH_WOMEN = 0.05
# - Dark skin: oximeters over-read (occult hypoxaemia 11.7 % vs 3.6 %, Sjoding et al.
#   2020, NEJM), about +1 to +2 %; share of the cohort: assumption 6 %.
DARK_SKIN_SHARE = 0.06
# - Cold fingers / poor peripheral perfusion (age, vascular disease): more artefacts at
#   spot checks. Peripheral arterial disease in about 15-20 % over 70 (Fowkes et al.
#   2013, Lancet): used as the share of older patients with poor perfusion.
POOR_PERFUSION_BY_AGE = ((60, 0.04), (70, 0.10), (200, 0.18))
# - Ear thermometers read lower when not aimed at the eardrum; 95 % limits of agreement
#   against core of about +/-1 degC (Craig et al. 2002, Lancet, meta-analysis): a
#   per-patient technique bias mean -0.15, sd 0.2 degC (assumption within those limits).
THERMO_BIAS_MEAN_C = -0.15
THERMO_BIAS_SD_C = 0.20

# Older people mount a smaller fever: 20-30 % of older adults with serious infection
# have a blunted or absent febrile response (Norman 2000, Clin Infect Dis).
BLUNTED_FEVER_OVER_75 = 0.3

# A loop ileostomy after colorectal surgery: assumption 15 % of digestive patients;
# 17 % of them are readmitted for dehydration (Messaris et al. 2012, Dis Colon Rectum).
ILEOSTOMY_DIGESTIVE = 0.15


@dataclass(frozen=True, slots=True)
class Profile:
    """Who one patient is, what they were given to measure with, and the errors it has."""

    age_years: float
    female: bool
    height_m: float
    bmi_kg_m2: float
    surgery: Surgery
    copd: bool
    copd_hypoxaemic: bool  # chronically 88-92 %, NEWS2 scale 2, known to the hospital
    osa_ahi_per_h: float  # apnoea-hypopnoea index before surgery (0-5: no OSA)
    osa_diagnosed: bool
    ohs: bool  # obesity hypoventilation
    hypertension: bool
    beta_blocker: bool
    low_bp: bool
    poor_adherence: bool
    kit: Kit
    standard_cuff_large_arm: bool
    nail_polish: bool
    dark_skin: bool
    poor_perfusion: bool
    thermometer_bias_c: float
    blunted_fever: bool
    ileostomy: bool
    temperature_checks: int  # a day: 2 or 3

    @property
    def protocol(self) -> str:
        return PROTOCOL_OF[self.surgery]

    @property
    def obese(self) -> bool:
        return self.bmi_kg_m2 >= 30

    @property
    def osa(self) -> bool:
        """Moderate or severe obstructive sleep apnoea (AHI >= 15)."""
        return self.osa_ahi_per_h >= 15

    @property
    def age_band(self) -> str:
        if self.age_years < 65:
            return "<65"
        return "65-79" if self.age_years < 80 else "80+"

    @property
    def has_patch(self) -> bool:
        return self.kit == "patch"

    def subgroups(self) -> dict[str, str]:
        """The subgroups a report breaks figures down by."""
        return {
            "age": self.age_band,
            "copd": "COPD" if self.copd else "no COPD",
            "osa": "OSA" if self.osa else "no OSA",
            "obesity": "BMI >= 30" if self.obese else "BMI < 30",
            "beta_blocker": "beta-blocker" if self.beta_blocker else "no beta-blocker",
            "low_bp": "low BP" if self.low_bp else "usual BP",
            "kit": self.kit,
        }


def _by_age(table: tuple[tuple[float, float], ...], age: float) -> float:
    return next(p for limit, p in table if age < limit)


K = TypeVar("K", bound=str)


def _pick(rng: np.random.Generator, mix: Mapping[K, float]) -> K:
    names = list(mix)
    weights = np.asarray([mix[n] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a scenario needs of the patient (a slow sepsis in an older patient, a bleed
    under a beta-blocker, dehydration with an ileostomy); None leaves the draw free."""

    surgery: Surgery | None = None
    min_age: float | None = None
    beta_blocker: bool | None = None
    hypertension: bool | None = None
    ileostomy: bool | None = None


def draw_profile(rng: np.random.Generator, need: Requirements | None = None) -> Profile:
    """One patient of the post-operative population (conditioned on ``need``)."""
    need = need or Requirements()
    surgery: Surgery = need.surgery or _pick(rng, SURGERY_MIX)
    mean_age, sd_age, women = AGE_SEX[surgery]
    age = float(np.clip(rng.normal(mean_age, sd_age), 18, 95))
    if need.min_age is not None and age < need.min_age:
        age = float(rng.uniform(need.min_age, max(need.min_age + 1, 92)))
    female = bool(rng.random() < women)
    # heights: European adults, men 1.77 / women 1.64 m, sd 0.07 (NCD-RisC 2016, eLife)
    height = float(np.clip(rng.normal(1.64 if female else 1.77, 0.07), 1.45, 2.0))
    bmi_median = BMI_MEDIAN + (BMI_ORTHOPAEDIC_SHIFT if surgery == "orthopaedic" else 0.0)
    bmi = float(np.clip(math.exp(rng.normal(math.log(bmi_median), BMI_LOG_SD)), 17.0, 55.0))

    p_copd = _by_age(COPD_BY_AGE, age) * (1.0 if female else COPD_MEN_FACTOR)
    if surgery == "thoracic":
        p_copd *= COPD_THORACIC_FACTOR
    copd = bool(rng.random() < min(p_copd, 0.6))
    copd_hypoxaemic = copd and bool(rng.random() < COPD_HYPOXAEMIC_SHARE)

    p_modsev = next(p for (f, lim), p in OSA_MODSEV_BY_SEX_AGE.items() if f == female and age < lim)
    factor = _by_age(OSA_BMI_FACTOR, bmi)
    roll = rng.random()
    if roll < min(0.75, p_modsev * factor):
        # moderate to severe; the AHI grows with body weight (Peppard et al. 2000)
        ahi = float(np.clip(rng.lognormal(math.log(24.0), 0.4) * (bmi / 28.0) ** 1.5, 15, 90))
    elif roll < min(0.9, p_modsev * factor + OSA_MILD_SHARE):
        ahi = float(rng.uniform(5, 15))
    else:
        ahi = float(rng.uniform(0.5, 5))
    osa_diagnosed = ahi >= 15 and bool(rng.random() < OSA_DIAGNOSED_SHARE)
    ohs = bmi >= 35 and ahi >= 15 and bool(rng.random() < OHS_SHARE)

    hypertension = bool(rng.random() < _by_age(HYPERTENSION_BY_AGE, age))
    if need.hypertension is not None:
        hypertension = need.hypertension
    if surgery == "cardiac":
        p_bb = BETA_BLOCKER_CARDIAC
    else:
        p_bb = _by_age(BETA_BLOCKER_BY_AGE, age) * (
            BETA_BLOCKER_IF_HYPERTENSIVE if hypertension else 1.0
        )
    beta_blocker = bool(rng.random() < p_bb)
    if need.beta_blocker is not None:
        beta_blocker = need.beta_blocker
    p_low = next(p for (f, lim), p in LOW_BP_SHARE.items() if f == female and age < lim)
    low_bp = not hypertension and bool(rng.random() < p_low)

    poor_adherence = bool(rng.random() < POOR_ADHERENCE_SHARE)
    kit: Kit = _pick(rng, KIT_MIX)
    standard_cuff = bmi >= 30 and bool(rng.random() < STANDARD_CUFF_ON_LARGE_ARM)
    nail_polish = female and bool(rng.random() < NAIL_POLISH_WOMEN)
    dark_skin = bool(rng.random() < DARK_SKIN_SHARE)
    poor_perfusion = bool(rng.random() < _by_age(POOR_PERFUSION_BY_AGE, age))
    thermo_bias = float(np.clip(rng.normal(THERMO_BIAS_MEAN_C, THERMO_BIAS_SD_C), -0.8, 0.3))
    blunted_fever = age >= 75 and bool(rng.random() < BLUNTED_FEVER_OVER_75)
    ileostomy = surgery == "digestive" and bool(rng.random() < ILEOSTOMY_DIGESTIVE)
    if need.ileostomy is not None:
        ileostomy = need.ileostomy
    checks = 2 if rng.random() < 0.5 else 3
    return Profile(
        age_years=round(age, 1),
        female=female,
        height_m=round(height, 3),
        bmi_kg_m2=round(bmi, 1),
        surgery=surgery,
        copd=copd,
        copd_hypoxaemic=copd_hypoxaemic,
        osa_ahi_per_h=round(ahi, 1),
        osa_diagnosed=osa_diagnosed,
        ohs=ohs,
        hypertension=hypertension,
        beta_blocker=beta_blocker,
        low_bp=low_bp,
        poor_adherence=poor_adherence,
        kit=kit,
        standard_cuff_large_arm=standard_cuff,
        nail_polish=nail_polish,
        dark_skin=dark_skin,
        poor_perfusion=poor_perfusion,
        thermometer_bias_c=round(thermo_bias, 2),
        blunted_fever=blunted_fever,
        ileostomy=ileostomy,
        temperature_checks=checks,
    )
