"""deploy/k8s: every manifest valid against the Kubernetes schemas, offline and strict
(kubernetes-validate ships them), and the references between them whole: probes hit the
paths the app serves, Services and PodDisruptionBudgets select pods that exist, autoscalers
target Deployments, every Secret and ConfigMap used is defined (as a template at least), the
image's arguments are parts the entrypoint accepts, grace periods cover the drains."""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from services.common.health import router as health_router
from services.common.serve import APPS, parse_args
from services.common.settings import REPO_ROOT, ServiceSettings
from tests.deploy.settings_names import setting_names

K8S = REPO_ROOT / "deploy" / "k8s"
# The oldest Kubernetes the manifests are for, and the newest the validator knows.
VERSIONS = ("1.31.0", "1.37.0")
NAMESPACE = "cert-platform"
TEMPLATES = {"secrets.example.yaml", "jwks.example.yaml"}
UVICORN_GRACEFUL_SECONDS = 10  # services/common/serve.py timeout_graceful_shutdown


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def documents() -> list[tuple[str, dict]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load(path)
    ]


@pytest.fixture(scope="module")
def objects(documents) -> dict[str, dict[str, dict]]:
    """kind → name → object."""
    found: dict[str, dict[str, dict]] = defaultdict(dict)
    for _, doc in documents:
        name = doc["metadata"]["name"]
        assert name not in found[doc["kind"]], f"two {doc['kind']} named {name}"
        found[doc["kind"]][name] = doc
    return found


def pod_specs(objects) -> dict[str, dict]:
    """Every pod template: Deployments' and Jobs'."""
    return {
        f"{kind}/{name}": obj["spec"]["template"]
        for kind in ("Deployment", "Job")
        for name, obj in objects[kind].items()
    }


def containers(objects):
    for where, template in pod_specs(objects).items():
        for container in template["spec"]["containers"]:
            yield where, template, container


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(documents, version):
    for file, doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{file} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_validation_refuses_an_unknown_field(objects):
    broken = copy.deepcopy(objects["Deployment"]["gateway"])
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_the_kustomization_lists_every_manifest_but_the_templates(kustomization):
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - TEMPLATES
    assert kustomization["namespace"] == NAMESPACE


def test_everything_is_in_the_namespace(documents):
    for _, doc in documents:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_every_part_and_worker_is_deployed(objects):
    deployed = set(objects["Deployment"])
    assert set(APPS) <= deployed
    assert {f"{p}-worker" for p in APPS} <= deployed
    assert {"migrate", "seed"} <= set(objects["Job"])


def test_the_image_gets_arguments_the_entrypoint_accepts(objects, kustomization):
    image = kustomization["images"][0]["name"]
    for where, _, container in containers(objects):
        assert container["image"].split(":")[0] == image, where
        args = parse_args(container["args"])
        kind, _, name = where.partition("/")
        if kind == "Job":
            assert args.part == name
        elif name.endswith("-worker"):
            assert (args.part, args.worker) == (name.removesuffix("-worker"), True)
        else:
            assert (args.part, args.worker, args.host) == (name, False, "0.0.0.0")


