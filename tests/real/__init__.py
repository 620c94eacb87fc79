"""Tests against the real components of issue 10."""
