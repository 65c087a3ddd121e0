"""Hypothesis profiles: a quick default; CONVCOST_PROFILE=thorough for thousands of examples."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONVCOST_PROFILE", "quick"))
