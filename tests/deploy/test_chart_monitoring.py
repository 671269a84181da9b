"""The chart's monitoring: the metrics ports, the ServiceMonitors, the dashboard and the scrape annotations, rendered by
the real helm (the rules: test_rules.py; against a real Prometheus: tests/controlplane/test_monitoring.py)."""

from __future__ import annotations

import json
import re

from .conftest import CHART, RELEASE, find
from .test_chart import MONITORING, selects


def test_every_monitoring_piece_is_off_by_default(chart):
    kinds = {o["kind"] for o in chart.template()}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert [o["metadata"]["name"] for o in chart.template() if o["kind"] == "ConfigMap"] == [
        f"{RELEASE}-purchase-system"]


def test_both_services_serve_metrics_on_a_named_port_of_their_own_in_the_pod_and_the_service(chart):
    objects = chart.template()
    for component in ("web", "api"):
        (container,) = find(objects, "Deployment", f"-{component}")["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080, "metrics": 9090}
        assert {"name": "METRICS_PORT", "value": "9090"} in container["env"]
        service = find(objects, "Service", f"-{component}")
        assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {"http": "http", "metrics": "metrics"}
        annotations = find(objects, "Deployment", f"-{component}")["spec"]["template"]["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"],
                annotations["prometheus.io/path"]) == ("true", "9090", "/metrics")
    quiet = find(chart.template({"metrics": {"scrapeAnnotations": False}}), "Deployment", "-api")
    assert not any(k.startswith("prometheus.io/") for k in quiet["spec"]["template"]["metadata"]["annotations"])
    assert chart.template({"metrics": {"port": 8080}}, check=False).returncode != 0, "the metrics port is not http's"


def test_the_service_monitor_selects_exactly_web_and_api_and_scrapes_their_metrics_port(chart):
    objects = chart.template(MONITORING)
    monitor = find(objects, "ServiceMonitor", "purchase-system")
    spec = monitor["spec"]
    services = {o["metadata"]["name"]: o["metadata"]["labels"] for o in objects if o["kind"] == "Service"}
    chosen = sorted(name for name, labels in services.items() if selects(spec["selector"], labels))
    assert chosen == [f"{RELEASE}-purchase-system-api", f"{RELEASE}-purchase-system-web"]
    assert spec["namespaceSelector"] == {"matchNames": ["store"]}
    assert [(e["port"], e["path"], e["interval"]) for e in spec["endpoints"]] == [("metrics", "/metrics", "30s")]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # what its Prometheus selects
    tuned = find(chart.template({"metrics": {"serviceMonitor": {
        "enabled": True, "namespace": "monitoring", "jobLabel": "app.kubernetes.io/component", "honorLabels": True,
        "scrapeTimeout": "10s", "relabelings": [{"action": "labeldrop", "regex": "pod_template_hash"}],
        "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "python_gc_.*"}]}}}),
        "ServiceMonitor")
    endpoint = tuned["spec"]["endpoints"][0]
    assert tuned["metadata"]["namespace"] == "monitoring" and tuned["spec"]["namespaceSelector"]["matchNames"] == [
        "store"]
    assert tuned["spec"]["jobLabel"] == "app.kubernetes.io/component"
    assert (endpoint["honorLabels"], endpoint["scrapeTimeout"]) == (True, "10s")
    assert endpoint["relabelings"][0]["action"] == "labeldrop" and endpoint["metricRelabelings"][0]["action"] == "drop"


def test_kedas_service_monitor_looks_in_kedas_namespace_and_keeps_its_metrics_namespace_label(chart):
    monitor = find(chart.template(MONITORING), "ServiceMonitor", "-keda")
    assert monitor["metadata"]["namespace"] == "keda"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["keda"]}
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "keda-operator"}}
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_the_dashboard_is_a_configmap_for_grafanas_sidecar_holding_the_file_from_docs(chart):
    configmap = find(chart.template(MONITORING), "ConfigMap", "-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(configmap["data"]["purchase-system.json"])
    assert shipped == json.loads((CHART / "dashboards" / "purchase-system.json").read_text())
    assert shipped == json.loads((CHART.parents[1] / "docs" / "grafana-dashboard.json").read_text())


def dashboard() -> dict:
    return json.loads((CHART / "dashboards" / "purchase-system.json").read_text())


def test_the_dashboard_has_a_templated_data_source_units_and_the_rate_interval_everywhere():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    titles = [panel["title"] for panel in board["panels"]]
    for wanted in ("Buys accepted and refused", "Publish latency", "Consumer group lag per partition",
                   "api replicas: desired and ready", "Purchase to stored", "Dead letters", "Store retries"):
        assert any(title.startswith(wanted) for title in titles), wanted
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        for target in panel["targets"]:
            assert 'namespace="$namespace"' in target["expr"], target["expr"]
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", (panel["title"], target["expr"])
