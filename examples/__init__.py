"""Example applications for trio-actors (each has a test in tests/examples)."""
