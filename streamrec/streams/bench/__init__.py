"""Benchmarks that print figures measured on real data; none of them is a test."""

from __future__ import annotations
