"""``manual`` blood pressure: no commandable module; a clinician enters each reading."""

from __future__ import annotations

from hw.vitals.registry import add_nibp

add_nibp("manual", None, simulator=None)
