"""deploy/k8s/prometheus/alerts.yml checked by Prometheus's own tool: the rules parse (``promtool check rules``) and
each alert fires on the series that mean trouble, with the labels and annotations the runbook names, while a healthy
system fires none (``promtool test rules tests/alert_rules.test.yml``). promtool comes from Debian's ``prometheus``
package (``make promtool-deps``, run by ``make test``); without it the tests are skipped, except in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "deploy" / "k8s" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "tests" / "alert_rules.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: make promtool-deps installs it")
        pytest.skip("promtool not installed (make promtool-deps)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_the_alert_rules_parse(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_each_alert_fires_on_trouble_and_none_on_a_healthy_system(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    rules = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    assert fires == rules, f"alerts without a test that makes them fire: {sorted(rules - fires)}"
