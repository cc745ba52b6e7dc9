"""Shared fixtures: tshark must be there (CI installs it through the README's test command)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is required (Debian package tshark); run the suite through .ci/run, which installs it")
    return path
