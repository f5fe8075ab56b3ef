"""pytest plugin for CI: a skipped test fails the run.

CI installs every tool the suite uses (``make system-deps``: chromium, redis-server,
nginx, node, systemd-analyze, openssl, ...; ``.[test]``: PyYAML, ...), so a test
that skips there has lost its tool and would hide a regression. ``make pytest``
loads this file when ``CI=true`` (``PYTHONPATH=.ci pytest -p no_skip``); locally a
missing tool still only skips.

Each skipped test is reported as a failure (or, when it skipped in setup, an error)
with the skip's reason; a module skipped at collection is a collection error.
Expected failures (``xfail``) are not skips and are left alone.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


def _reason(longrepr: object) -> str:
    # A skip's longrepr is (path, lineno, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, message = longrepr
        return f"{message} ({path}:{lineno})"
    return str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.longrepr = (
        f"skipped on CI, which must run every test: {_reason(report.longrepr)}\n"
        "(install the missing tool in `make system-deps` or the [test] extra; .ci/no_skip.py)"
    )
    report.outcome = "failed"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped:
        _fail(report)
    return report
