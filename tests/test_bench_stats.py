"""The load generator's statistics (pure): per-round ratios and pooled reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "loadgen.py"


@pytest.fixture(scope="module")
def loadgen():
    spec = importlib.util.spec_from_file_location("loadgen_under_test", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def run(scenario: str, repeat: int, us: float, noisy: bool = False) -> dict:
    return {"scenario": scenario, "repeat": repeat, "delivered": 100,
            "server_cpu_us_per_msg": us, "other_processes_cores": 0.5 if noisy else 0.0,
            "machine_steal": 0.0}


def test_each_run_is_divided_by_the_relay_of_its_own_round(loadgen):
    results = [run("relay", 0, 100), run("chat", 0, 150), run("relay", 1, 200),
               run("chat", 1, 280), run("relay", 2, 150), run("chat", 2, 210)]
    got = loadgen.round_ratios(results, "chat")
    assert got["ratios"] == [1.5, 1.4, 1.4]
    assert got["mean"] == pytest.approx(1.433, abs=0.001)
    # sd 0.0577, t(2) 4.303: half-width 0.143.
    assert got["ci95"] == pytest.approx([1.290, 1.577], abs=0.002)


def test_noisy_rounds_are_left_out_while_two_quiet_ones_remain(loadgen):
    results = [run("relay", 0, 100), run("chat", 0, 150), run("relay", 1, 100, noisy=True),
               run("chat", 1, 300), run("relay", 2, 100), run("chat", 2, 140)]
    assert loadgen.round_ratios(results, "chat")["ratios"] == [1.5, 1.4]
    # With only one quiet round left, every round counts.
    assert loadgen.round_ratios(results[:4], "chat")["ratios"] == [1.5, 3.0]


def test_no_interval_without_two_rounds_or_a_relay(loadgen):
    assert loadgen.round_ratios([run("relay", 0, 100), run("chat", 0, 150)], "chat") is None
    assert loadgen.round_ratios([run("chat", 0, 150), run("chat", 1, 150)], "chat") is None
    # A run that delivered nothing (CPU 0) is not a ratio.
    zero = [run("relay", 0, 100), run("chat", 0, 0), run("relay", 1, 100), run("chat", 1, 140)]
    assert loadgen.round_ratios(zero, "chat") is None


def test_pooled_reports_keep_each_run_with_its_own_relay(loadgen, capsys):
    def report(relay: float, chat: float, sha: str = "a") -> dict:
        return {"code": {"chatserver_sha256": sha}, "config": {"repeat": 2},
                "summary": {"relay": {}, "chat": {}},
                "results": [run("relay", 0, relay), run("chat", 0, chat),
                            run("relay", 1, relay), run("chat", 1, chat)]}

    pooled = loadgen.pool_reports([report(100, 150), report(200, 260)])
    assert sorted({r["repeat"] for r in pooled["results"]}) == [0, 1, 2, 3]
    assert pooled["scenarios"] == ["relay", "chat"]
    assert pooled["config"]["repeat"] == 4 and pooled["config"]["pooled_reports"] == 2
    assert loadgen.round_ratios(pooled["results"], "chat")["ratios"] == [1.5, 1.5, 1.3, 1.3]
    assert capsys.readouterr().err == ""
    loadgen.pool_reports([report(100, 150), report(100, 150, sha="b")])
    assert "other chatserver sources" in capsys.readouterr().err
