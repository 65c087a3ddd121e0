"""Hypothesis profiles: a quick default; CONVCOST_PROFILE=thorough for thousands of examples.

The fuzz tests (tests/test_fuzz*.py) set their own example counts per entry point from the same
variable (tests/fuzzing.py ``examples``): a few hundred each when quick, over 100,000 calls in all
when thorough.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONVCOST_PROFILE", "quick"))
