"""Test fixtures shared by the whole suite (Pyro's own conventions): a clean parameter store,
validation on, and a fixed seed for every test.

Threads: the suite runs with one torch thread, or with as many as the environment variable
``PYRO_MM_TEST_THREADS`` says (``OMP_WAIT_POLICY=PASSIVE PYRO_MM_TEST_THREADS=2 bash
scripts/test.sh tests/infer``; passive waiting keeps several threads from spinning, which on a busy
machine makes the run many times slower). The thread count changes how kernels split their
reductions, hence the round-off; .ci/run runs tests/infer with one thread and with two.

Precision: a test that checks that something adds up (a batch equals the sum of its parts, a loss
the sum of its terms, a gradient that of its pieces, two code paths or kernels the same value)
requests the ``float64`` fixture. The float32 round-off of such a check depends on the CPU's
kernels (AVX2, AVX-512, AMX) and on the thread count: a hand-picked float32 tolerance that holds
on one machine fails on another (the gradients of a mixed MEME batch against its parts: up to 3e-5
apart on an AMD EPYC, 2e-4 on an Intel CPU with AMX). In float64 the round-off is ~10⁸ times
smaller, far below those tolerances.
"""

import os

import pyro
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _threads():
    """One thread unless ``PYRO_MM_TEST_THREADS`` says otherwise: the test networks are tiny, one
    thread is as fast and, unlike several, is not slowed down many times over by OpenMP
    spin-waiting when other processes keep the cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("PYRO_MM_TEST_THREADS", "1")))
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


@pytest.fixture
def float64():
    """float64 as the default dtype for the test: the networks, parameters, data of
    :mod:`mm_helpers` and every tensor the test builds. (Autouse fixtures run first, so this
    comes after ``_pyro_state`` has set float32.)"""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
