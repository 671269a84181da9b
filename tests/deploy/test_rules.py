"""The chart's recording and alert rules (templates/_rules.tpl) checked by the real promtool: they parse, and each alert
fires on series made to fire it and stays silent on series just short of it (`promtool test rules`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import find

NS = 'namespace="store"'
WEB = f'{NS}, service="shop-purchase-system-web"'
API = f'{NS}, service="shop-purchase-system-api"'
SCALED = f'{NS}, scaledObject="shop-purchase-system-api"'
LAG = f'consumer_group_lag{{{WEB}, group="purchase-group", topic="purchases", partition="0"'
STORED = f"purchase_accepted_to_stored_seconds_bucket{{{API}"


def rule_groups(chart, values: dict | None = None) -> list[dict]:
    rule = find(chart.template({"metrics": {"prometheusRule": {"enabled": True}}, **(values or {})}), "PrometheusRule")
    return rule["spec"]["groups"]


def api_pods_up(count: int, samples: str) -> list[tuple[str, str]]:
    return [(f'up{{{API}, pod="api-{n}"}}', samples) for n in range(count)]


def stored_buckets(slow: bool) -> list[tuple[str, str]]:
    """The purchase-to-stored histogram, every purchase in the 0.5-s bucket, or the 2.5-s one."""
    fast = "0+0x30" if slow else "0+10x30"
    return [(f'{STORED}, le="0.5"}}', fast), (f'{STORED}, le="1"}}', fast),
            (f'{STORED}, le="2.5"}}', "0+10x30"), (f'{STORED}, le="+Inf"}}', "0+10x30")]


# alert: (evaluated at, the labels it fires with, series that fire it, series that do not)
CASES = {
    "PurchaseConsumerLagHigh": (
        "10m", {"group": "purchase-group", "topic": "purchases", "severity": "warning"},
        [(f'{LAG}, pod="web-1"}}', "6000x20"), (f'{LAG}, pod="web-2"}}', "5800x20")],
        [(f'{LAG}, pod="web-1"}}', "4000x20"), (f'{LAG}, pod="web-2"}}', "4000x20")]),
    "PurchaseConsumerLagGrowingAtMaxReplicas": (
        "25m", {"group": "purchase-group", "topic": "purchases", "severity": "critical"},
        [(f'{LAG}, pod="web-1"}}', "0+100x40"), *api_pods_up(8, "1x40")],
        [(f'{LAG}, pod="web-1"}}', "0+100x40"), *api_pods_up(7, "1x40")]),
    "PurchaseRefusalsHigh": (
        "20m", {"severity": "critical"},
        [(f"purchases_accepted_total{{{WEB}}}", "0+100x30"),
         (f'purchases_rejected_total{{{WEB}, status="503"}}', "0+5x30")],
        [(f"purchases_accepted_total{{{WEB}}}", "0+100x30"),
         (f'purchases_rejected_total{{{WEB}, status="503"}}', "0+0x30"),
         (f'purchases_rejected_total{{{WEB}, status="400"}}', "0+50x30")]),  # a client's mistakes are not ours
    "PurchaseDeadLettered": (
        "10m", {"reason": "not_json", "severity": "warning"},
        [(f'purchases_dead_lettered_total{{{API}, reason="not_json"}}', "0x5 1x15")],
        [(f'purchases_dead_lettered_total{{{API}, reason="not_json"}}', "0x20")]),
    "PurchaseToStoredSlow": ("20m", {"severity": "warning"}, stored_buckets(slow=True), stored_buckets(slow=False)),
    "PurchaseProducerReplacedRepeatedly": (
        "10m", {"pod": "web-1", "severity": "warning"},
        [(f'kafka_producer_replacements_total{{{WEB}, pod="web-1"}}', "0 0 1 2 3 4 4 4 4 4 4 4")],
        [(f'kafka_producer_replacements_total{{{WEB}, pod="web-1"}}', "0 0 1 1 1 1 1 1 1 1 1 1")]),
    "PurchaseKafkaUnavailable": (
        "5m", {"severity": "critical"},
        [(f'kafka_can_take_purchases{{{WEB}, pod="web-1"}}', "0x10"),
         (f'kafka_can_take_purchases{{{WEB}, pod="web-2"}}', "0x10")],
        [(f'kafka_can_take_purchases{{{WEB}, pod="web-1"}}', "0x10"),
         (f'kafka_can_take_purchases{{{WEB}, pod="web-2"}}', "1x10")]),  # one pod can still publish
    "PurchaseLagUnmeasured": (
        "10m", {"severity": "warning"},
        [(f"consumer_group_lag_sampled_timestamp_seconds{{{WEB}}}", "0x20")],
        [(f"consumer_group_lag_sampled_timestamp_seconds{{{WEB}}}", "0+60x20")]),  # read every minute
    "PurchaseKedaScalerErrors": (
        "15m", {"scaledObject": "shop-purchase-system-api", "severity": "warning"},
        [(f'keda_scaler_detail_errors_total{{{SCALED}, scaler="kafkaScaler"}}', "0+1x20")],
        [(f'keda_scaler_detail_errors_total{{{SCALED}, scaler="kafkaScaler"}}', "0x20")]),
    "PurchaseTargetDown": (
        "5m", {"service": "shop-purchase-system-web", "pod": "web-1", "severity": "warning"},
        [(f'up{{{WEB}, pod="web-1"}}', "0x10")],
        [(f'up{{{WEB}, pod="web-1"}}', "1x10")]),
}


def without_annotations(groups: list[dict]) -> list[dict]:
    """The groups as promtool's unit tests compare them: labels only (the annotations' templates are parsed by
    `promtool check rules`; test_every_alert_has_a_severity_a_summary_and_a_runbook checks they are there)."""
    return [{**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]]}
            for group in groups]


def test_the_rendered_rules_pass_promtool_check(chart, promtool, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups(chart)}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = [r["alert"] for g in rule_groups(chart) for r in g["rules"] if "alert" in r]
    assert sorted(alerts) == sorted(CASES), "every alert has its promtool test, and every test an alert"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section(chart):
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    anchors = {line[3:].strip().lower() for line in operations.splitlines() if line.startswith("## ")}
    for group in rule_groups(chart, {"metrics": {"prometheusRule": {"enabled": True,
                                                                   "runbookUrl": "https://docs.example/ops"}}}):
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            assert rule["annotations"]["runbook_url"] == f"https://docs.example/ops#{rule['alert'].lower()}"
            assert rule["alert"].lower() in anchors, f"docs/operations.md has no section for {rule['alert']}"


@pytest.mark.parametrize("alert", CASES)
def test_the_alert_fires_on_series_that_cross_its_threshold_and_not_on_series_that_stay_short(chart, promtool,
                                                                                            tmp_path, alert):
    at, labels, firing, quiet = CASES[alert]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": without_annotations(rule_groups(chart))}))

    def case(series, expected):
        return {"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}]}

    fired = [{"exp_labels": {"namespace": "store", **labels}}]
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
             "tests": [case(firing, fired), case(quiet, [])]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", "test.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_makes_promtool_fail(chart, promtool, tmp_path):
    """The check above can fail: the lag alert, expected silent on series that fire it."""
    at, labels, firing, _ = CASES["PurchaseConsumerLagHigh"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": without_annotations(rule_groups(chart))}))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": s, "values": v} for s, v in firing],
        "alert_rule_test": [{"eval_time": at, "alertname": "PurchaseConsumerLagHigh", "exp_alerts": []}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", "test.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "PurchaseConsumerLagHigh" in result.stdout + result.stderr
