"""Fixtures of the distributed suite: one stack (scripts/stack.sh) for the whole session,
brought down at the end. The functional suite's harness provides the HTTP helpers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))

import harness  # noqa: E402
from stack import Stack  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes tens of seconds")


@pytest.fixture(scope="session")
def stack():
    # Under build/, not pytest's private temporary directory: PostgreSQL runs as its own user and
    # must reach its data directory. DITHER_TEST_STACK_WORKDIR (relative to the repository) lets
    # two runs side by side (with different DITHER_TEST_STACK_PORT_BASE) keep apart.
    workdir = harness.REPO_ROOT / os.environ.get("DITHER_TEST_STACK_WORKDIR",
                                                 "build/distributed-test")
    shutil.rmtree(workdir, ignore_errors=True)
    s = Stack(workdir)
    try:
        s.up()
        yield s
    finally:
        crashes = s.crashes()
        s.down()
        assert not crashes, f"service logs show crashes: {crashes}\n{s.logs()}"


@pytest.fixture
def up(stack):
    """The stack with every part running (a test that stopped something brings it back)."""
    stack.up()
    yield stack
    stack.up()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack" in item.funcargs:
        report.sections.append(("service logs", item.funcargs["stack"].logs()))


__all__ = ["harness"]
