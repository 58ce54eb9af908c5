"""Hypothesis profiles for the fuzz properties.

"ci" (the default) keeps ``pytest tests/fuzz`` well under a minute with fresh random
examples on every run; "long" is for running locally or nightly for as long as you like:

    CHAT_FUZZ_PROFILE=long .venv/bin/pytest tests/fuzz -q

The profiles are applied per test (``settings(PROFILE)``), not loaded globally, so they
never change the example counts of the rest of the suite.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=False,
    deadline=None,
    max_examples=300,
    stateful_step_count=50,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    derandomize=False,
    deadline=None,
    max_examples=20_000,
    stateful_step_count=120,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
