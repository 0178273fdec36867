"""Matching service: SME requests, the expert projection, the scorer and its rankings."""
