"""Test fixtures shared by the whole suite (Pyro's own conventions): a clean parameter store,
validation on, and a fixed seed for every test."""

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _pyro_state():
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    torch.set_default_dtype(torch.float32)
    yield
    pyro.clear_param_store()
