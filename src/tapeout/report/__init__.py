"""Rendering only: tables, JSON, CSV. Reports never recompute a latency."""
