"""Shared pytest setup. Hypothesis runs its default profile (100 examples a test) unless
--hypothesis-profile=thorough asks for many more (e.g. before a release or after touching bounds)."""
from hypothesis import settings

settings.register_profile("thorough", max_examples=2000, deadline=None)
