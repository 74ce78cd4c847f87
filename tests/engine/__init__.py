"""Tests of the trading engine (pure Python, no database)."""
