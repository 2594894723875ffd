"""Shared fixtures: the kernel tests need root (CAP_BPF/CAP_SYS_ADMIN)."""

import os

import pytest


@pytest.fixture
def root():
    """Skip, saying why, when not root: every bpf() command below needs it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: bpf() program loads and tracefs are privileged")
