"""Fixtures for the integration tests: clusters of real posbench processes on
loopback that are always stopped, with their logs checked for sanitizer
reports, whatever the test's outcome."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pbutil  # noqa: E402


def _finish(clusters):
    problems = []
    for c in clusters:
        problems.extend(c.close())
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: make_cluster(heartbeat_ms=None) -> an unstarted Cluster in its
    own subdirectory; every cluster made is closed at teardown."""
    made = []

    def make(heartbeat_ms=None):
        d = tmp_path / f"cluster{len(made) + 1}"
        d.mkdir()
        c = pbutil.Cluster(d, heartbeat_ms=heartbeat_ms)
        made.append(c)
        return c

    yield make
    _finish(made)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One coordinator with two 2-slot workers shared by a module's tests
    (for tests that only read or validate)."""
    yield from pbutil.running_cluster(tmp_path_factory.mktemp("shared"),
                                      lambda c: c.start(workers=2, slots=2))
