"""Scoring weights, versioned: every ranking records the version that produced it.

v2 (issue 8) adds the outcome factor (SME ratings, shrunk toward the global mean) and the fairness of
exposure penalty. The penalty is bounded by ``fairness_max`` and subtracted from the sum, so it can only
re-order experts whose scores are within ``fairness_max`` of each other: a near-tie, never a strong match.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    version: str = "2026-11-v2"
    region: float = 0.33
    topic: float = 0.38
    skill: float = 0.10
    industry: float = 0.05
    freshness: float = 0.08
    outcome: float = 0.06
    # Region levels: same prefecture > neighbour > same METI bureau > remote-capable.
    same_prefecture: float = 1.0
    neighbour: float = 0.7
    same_bureau: float = 0.4
    remote_only: float = 0.25
    # A confirmation this recent counts fully; it fades to nothing at stale_days.
    fresh_days: int = 30
    stale_days: int = 180
    max_depth: int = 3
    # Outcomes: Bayesian average of SME ratings, as if every expert had ``outcome_prior_weight`` ratings
    # at the global mean (an expert with one 5-star rating does not jump over one with forty 4.8s).
    outcome_prior_weight: float = 5.0
    outcome_prior_mean: float = 4.0  # stars, used until there are ratings at all
    # Fairness of exposure: at most ``fairness_max`` off the score, growing with the expert's recent
    # position-weighted exposure e as e / (e + exposure_half) (half the maximum at exposure_half, about
    # five first places in the window).
    fairness_max: float = 0.03
    exposure_half: float = 5.0
    exposure_window_days: int = 28
    exposure_top: int = 10  # positions of a ranking that count as shown


DEFAULT_WEIGHTS = Weights()