def test_http_parts_probe_the_paths_the_app_serves(objects):
    served = {route.path for route in health_router.routes}
    for name in APPS:
        template = objects["Deployment"][name]["spec"]["template"]
        container = template["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert parse_args(container["args"]).port == ports["http"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in served and get["port"] in ports, (name, probe)
        # The pod keeps serving during preStop, then uvicorn drains; all inside the grace period.
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        grace = template["spec"]["terminationGracePeriodSeconds"]
        assert pre_stop + UVICORN_GRACEFUL_SECONDS < grace, name


def test_workers_are_given_longer_than_their_drain(objects):
    config = objects["ConfigMap"]["platform-config"]["data"]
    default = ServiceSettings.model_fields["worker_drain_seconds"].default
    for part in APPS:
        drain = int(config.get(f"{part.upper()}_WORKER_DRAIN_SECONDS", default))
        grace = objects["Deployment"][f"{part}-worker"]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        assert grace > drain, part


def test_every_container_is_non_root_and_sized(objects):
    for where, template, container in containers(objects):
        pod = template["spec"].get("securityContext", {})
        own = container.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
        assert own.get("runAsUser", pod.get("runAsUser")) != 0, where
        assert own["allowPrivilegeEscalation"] is False, where
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (where, bound)


def test_services_select_existing_pods_on_their_ports(objects):
    templates = {name: d["spec"]["template"] for name, d in objects["Deployment"].items()}
    for name, service in objects["Service"].items():
        chosen = [
            t for t in templates.values() if matches(service["spec"]["selector"], t["metadata"]["labels"])
        ]
        assert chosen, f"Service {name} selects no pod"
        for template in chosen:
            names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in names, (name, port)


def test_autoscalers_target_the_gateway_and_the_services(objects):
    targets = set()
    for name, hpa in objects["HorizontalPodAutoscaler"].items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in objects["Deployment"], name
        assert hpa["spec"]["minReplicas"] <= objects["Deployment"][ref["name"]]["spec"]["replicas"]
        assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        targets.add(ref["name"])
    assert targets == set(APPS)


def test_every_deployment_has_a_disruption_budget_that_lets_a_node_drain(objects):
    budgets = objects["PodDisruptionBudget"].values()
    for name, deployment in objects["Deployment"].items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if matches(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(mine) == 1, name
        spec = mine[0]["spec"]
        if "minAvailable" in spec:
            assert spec["minAvailable"] < deployment["spec"]["replicas"], name
        else:
            assert spec["maxUnavailable"] >= 1, name
    for budget in budgets:
        assert any(
            matches(budget["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
            for d in objects["Deployment"].values()
        ), budget["metadata"]["name"]


def test_secrets_and_config_maps_used_are_defined_with_their_keys(objects):
    def has(kind: str, name: str, key: str | None = None) -> bool:
        obj = objects[kind].get(name)
        if obj is None:
            return False
        return key is None or key in obj.get("data", {}) or key in obj.get("stringData", {})

    for where, template, container in containers(objects):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert has("ConfigMap", source["configMapRef"]["name"]), where
            else:
                assert has("Secret", source["secretRef"]["name"]), where
        for env in container.get("env", []):
            ref = env["valueFrom"].get("secretKeyRef") or env["valueFrom"]["configMapKeyRef"]
            kind = "Secret" if "secretKeyRef" in env["valueFrom"] else "ConfigMap"
            assert has(kind, ref["name"], ref["key"]), (where, env["name"])
        mounted = {m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        assert mounted <= set(volumes), where
        for volume in volumes.values():
            if "secret" in volume:
                assert has("Secret", volume["secret"]["secretName"]), where
            if "configMap" in volume:
                assert has("ConfigMap", volume["configMap"]["name"]), where
    for ingress in objects["Ingress"].values():
        for tls in ingress["spec"]["tls"]:
            assert has("Secret", tls["secretName"])


def test_the_signing_key_is_mounted_only_where_tokens_are_signed_and_readable_there(objects):
    for where, template, _ in containers(objects):
        secrets = {v["secret"]["secretName"] for v in template["spec"].get("volumes", []) if "secret" in v}
        if "gateway-signing-keys" in secrets:
            assert where in {"Deployment/gateway", "Job/seed"}, where
            # Mounted owner-read-only as root: the non-root user reads it through its group.
            pod = template["spec"]["securityContext"]
            assert pod["fsGroup"] == pod["runAsGroup"], where


def test_the_settings_set_are_read_by_the_platform(objects):
    known = setting_names()
    set_here = set(objects["ConfigMap"]["platform-config"]["data"]) | set(
        objects["Secret"]["platform-secrets"]["stringData"]
    )
    assert set_here <= known, set_here - known
    config = objects["ConfigMap"]["platform-config"]["data"]
    # Paths the settings point at are where the volumes are mounted.
    gateway = objects["Deployment"]["gateway"]["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"] for m in gateway["volumeMounts"]}
    assert config["GATEWAY_SIGNING_KEY_DIR"] in mounts
    assert str(Path(config["JWKS_PATH"]).parent) in mounts


def test_secret_templates_hold_only_marked_placeholders(objects):
    for name, secret in objects["Secret"].items():
        for key, value in secret["stringData"].items():
            assert "change-me" in value or "PLACEHOLDER" in value, (name, key)


def test_the_ingress_exposes_the_gateway_with_read_timeouts(objects):
    ingress = objects["Ingress"]["gateway"]
    backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert {b["name"] for b in backends} == {"gateway"}
    port_names = {p["name"] for p in objects["Service"]["gateway"]["spec"]["ports"]}
    assert all(b["port"]["name"] in port_names for b in backends)
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("client-header-timeout", "client-body-timeout", "proxy-read-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) > 0
