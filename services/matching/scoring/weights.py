"""Scoring weights, versioned: every ranking records the version that produced it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    version: str = "2026-11-v1"
    region: float = 0.35
    topic: float = 0.40
    skill: float = 0.10
    industry: float = 0.05
    freshness: float = 0.10
    # Region levels: same prefecture > neighbour > same METI bureau > remote-capable.
    same_prefecture: float = 1.0
    neighbour: float = 0.7
    same_bureau: float = 0.4
    remote_only: float = 0.25
    # A confirmation this recent counts fully; it fades to nothing at stale_days.
    fresh_days: int = 30
    stale_days: int = 180
    max_depth: int = 3


DEFAULT_WEIGHTS = Weights()
