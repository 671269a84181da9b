"""/metrics on a port of its own: served there to anyone, and nowhere else (no customer route on that port)."""

import requests


def test_metrics_are_served_on_their_own_port_and_not_beside_the_customer_routes(running_system):
    for service in (running_system.web, running_system.api):
        scraped = requests.get(service.metrics_url, timeout=5)
        assert scraped.status_code == 200 and scraped.headers["Content-Type"].startswith("text/plain")
        assert "# TYPE process_resident_memory_bytes gauge" in scraped.text
        on_http_port = requests.get(f"{service.address}/metrics", timeout=5)
        assert on_http_port.status_code == 404 and on_http_port.json()["error"], service.name
        assert requests.get(f"{service.address}/healthz", timeout=5).status_code == 200
    # ... and the metrics port answers nothing else: no history, no buy.
    api_metrics = running_system.api.metrics_url.removesuffix("/metrics")
    assert requests.get(f"{api_metrics}/api/purchases/anyone", timeout=5).status_code == 404
    web_metrics = running_system.web.metrics_url.removesuffix("/metrics")
    assert requests.post(f"{web_metrics}/api/buy", json={}, timeout=5).status_code in (404, 405)


def test_each_service_names_what_it_exports_for_the_dashboard(running_system):
    web = requests.get(running_system.web.metrics_url, timeout=5).text
    api = requests.get(running_system.api.metrics_url, timeout=5).text
    for name in ("purchases_accepted_total", "purchases_rejected_total", "purchase_publish_seconds",
                 "kafka_can_take_purchases", "kafka_producer_replacements_total", "consumer_group_lag"):
        assert f"# HELP {name} " in web, name
    for name in ("purchases_stored_total", "purchase_accepted_to_stored_seconds", "purchases_dead_lettered_total",
                 "purchase_store_retries_total", "consumer_lag"):
        assert f"# HELP {name} " in api, name
