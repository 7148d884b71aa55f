"""Prometheus for the cluster: Kubernetes pod discovery with its own read-only identity, scraping Triton's
metrics port every second with the labels the operator queries by. Pure (objects and configuration)."""

from __future__ import annotations

from typing import Any

from hack.testbed.state import RunDir

__all__ = ["OPERATOR_RELABEL", "SECURED_PORT", "SECURED_USER", "TRITON_RELABEL", "USER", "operated_service", "rbac", "scrape_config", "web_config"]

USER = "foresail-prometheus"  # the CN of its client certificate
SECURED_PORT = 9443  # the secured Prometheus (on demand: Cluster.start_secured_prometheus)
SECURED_USER = "foresail"
ROLE = "foresail-local-prometheus"

# Prometheus relabelling for Triton pods: keep the container port named "metrics" (8002) of running
# pods and add namespace, pod and foresail_dev_inferenceservice (from the pod label
# foresail.dev/inferenceservice) and foresail_dev_revision (from foresail.dev/revision: the rollout gates
# compare revisions). The Helm chart documents the same rules for production.
TRITON_RELABEL: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": "metrics"},
    {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {
        "source_labels": ["__meta_kubernetes_pod_label_foresail_dev_inferenceservice"],
        "target_label": "foresail_dev_inferenceservice",
    },
    {"source_labels": ["__meta_kubernetes_pod_label_foresail_dev_revision"], "target_label": "foresail_dev_revision"},
]


# The operator's pods (the chart's component label) on their port named "health", which serves /metrics
OPERATOR_RELABEL: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"], "action": "keep", "regex": "operator"},
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": "health"},
    {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "instance"},
]


def rbac() -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object): a ClusterRole reading pods, bound to Prometheus's user."""
    api = "/apis/rbac.authorization.k8s.io/v1"
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE}
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}
    return [
        (
            f"{api}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": ROLE},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            },
        ),
        (
            f"{api}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": ROLE},
                "roleRef": role,
                "subjects": [user],
            },
        ),
    ]


def operated_service(ip: str, port: int = 9090) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object): ``monitoring/prometheus-operated`` as the Prometheus Operator makes it - a
    headless Service - here without a selector, its Endpoints and EndpointSlice naming this Prometheus
    (``ip``), so the chart's default ``prometheus.url`` works unchanged (the runtime writes headless
    Services into pods' /etc/hosts: no cluster DNS here)."""
    ns, name = "monitoring", "prometheus-operated"
    meta = {"name": name, "namespace": ns, "labels": {"operated-prometheus": "true", "app.kubernetes.io/name": "prometheus"}}
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        (
            f"/api/v1/namespaces/{ns}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": port, "targetPort": port, "protocol": "TCP"}]},
            },
        ),
        (
            f"/api/v1/namespaces/{ns}/endpoints",
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": meta,
                "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "web", "port": port, "protocol": "TCP"}]}],
            },
        ),
        (
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-local",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "foresail-testbed"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                "ports": [{"name": "web", "port": port, "protocol": "TCP"}],
            },
        ),
    ]


def scrape_config(run: RunDir, api_url: str) -> dict[str, Any]:
    """The scrape config: Kubernetes pod discovery, Triton's metrics port, the three labels."""
    p = run.pki
    sd = [
        {
            "role": "pod",
            "api_server": api_url,
            "tls_config": {"ca_file": str(p / "ca.crt"), "cert_file": str(p / "prometheus.crt"), "key_file": str(p / "prometheus.key")},
        }
    ]
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": "triton", "kubernetes_sd_configs": sd, "relabel_configs": TRITON_RELABEL},
            # the operator's own /metrics, as the chart's operator PodMonitor (monitoring.podMonitor) scrapes it
            {"job_name": "foresail-operator", "scrape_interval": "5s", "kubernetes_sd_configs": sd, "relabel_configs": OPERATOR_RELABEL},
        ],
    }


def web_config(run: RunDir, password_bcrypt: str) -> dict[str, Any]:
    """A Prometheus web config (``--web.config.file``) requiring TLS with a client certificate signed by the
    cluster CA and basic auth. Prometheus cannot require a bearer token itself (its exporter-toolkit web
    config has none); managed setups put a proxy in front for that."""
    p = run.pki
    return {
        "tls_server_config": {
            "cert_file": str(p / "prometheus-server.crt"),
            "key_file": str(p / "prometheus-server.key"),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": str(p / "ca.crt"),
        },
        "basic_auth_users": {SECURED_USER: password_bcrypt},
    }
