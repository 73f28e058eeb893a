"""Stages: each a pure function of its declared inputs (DESIGN.md section 2)."""
