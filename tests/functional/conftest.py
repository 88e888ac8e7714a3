"""Fixtures of the functional suite: the real ditherd binary on free ports with a fresh data
directory and DITHER_EVENT_LOG set.

    def test_x(server):                      # a fresh server for this test
        record = server.upload_ok(imagegen.photo_png())

    def test_y(start_server):                # any number, with extra environment
        s = start_server(AUTO_DITHER="off", MAX_UPLOAD_BYTES=100000)
        s.kill(); s.start()                  # SIGKILL, then restart on the same data dir and ports

`module_server` / `module_start_server` are the same, shared by the tests of one module (each test
still takes its own baseline). Every server is stopped with SIGTERM at teardown, and the test
errors if any run of it crashed (see harness.Ditherd.problems).
"""

from __future__ import annotations

import pytest

import harness


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes tens of seconds")


@pytest.fixture
def start_server(tmp_path):
    pool = harness.ServerPool(tmp_path)
    yield pool
    pool.close()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture(scope="module")
def module_start_server(tmp_path_factory):
    pool = harness.ServerPool(tmp_path_factory.mktemp("module"))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def module_server(module_start_server):
    return module_start_server()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, show the tail of the stderr of every server that is up."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in list(harness.ServerPool.active):
            report.sections.append((f"ditherd stderr ({server.workdir})", server.stderr_tail()))
