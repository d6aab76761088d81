"""Tests of the pairing relay."""
