"""The Prometheus dashboard and alert rules in deploy/grafana only name metrics the services
export (a renamed metric must not leave a panel or an alert silently empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import shared.infra.metrics  # noqa: F401 - registers the metrics

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
NAMES = re.compile(r"\bsync_[a-z_]+\b")


def exported() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("sync_"):
            names.update(sample.name for sample in family.samples)
            names.add(family.name)
            names.update(f"{family.name}{s}" for s in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((GRAFANA / "sync-metrics.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in NAMES.findall(expr)}
    assert used, "the dashboard queries the sync metrics"
    assert used <= exported(), used - exported()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_cover_the_four_conditions_on_exported_metrics() -> None:
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in NAMES.findall(rule["expr"])}
    assert used <= exported(), used - exported()
    for needed in (
        "sync_connection_lag_seconds",  # lag
        "sync_failures_total",  # dead-letter growth
        "sync_api_budget_used_ratio",  # budget exhaustion
        "sync_connections",  # a connection needing re-authorisation
    ):
        assert needed in used, needed
