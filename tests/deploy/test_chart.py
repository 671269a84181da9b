"""The Helm chart, rendered by the real helm and checked against Kubernetes' and KEDA's schemas."""

from __future__ import annotations

import json
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from scripts.tools import crd_schemas

from .conftest import CHART, RELEASE, find

KUBERNETES_VERSION = "1.33.0"  # the oldest Kubernetes the README supports is 1.27; Minikube defaults to 1.33+

EXTERNAL = {
    "kafka": {"enabled": False},
    "mongodb": {"enabled": False},
    "kafkaClient": {"bootstrapServers": "my-cluster-kafka-bootstrap.kafka:9092"},
    "externalMongodb": {"existingSecret": "purchases-mongodb"},
}
SASL = {
    "kafkaClient": {"securityProtocol": "SASL_PLAINTEXT",
                    "sasl": {"mechanism": "SCRAM-SHA-256", "existingSecret": "shop-kafka-credentials"}},
    "kafka": {"listeners": {"client": {"protocol": "SASL_PLAINTEXT"}}},
}
SIGNIN = {"auth": {"enabled": True, "issuer": "https://id.example.com/realms/shop", "audience": "purchase-web",
                   "clientId": "shop-web", "authorizedParties": ["shop-web", "shop-app"]}}
MONITORING = {"metrics": {"serviceMonitor": {"enabled": True, "selector": {"release": "kube-prometheus-stack"}},
                          "keda": {"serviceMonitor": {"enabled": True}},
                          "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}},
              "networkPolicy": {"metricsNamespaces": ["monitoring"]}}
SCENARIOS = {
    "defaults": ({}, []),
    "signin": (SIGNIN, []),
    "external-kafka-and-mongodb": (EXTERNAL, []),
    "sasl": (SASL, []),
    "sasl-values-file": ({}, ["values-sasl.yaml"]),
    "ingress": ({"ingress": {"enabled": True}}, []),
    "keda-off": ({"keda": {"enabled": False}}, []),
    "no-autoscaling": ({"keda": {"enabled": False}, "cpuAutoscaling": {"enabled": False}}, []),
    "development": ({}, ["values-dev.yaml"]),
    "production": ({}, ["values-production.yaml"]),
    "monitoring": (MONITORING, []),
}
CUSTOM = ("keda.sh/", "monitoring.coreos.com/")  # kinds from CRDs, checked against their own schemas


def render(chart, scenario: str) -> list[dict]:
    values, files = SCENARIOS[scenario]
    return chart.template(values, files)


def workloads(objects):
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def containers(objects):
    return [c for w in workloads(objects) for c in w["spec"]["template"]["spec"]["containers"]]


def env(container: dict, configmap: dict) -> dict[str, object]:
    """A container's environment, with ConfigMap references resolved; Secret references stay references."""
    resolved = {}
    for item in container.get("env", []):
        if "value" in item:
            resolved[item["name"]] = item["value"]
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == configmap["metadata"]["name"]
            resolved[item["name"]] = configmap["data"][ref["key"]]
        else:
            resolved[item["name"]] = item["valueFrom"]
    return resolved


def pod_labels(objects, suffix: str) -> dict:
    workload = find(objects, "Deployment" if suffix != "topics-1" else "Job", suffix)
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


# --- helm's own checks and the schemas ------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_passes(chart, scenario):
    values, files = SCENARIOS[scenario]
    result = chart.lint(values, files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid_for_kubernetes(chart, scenario):
    objects = [o for o in render(chart, scenario) if not o["apiVersion"].startswith(CUSTOM)]
    assert len(objects) >= 8
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", ["defaults", "sasl", "development", "monitoring"])
def test_custom_objects_are_valid_for_their_crd_schemas(chart, scenario):
    """KEDA's objects against KEDA's CRD schemas; the ServiceMonitors and the PrometheusRule against
    prometheus-operator's (both as @kubernetes-models packages them, pinned in crd-schemas/package.json)."""
    objects = [o for o in render(chart, scenario) if o["apiVersion"].startswith(CUSTOM)]
    assert objects
    if scenario == "monitoring":
        assert {o["kind"] for o in objects} == {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
    result = subprocess.run(["node", "validate.mjs"], input=json.dumps(objects), capture_output=True, text=True,
                            cwd=crd_schemas().parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(objects)


def test_the_crd_schema_check_can_fail(chart):
    objects = render(chart, "monitoring")
    scaled_object, monitor = find(objects, "ScaledObject"), find(objects, "ServiceMonitor", "-keda")
    scaled_object["spec"]["maxReplicaCount"] = "eight"
    monitor["spec"]["endpoints"][0]["honorLabels"] = "yes"
    result = subprocess.run(["node", "validate.mjs"], input=json.dumps([scaled_object, monitor]), capture_output=True,
                            text=True, cwd=crd_schemas().parent)
    assert result.returncode == 1 and "maxReplicaCount must be integer" in result.stdout
    assert "honorLabels must be boolean" in result.stdout


def test_values_outside_the_schema_are_refused(chart):
    for bad in ({"keda": {"maxReplicaCount": "many"}}, {"config": {"partitions": 0}}, {"surprise": True},
                {"kafkaClient": {"securityProtocol": "CARRIER_PIGEON"}}):
        result = chart.template(bad, check=False)
        assert not isinstance(result, list) and result.returncode != 0, bad


# --- what matters in the objects -------------------------------------------------------------------------

def test_services_have_probes_and_a_locked_down_security_context(chart):
    objects = render(chart, "defaults")
    for deployment in [find(objects, "Deployment", "-web"), find(objects, "Deployment", "-api")]:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        # A frozen process cannot use the pod's grace period: the liveness probe's own is short, and the probe
        # restarts a frozen container within 20 s (period x failures + timeout + its grace).
        liveness = container["livenessProbe"]
        assert liveness["terminationGracePeriodSeconds"] <= 5
        assert liveness["periodSeconds"] * liveness["failureThreshold"] + liveness["timeoutSeconds"] + liveness[
            "terminationGracePeriodSeconds"] <= 20
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert pod["terminationGracePeriodSeconds"] > 30
        assert pod["automountServiceAccountToken"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_images_are_pinned_and_latest_is_refused(chart):
    for container in containers(render(chart, "defaults")):
        repository, _, tag = container["image"].rpartition(":")
        assert repository and tag and tag != "latest", container["image"]
    refused = chart.template({"web": {"image": {"tag": "latest"}}}, check=False)
    assert refused.returncode != 0 and "/web/image/tag" in refused.stderr


def test_the_scaled_object_watches_the_group_and_topic_the_api_consumes(chart):
    objects = render(chart, "defaults")
    configmap = find(objects, "ConfigMap")
    api = find(objects, "Deployment", "-api")
    api_env = env(api["spec"]["template"]["spec"]["containers"][0], configmap)
    scaled_object = find(objects, "ScaledObject")
    (trigger,) = scaled_object["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == api_env["KAFKA_CONSUMER_GROUP"] == "purchase-group"
    assert trigger["metadata"]["topic"] == api_env["KAFKA_TOPIC"] == "purchases"
    assert trigger["metadata"]["bootstrapServers"] == api_env["KAFKA_BOOTSTRAP_SERVERS"] == f"{RELEASE}-kafka:9092"
    assert trigger["metadata"]["offsetResetPolicy"] == "earliest"  # the api's own auto_offset_reset
    assert scaled_object["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert "replicas" not in api["spec"], "KEDA owns the api's replicas"
    behavior = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_max_replicas_never_exceed_the_partitions(chart):
    objects = render(chart, "defaults")
    spec = find(objects, "ScaledObject")["spec"]
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] <= int(find(objects, "ConfigMap")["data"]["TOPIC_PARTITIONS"]) == 8
    refused = chart.template({"keda": {"maxReplicaCount": 9}}, check=False)
    assert refused.returncode != 0 and "must not exceed config.partitions" in refused.stderr
    wider = chart.template({"keda": {"maxReplicaCount": 12}, "config": {"partitions": 12}})
    assert find(wider, "ScaledObject")["spec"]["maxReplicaCount"] == 12


def test_with_sasl_each_part_is_a_principal_of_its_own_and_keda_authenticates_as_its_own(chart):
    objects = render(chart, "sasl")
    configmap = find(objects, "ConfigMap")
    workloads = {"web": find(objects, "Deployment", "-web"), "api": find(objects, "Deployment", "-api"),
                 "topics": find(objects, "Job")}
    for part, workload in workloads.items():
        settings = env(workload["spec"]["template"]["spec"]["containers"][0], configmap)
        assert settings["KAFKA_SASL_USERNAME"] == f"purchase-{part}"
        assert settings["KAFKA_SASL_PASSWORD"]["secretKeyRef"] == {"name": "shop-kafka-credentials",
                                                                   "key": f"{part}-password"}
        assert settings["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert settings["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
    auth = find(objects, "TriggerAuthentication")
    (password,) = auth["spec"]["secretTargetRef"]
    assert (password["parameter"], password["name"], password["key"]) == (
        "password", "shop-kafka-credentials", "keda-password")
    parameters = {ref["parameter"]: configmap["data"][ref["key"]] for ref in auth["spec"]["configMapTargetRef"]}
    assert parameters == {"sasl": "scram_sha256", "username": "purchase-keda", "tls": "disable"}
    (trigger,) = find(objects, "ScaledObject")["spec"]["triggers"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert not [o for o in render(chart, "defaults") if o["kind"] == "TriggerAuthentication"]
    # No Secret named: refused, with the keys it must hold.
    refused = chart.template({"kafkaClient": {"securityProtocol": "SASL_PLAINTEXT"}}, check=False)
    assert refused.returncode != 0 and "existingSecret" in refused.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_are_never_plain_env_values(chart, scenario):
    objects = render(chart, scenario)
    assert not [o for o in objects if o["kind"] == "Secret"], "the chart keeps no secrets of its own"
    checked = 0
    for container in containers(objects):
        for item in container.get("env", []):
            if re.search(r"(^|_)(PASSWORD|SECRET|URI)($|_)", item["name"]):
                checked += 1
                if "value" in item:
                    # Only a composition of Secret-backed variables, e.g. mongodb://user:$(MONGODB_PASSWORD)@host
                    assert re.fullmatch(r"mongodb://purchases:\$\(MONGODB_PASSWORD\)@[\w.-]+:27017/\w+\?authSource=\w+",
                                        item["value"]), item
                else:
                    assert "secretKeyRef" in item["valueFrom"], item
    assert checked >= 1, "api always gets a MongoDB connection string"
    rendered = json.dumps(objects)
    assert "dev-mongodb" not in rendered and "dev-kafka" not in rendered


def test_network_policies_select_the_pods_they_mean(chart):
    objects = render(chart, "defaults")
    policies = {o["metadata"]["name"].rsplit("-", 1)[-1]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"web", "api", "kafka", "mongodb"}
    web, api, topics = pod_labels(objects, "-web"), pod_labels(objects, "-api"), pod_labels(objects, "topics-1")

    def bitnami(name: str) -> dict:
        return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": RELEASE}

    assert selects(policies["web"]["podSelector"], web) and not selects(policies["web"]["podSelector"], api)
    assert selects(policies["api"]["podSelector"], api) and not selects(policies["api"]["podSelector"], web)
    (api_from,) = policies["api"]["ingress"][0]["from"]
    assert selects(api_from["podSelector"], web) and not selects(api_from["podSelector"], topics)

    assert policies["kafka"]["podSelector"]["matchLabels"] == bitnami("kafka")
    clients, keda = policies["kafka"]["ingress"][0]["from"]
    assert all(selects(clients["podSelector"], labels) for labels in (web, api, topics))
    assert not selects(clients["podSelector"], bitnami("mongodb"))
    assert keda["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}

    assert policies["mongodb"]["podSelector"]["matchLabels"] == bitnami("mongodb")
    (mongo_from,) = policies["mongodb"]["ingress"][0]["from"]
    assert selects(mongo_from["podSelector"], api)
    assert not selects(mongo_from["podSelector"], web) and not selects(mongo_from["podSelector"], topics)


def policy_of(objects, component: str) -> dict:
    (policy,) = [o["spec"] for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith(
        f"-{component}")]
    assert policy["policyTypes"] == ["Ingress"]
    return policy


MONITORING_NAMESPACE = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def test_api_admits_web_alone_to_its_http_port_and_the_listed_namespaces_to_its_metrics_port_alone(chart):
    objects = chart.template({"networkPolicy": {"metricsNamespaces": ["monitoring"]}})
    web, api = pod_labels(objects, "-web"), pod_labels(objects, "-api")
    http, metrics = policy_of(objects, "api")["ingress"]  # two rules, each with a "from" and a port
    assert http["ports"] == [{"port": "http", "protocol": "TCP"}]
    (web_pods,) = http["from"]
    assert set(web_pods) == {"podSelector"} and selects(web_pods["podSelector"], web)
    assert not selects(web_pods["podSelector"], api)
    assert metrics == {"from": [MONITORING_NAMESPACE], "ports": [{"port": "metrics", "protocol": "TCP"}]}
    # The named ports are the containers' own: http is 8080, metrics the metrics port.
    (container,) = find(objects, "Deployment", "-api")["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080, "metrics": 9090}
    # No namespace listed: nobody reaches the metrics port (and only web the http one).
    (alone,) = policy_of(chart.template({}), "api")["ingress"]
    assert alone["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_web_admits_anyone_to_its_http_port_and_only_the_listed_namespaces_to_its_metrics_port(chart):
    objects = chart.template({"networkPolicy": {"metricsNamespaces": ["monitoring"]}})
    anyone, metrics = policy_of(objects, "web")["ingress"]
    assert anyone == {"ports": [{"port": "http", "protocol": "TCP"}]}
    assert metrics == {"from": [MONITORING_NAMESPACE], "ports": [{"port": "metrics", "protocol": "TCP"}]}


def test_signin_values_become_webs_oidc_settings_and_only_webs(chart):
    objects = render(chart, "signin")
    configmap = find(objects, "ConfigMap", "purchase-system")
    web = env(find(objects, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0], configmap)
    assert {k: web[k] for k in web if k.startswith(("AUTH_", "OIDC_"))} == {
        "AUTH_MODE": "oidc", "OIDC_ISSUER": "https://id.example.com/realms/shop", "OIDC_AUDIENCE": "purchase-web",
        "OIDC_CUSTOMER_CLAIM": "sub", "OIDC_CLIENT_ID": "shop-web", "OIDC_AUTHORIZED_PARTIES": "shop-web,shop-app",
        "OIDC_ALLOW_INSECURE_ISSUER": "false"}
    api = env(find(objects, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0], configmap)
    assert not [k for k in api if k.startswith(("AUTH_", "OIDC_"))]
    defaults = render(chart, "defaults")
    web_off = find(defaults, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in web_off["env"] if e["name"].startswith(("AUTH_", "OIDC_"))]


@pytest.mark.parametrize("auth", [{"enabled": True}, {"enabled": True, "issuer": "id.example.com", "audience": "w"},
                                  {"enabled": True, "issuer": "https://id.example.com", "audience": ""},
                                  {"enabled": False, "customerClaim": ""}, {"enabled": True, "scopes": "x"}])
def test_signin_without_an_issuer_url_and_audience_is_refused_by_the_schema(chart, auth):
    result = chart.lint({"auth": auth}, [])
    assert result.returncode != 0 and "auth" in result.stdout + result.stderr


def test_without_keda_a_cpu_hpa_scales_the_api(chart):
    objects = render(chart, "keda-off")
    assert not [o for o in objects if o["apiVersion"].startswith("keda.sh/")]
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == find(objects, "Deployment", "-api")["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 8)
    fixed = render(chart, "no-autoscaling")
    assert find(fixed, "Deployment", "-api")["spec"]["replicas"] == 1
    assert not [o for o in fixed if o["kind"] == "HorizontalPodAutoscaler"]


def test_a_config_change_rolls_the_pods(chart):
    def checksum(values):
        return find(chart.template(values), "Deployment", "-api")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"]
    assert checksum({}) == checksum({}) != checksum({"config": {"logLevel": "DEBUG"}})


def test_the_ingress_routes_only_the_api_and_the_page_to_web_for_purchase_local(chart):
    objects = render(chart, "ingress")
    (rule,) = find(objects, "Ingress")["spec"]["rules"]
    assert rule["host"] == "purchase.local"
    web_service = find(objects, "Service", "-web")["metadata"]["name"]
    assert [(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]] == [
        ("/api/", "Prefix", web_service), ("/static/", "Prefix", web_service), ("/", "Exact", web_service),
        ("/openapi.json", "Exact", web_service), ("/auth/config", "Exact", web_service)]
    # What an Ingress controller would route: Prefix matches whole path segments, Exact the path itself.
    def routed(path):
        return any(path == p["path"] if p["pathType"] == "Exact" else path.startswith(p["path"])
                   for p in rule["http"]["paths"])
    # /auth/config too: behind the Ingress the page learns that it must sign in, and where.
    assert all(map(routed, ["/", "/api/buy", "/api/user/555/purchases", "/static/shop.js", "/openapi.json",
                            "/auth/config"]))
    assert not any(map(routed, ["/metrics", "/healthz", "/readyz", "/metrics/"]))


def test_external_kafka_and_mongodb_are_used_as_given(chart):
    objects = render(chart, "external-kafka-and-mongodb")
    configmap = find(objects, "ConfigMap")
    assert configmap["data"]["KAFKA_BOOTSTRAP_SERVERS"] == "my-cluster-kafka-bootstrap.kafka:9092"
    api_env = env(find(objects, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0], configmap)
    assert api_env["MONGODB_URI"] == {"secretKeyRef": {"name": "purchases-mongodb", "key": "mongodb-uri"}}
    policies = {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert not any(name.endswith(("-kafka", "-mongodb")) for name in policies)
    missing = chart.template({"kafka": {"enabled": False}}, check=False)
    assert missing.returncode != 0 and "kafkaClient.bootstrapServers" in missing.stderr


def test_the_topics_job_creates_the_configured_partitions_with_the_api_image(chart):
    objects = render(chart, "defaults")
    job = find(objects, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.api.topics"]
    api = find(objects, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == api["image"]
    job_env = env(container, find(objects, "ConfigMap"))
    assert (job_env["KAFKA_TOPIC"], job_env["TOPIC_PARTITIONS"], job_env["KAFKA_DLQ_TOPIC"]) == (
        "purchases", "8", "purchases.dlq")


def test_notes_tell_how_to_reach_the_services_and_watch_the_scaler(chart):
    notes = chart.notes()
    assert f"port-forward svc/{RELEASE}-purchase-system-web 8080:8080" in notes
    assert 'curl -s "http://localhost:8080/api/getAllUserBuys/555"' in notes
    assert "get hpa,pods -w" in notes and f"describe scaledobject {RELEASE}-purchase-system-api" in notes
    assert "a CPU HPA" in chart.notes({"keda": {"enabled": False}})


def test_the_chart_declares_bitnamis_charts_behind_conditions():
    import yaml

    dependencies = {d["name"]: d for d in yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]}
    assert dependencies["kafka"]["condition"] == "kafka.enabled"
    assert dependencies["mongodb"]["condition"] == "mongodb.enabled"
    assert all(d["repository"] == "oci://registry-1.docker.io/bitnamicharts" for d in dependencies.values())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["global"]["security"]["allowInsecureImages"] is True
    for name in ("kafka", "mongodb"):
        assert values[name]["image"]["repository"].startswith("bitnamilegacy/")
        assert re.fullmatch(r"\d+\.\d+\.\d+-debian-12-r\d+", values[name]["image"]["tag"])


def test_the_production_values_create_topics_with_3_replicas(chart):
    objects = render(chart, "production")
    assert find(objects, "ConfigMap")["data"]["TOPIC_REPLICATION_FACTOR"] == "3"
    values = yaml.safe_load((CHART / "values-production.yaml").read_text())
    assert values["kafka"]["controller"]["replicaCount"] == 3
    assert values["kafka"]["overrideConfiguration"]["min.insync.replicas"] == 2


@pytest.mark.parametrize("workers", [1, 3])
def test_web_workers_set_web_workers_and_the_pods_requests_and_limits_are_per_worker(chart, workers):
    objects = chart.template({"web": {"workers": workers}})
    web = find(objects, "Deployment", "-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert env(container, find(objects, "ConfigMap"))["WEB_WORKERS"] == str(workers)
    assert container["resources"] == {"requests": {"cpu": f"{100 * workers}m", "memory": f"{96 * workers}Mi"},
                                      "limits": {"cpu": f"{1000 * workers}m", "memory": f"{256 * workers}Mi"}}
    tmp = next(v for v in web["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == f"{16 * (workers + 1)}Mi"
    refused = chart.template({"web": {"workers": 0}}, check=False)
    assert refused.returncode != 0 and "workers" in refused.stderr
