"""Shared pytest setup. Hypothesis runs its default profile (100 examples a test) unless
--hypothesis-profile=thorough asks for many more (e.g. before a release or after touching bounds)."""
import pytest
import torch
from hypothesis import settings

settings.register_profile("thorough", max_examples=2000, deadline=None)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tests run single-threaded: CI has 2 cores and the test tensors are tiny, so threads only add
    overhead and contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
