"""The pod runner's pure parts: Kubernetes' $(VAR) expansion, the image's command, Service addresses rewritten."""

from scripts.controlplane.pods import expand, image_command, image_repository
from scripts.controlplane.services import ServiceNetwork


def test_expansion_replaces_defined_names_keeps_undefined_ones_and_unescapes_dollars():
    env = {"PASSWORD": "s3cret", "HOST": "db"}
    assert expand("mongodb://u:$(PASSWORD)@$(HOST):27017", env) == "mongodb://u:s3cret@db:27017"
    assert expand("$(MISSING)/x", env) == "$(MISSING)/x"
    assert expand("$$(PASSWORD) costs $$5", env) == "$(PASSWORD) costs $5"


def test_an_image_runs_the_entrypoint_of_its_dockerfile_here():
    assert image_repository("registry.local:5000/purchase-api:0.1.0") == "purchase-api"
    assert image_command("purchase-api:0.1.0") == ["python", "-m", "services.api"]
    assert image_command("docker.io/purchase-web@sha256:abc") == ["python", "-m", "services.web"]


class Services:
    """The API server's answers for Services, as the network asks for them."""

    def __init__(self, names):
        self.names = names
        self.asked = []

    def get(self, path):
        self.asked.append(path)
        namespace, name = path.split("/")[4], path.split("/")[-1]
        return {"spec": {"selector": {"app": name}}} if (namespace, name) in self.names else None


def test_service_addresses_in_an_environment_point_at_local_proxies_and_nothing_else_changes():
    services = Services({("shop", "api"), ("other", "db")})
    network = ServiceNetwork(services, lambda namespace, selector: [])
    try:
        api = network.rewrite("shop", "http://api:8080")
        assert api.startswith("http://127.0.0.1:") and api != "http://127.0.0.1:8080"
        assert network.rewrite("shop", "http://api.shop.svc.cluster.local:8080") == api
        assert network.rewrite("shop", "db.other.svc:5432").startswith("127.0.0.1:")
        assert network.rewrite("shop", "kafka:9092") == "kafka:9092"  # no such Service
        assert network.rewrite("shop", "127.0.0.1:9092,127.0.0.1:9093") == "127.0.0.1:9092,127.0.0.1:9093"
        assert network.rewrite("shop", "INFO") == "INFO"
    finally:
        network.close()
