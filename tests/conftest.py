"""Test fixtures shared by the whole suite (Pyro's own conventions): a clean parameter store,
validation on, and a fixed seed for every test."""

import pyro
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """The test networks are tiny: one thread is as fast and, unlike several, is not slowed down
    many times over by OpenMP spin-waiting when other processes keep the cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _pyro_state():
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    torch.set_default_dtype(torch.float32)
    yield
    pyro.clear_param_store()
