#!/usr/bin/env python3
"""Consistency checks for the Kubernetes manifests of s3-proxy.

Schema validation (kubernetes-validate) cannot see whether objects agree with
each other or with the binary, so these checks do. Selectors must match the
pod labels. Services, probes, the Ingress, the NetworkPolicy and a
ServiceMonitor must name ports that exist. Every environment variable must be one the binary reads,
the listen addresses must bind the declared container ports, and the
termination grace period must cover the shutdown delay plus the drain time.

Usage:
    manifest_checks.py [--config-rs PATH] K8S_DIR
    manifest_checks.py --self-test [--config-rs PATH] K8S_DIR

Needs Python 3 and PyYAML. Prints one line per failure as "FAIL <check>:
<file>: <problem>" and exits 1 if any check failed, 0 otherwise. --self-test
applies one mutation per check to a copy of the manifests and exits 1 unless
every mutation makes its check fail.
"""

import argparse
import pathlib
import re
import shutil
import sys
import tempfile

import yaml

# Every variable the binary reads (the service's documented configuration).
KNOWN_VARIABLES = {
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_BUCKET_NAME",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_SESSION_TOKEN",
    "PROXY_LISTEN",
    "PROXY_ADMIN_LISTEN",
    "PROXY_WORKERS",
    "PROXY_S3_CONNECT_TIMEOUT",
    "PROXY_S3_RESPONSE_TIMEOUT",
    "PROXY_S3_READ_TIMEOUT",
    "PROXY_CLIENT_READ_TIMEOUT",
    "PROXY_CLIENT_WRITE_TIMEOUT",
    "PROXY_SHUTDOWN_DELAY",
    "PROXY_GRACE_PERIOD",
    "PROXY_CACHE_CONTROL",
    "PROXY_CACHE_CONTROL_NOT_FOUND",
    "PROXY_ALLOW_PREFIXES",
    "PROXY_DENY_PREFIXES",
    "PROXY_MEDIAWIKI_PRIVATE",
    "PROXY_S3_CA_FILE",
    "PROXY_LOG_LEVEL",
    "PROXY_READY_INTERVAL",
}
REQUIRED_S3_VARIABLES = [
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_BUCKET_NAME",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
]
CREDENTIAL_VARIABLES = {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN"}
DURATION_VARIABLES = {
    "PROXY_S3_CONNECT_TIMEOUT",
    "PROXY_S3_RESPONSE_TIMEOUT",
    "PROXY_S3_READ_TIMEOUT",
    "PROXY_CLIENT_READ_TIMEOUT",
    "PROXY_CLIENT_WRITE_TIMEOUT",
    "PROXY_SHUTDOWN_DELAY",
    "PROXY_GRACE_PERIOD",
    "PROXY_READY_INTERVAL",
}
DEFAULT_LISTEN = "0.0.0.0:8000"
DEFAULT_ADMIN_LISTEN = "0.0.0.0:9090"
DEFAULT_SHUTDOWN_DELAY_MS = 0
DEFAULT_GRACE_PERIOD_MS = 20_000
# Kubernetes' default when a pod spec leaves it out.
DEFAULT_TERMINATION_GRACE_SECONDS = 30
APP_NAME_LABEL = "app.kubernetes.io/name"
APP_NAME = "s3-proxy"
SECRET_NAME = "s3-proxy"


class Manifest:
    """One YAML document and the file it came from."""

    def __init__(self, path, doc):
        self.path = path
        self.doc = doc

    @property
    def kind(self):
        return self.doc.get("kind")

    @property
    def name(self):
        return (self.doc.get("metadata") or {}).get("name")

    def where(self):
        return f"{self.path}: {self.kind}/{self.name}"


class Checker:
    def __init__(self, manifests, env_files, config_names):
        self.manifests = manifests
        self.env_files = env_files
        # Variable names found in src/config.rs, or None if it does not exist.
        self.config_names = config_names
        self.failures = []

    def fail(self, check, where, problem):
        self.failures.append(f"FAIL {check}: {where}: {problem}")

    def of_kind(self, kind):
        return [manifest for manifest in self.manifests if manifest.kind == kind]

    def run(self):
        self.check_no_secrets()
        self.check_labels()
        deployments = self.of_kind("Deployment")
        if not deployments:
            self.fail("deployment", "k8s", "no Deployment found")
        for deployment in deployments:
            self.check_deployment(deployment)
        for service in self.of_kind("Service"):
            self.check_service(service)
        for pdb in self.of_kind("PodDisruptionBudget"):
            self.check_pdb(pdb)
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            self.check_hpa(hpa)
        for policy in self.of_kind("NetworkPolicy"):
            self.check_network_policy(policy)
        for ingress in self.of_kind("Ingress"):
            self.check_ingress(ingress)
        for route in self.of_kind("IngressRoute"):
            self.check_ingress_route(route)
        for monitor in self.of_kind("ServiceMonitor"):
            self.check_service_monitor(monitor)
        for path, names in self.env_files.items():
            self.check_env_file(path, names)
        return self.failures

    # Objects in general

    def check_no_secrets(self):
        for manifest in self.of_kind("Secret"):
            self.fail(
                "no-secret",
                manifest.where(),
                "Secrets must not be kept in k8s/; create them with "
                "kubectl create secret generic --from-env-file",
            )

    def check_labels(self):
        for manifest in self.manifests:
            labels = (manifest.doc.get("metadata") or {}).get("labels") or {}
            if labels.get(APP_NAME_LABEL) != APP_NAME:
                self.fail(
                    "labels",
                    manifest.where(),
                    f"metadata.labels[{APP_NAME_LABEL}] is "
                    f"{labels.get(APP_NAME_LABEL)!r}, expected {APP_NAME!r}",
                )

    # Deployment

    def check_deployment(self, manifest):
        spec = manifest.doc.get("spec") or {}
        pod_labels = pod_template_labels(manifest.doc)
        selector = spec.get("selector") or {}
        if not selector_is_set(selector):
            self.fail("deployment-selector", manifest.where(), "spec.selector is empty")
        elif not selector_matches(selector, pod_labels):
            self.fail(
                "deployment-selector",
                manifest.where(),
                f"spec.selector {selector} does not match the pod labels {pod_labels}",
            )

        pod_spec = pod_template_spec(manifest.doc)
        if pod_spec.get("automountServiceAccountToken") is not False:
            self.fail("security-context", manifest.where(), "automountServiceAccountToken must be false")
        for constraint in pod_spec.get("topologySpreadConstraints") or []:
            label_selector = constraint.get("labelSelector") or {}
            if not selector_matches(label_selector, pod_labels):
                self.fail(
                    "topology-selector",
                    manifest.where(),
                    f"topologySpreadConstraints labelSelector {label_selector} "
                    f"does not match the pod labels {pod_labels}",
                )

        containers = pod_spec.get("containers") or []
        if not containers:
            self.fail("deployment", manifest.where(), "the pod template has no containers")
        for container in containers:
            self.check_container(manifest, pod_spec, container)

    def check_container(self, manifest, pod_spec, container):
        where = f"{manifest.where()} container {container.get('name')}"
        ports = container.get("ports") or []
        port_names = {p.get("name"): p.get("containerPort") for p in ports if p.get("name")}
        port_numbers = {p.get("containerPort") for p in ports}

        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name)
            if not probe:
                continue
            for handler in ("httpGet", "tcpSocket", "grpc"):
                if handler in probe:
                    port = probe[handler].get("port")
                    if not port_is_declared(port, port_names, port_numbers):
                        self.fail(
                            "probe-ports",
                            where,
                            f"{probe_name}.{handler}.port {port!r} is not a declared container port",
                        )

        env = {}
        for entry in container.get("env") or []:
            name = entry.get("name")
            self.check_variable_name("env-names", where, name)
            if name in CREDENTIAL_VARIABLES and "value" in entry:
                self.fail(
                    "credentials",
                    where,
                    f"{name} is set as a literal value; take it from the Secret {SECRET_NAME!r}",
                )
            if "value" in entry:
                env[name] = str(entry["value"])
        secret_refs = [
            source["secretRef"].get("name")
            for source in container.get("envFrom") or []
            if "secretRef" in source
        ]
        missing_s3 = [v for v in REQUIRED_S3_VARIABLES if v not in env]
        if missing_s3 and SECRET_NAME not in secret_refs:
            self.fail(
                "credentials",
                where,
                f"{', '.join(missing_s3)} not set and envFrom has no secretRef named {SECRET_NAME!r}",
            )

        self.check_env_values(where, env)
        self.check_listen_ports(where, env, port_names, port_numbers)
        self.check_termination_grace(where, env, pod_spec)
        self.check_security_context(where, pod_spec, container)

    def check_variable_name(self, check, where, name):
        if name not in KNOWN_VARIABLES:
            self.fail(check, where, f"{name} is not a variable that s3-proxy reads")
        elif self.config_names is not None and name not in self.config_names:
            self.fail(check, where, f"{name} does not occur in src/config.rs")

    def check_env_values(self, where, env):
        for name, value in env.items():
            if name in DURATION_VARIABLES and parse_duration_ms(value) is None:
                self.fail("env-values", where, f"{name}={value!r} is not a valid duration")
            if name in ("PROXY_LISTEN", "PROXY_ADMIN_LISTEN") and value:
                if listen_port(value) is None:
                    self.fail("env-values", where, f"{name}={value!r} is not a host:port address")

    def check_listen_ports(self, where, env, port_names, port_numbers):
        """Each container port must be a port that one of the listeners binds."""
        public = listen_port(env.get("PROXY_LISTEN") or DEFAULT_LISTEN)
        admin_value = env.get("PROXY_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)
        admin = listen_port(admin_value) if admin_value else None
        bound = {p for p in (public, admin) if p is not None}
        for number in sorted(p for p in port_numbers if p is not None):
            if number not in bound:
                self.fail(
                    "listen-ports",
                    where,
                    f"containerPort {number} is not bound by PROXY_LISTEN ({public}) "
                    f"or PROXY_ADMIN_LISTEN ({admin})",
                )
        if port_names.get("http") != public:
            self.fail(
                "listen-ports",
                where,
                f"the port named http is {port_names.get('http')}, but PROXY_LISTEN binds {public}",
            )
        if admin is not None and port_names.get("admin") != admin:
            self.fail(
                "listen-ports",
                where,
                f"the port named admin is {port_names.get('admin')}, but PROXY_ADMIN_LISTEN binds {admin}",
            )

    def check_termination_grace(self, where, env, pod_spec):
        delay = parse_duration_ms(env.get("PROXY_SHUTDOWN_DELAY", "")) or DEFAULT_SHUTDOWN_DELAY_MS
        grace = parse_duration_ms(env.get("PROXY_GRACE_PERIOD", ""))
        if grace is None:
            grace = DEFAULT_GRACE_PERIOD_MS
        termination = pod_spec.get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_SECONDS)
        if termination * 1000 <= delay + grace:
            self.fail(
                "termination-grace",
                where,
                f"terminationGracePeriodSeconds {termination} must exceed "
                f"PROXY_SHUTDOWN_DELAY + PROXY_GRACE_PERIOD = {(delay + grace) / 1000:g}s",
            )

    def check_security_context(self, where, pod_spec, container):
        pod_context = pod_spec.get("securityContext") or {}
        context = container.get("securityContext") or {}

        def effective(key):
            return context.get(key, pod_context.get(key))

        expected = {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        }
        for key, value in expected.items():
            actual = effective(key)
            if actual is not value:
                self.fail("security-context", where, f"securityContext.{key} is {actual!r}, expected {value!r}")
        if effective("runAsUser") != 1000 or effective("runAsGroup") != 1000:
            self.fail("security-context", where, "runAsUser and runAsGroup must be 1000, as in the image")
        drop = (context.get("capabilities") or {}).get("drop") or []
        if "ALL" not in drop:
            self.fail("security-context", where, "securityContext.capabilities.drop must contain ALL")
        seccomp = (effective("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            self.fail("security-context", where, f"seccompProfile.type is {seccomp!r}, expected 'RuntimeDefault'")

    # Objects that select pods

    def deployments_selected_by(self, selector):
        return [d for d in self.of_kind("Deployment") if selector_matches(selector, pod_template_labels(d.doc))]

    def check_service(self, manifest):
        selector = (manifest.doc.get("spec") or {}).get("selector") or {}
        if not selector:
            self.fail("service-selector", manifest.where(), "spec.selector is empty")
            return
        matched = self.deployments_selected_by({"matchLabels": selector})
        if not matched:
            self.fail(
                "service-selector",
                manifest.where(),
                f"spec.selector {selector} matches no Deployment's pod labels",
            )
            return
        for port in (manifest.doc.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for deployment in matched:
                names, numbers = container_ports(deployment.doc)
                if not port_is_declared(target, names, numbers):
                    self.fail(
                        "service-ports",
                        manifest.where(),
                        f"port {port.get('name')!r} targets {target!r}, which is not a "
                        f"container port of Deployment/{deployment.name}",
                    )

    def check_pdb(self, manifest):
        spec = manifest.doc.get("spec") or {}
        selector = spec.get("selector") or {}
        matched = self.deployments_selected_by(selector) if selector_is_set(selector) else []
        if not matched:
            self.fail("pdb-selector", manifest.where(), f"spec.selector {selector} matches no Deployment's pod labels")
            return
        min_available = spec.get("minAvailable")
        for deployment in matched:
            replicas = (deployment.doc.get("spec") or {}).get("replicas", 1)
            if isinstance(min_available, int) and min_available >= replicas:
                self.fail(
                    "pdb-selector",
                    manifest.where(),
                    f"minAvailable {min_available} is not below the {replicas} replicas of "
                    f"Deployment/{deployment.name}, so no pod could ever be evicted",
                )

    def check_hpa(self, manifest):
        spec = manifest.doc.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        deployments = [d for d in self.of_kind("Deployment") if d.name == target.get("name")]
        if target.get("kind") != "Deployment" or not deployments:
            self.fail("hpa-target", manifest.where(), f"scaleTargetRef {target} names no Deployment in k8s/")
            return
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        replicas = (deployments[0].doc.get("spec") or {}).get("replicas", 1)
        if not (isinstance(high, int) and low <= replicas <= high):
            self.fail(
                "hpa-target",
                manifest.where(),
                f"Deployment replicas {replicas} is outside minReplicas {low} .. maxReplicas {high}",
            )
        uses_cpu = any(
            (metric.get("resource") or {}).get("name") == "cpu" for metric in spec.get("metrics") or []
        )
        if uses_cpu:
            for container in pod_template_spec(deployments[0].doc).get("containers") or []:
                requests = (container.get("resources") or {}).get("requests") or {}
                if "cpu" not in requests:
                    self.fail(
                        "hpa-target",
                        manifest.where(),
                        f"scales on CPU, but container {container.get('name')} has no CPU request",
                    )

    def check_network_policy(self, manifest):
        spec = manifest.doc.get("spec") or {}
        selector = spec.get("podSelector") or {}
        matched = self.deployments_selected_by(selector) if selector_is_set(selector) else []
        if not matched:
            self.fail(
                "networkpolicy-selector",
                manifest.where(),
                f"spec.podSelector {selector} matches no Deployment's pod labels",
            )
            return
        for rule in spec.get("ingress") or []:
            for port in rule.get("ports") or []:
                for deployment in matched:
                    names, numbers = container_ports(deployment.doc)
                    if not port_is_declared(port.get("port"), names, numbers):
                        self.fail(
                            "networkpolicy-ports",
                            manifest.where(),
                            f"ingress port {port.get('port')!r} is not a container port of "
                            f"Deployment/{deployment.name}",
                        )

    # Routing from outside

    def service_port(self, service_name, port_ref):
        """Return (service, port entry) for a Service port given by name or number."""
        for service in self.of_kind("Service"):
            if service.name != service_name:
                continue
            for port in (service.doc.get("spec") or {}).get("ports") or []:
                if port_ref in (port.get("name"), port.get("port")):
                    return service, port
            return service, None
        return None, None

    def admin_container_ports(self, service):
        """Return the names and numbers of the admin listener's container ports behind a Service."""
        refs = set()
        selector = (service.doc.get("spec") or {}).get("selector") or {}
        for deployment in self.deployments_selected_by({"matchLabels": selector}):
            for container in pod_template_spec(deployment.doc).get("containers") or []:
                env = {e.get("name"): str(e.get("value")) for e in container.get("env") or [] if "value" in e}
                admin_value = env.get("PROXY_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)
                admin = listen_port(admin_value) if admin_value else None
                for port in container.get("ports") or []:
                    if admin is not None and port.get("containerPort") == admin:
                        refs.update({port.get("containerPort"), port.get("name")})
        refs.discard(None)
        return refs

    def check_backend(self, manifest, service_name, port_ref):
        service, port = self.service_port(service_name, port_ref)
        if service is None:
            self.fail("ingress-backend", manifest.where(), f"backend Service {service_name!r} is not defined in k8s/")
            return
        if port is None:
            self.fail("ingress-backend", manifest.where(), f"Service {service_name!r} has no port {port_ref!r}")
            return
        target = port.get("targetPort", port.get("port"))
        if target in self.admin_container_ports(service):
            self.fail(
                "ingress-backend",
                manifest.where(),
                f"routes to Service {service_name!r} port {port_ref!r}, which reaches the admin listener",
            )

    def check_ingress(self, manifest):
        spec = manifest.doc.get("spec") or {}
        backends = []
        if spec.get("defaultBackend"):
            backends.append(spec["defaultBackend"])
        rule_hosts = set()
        for rule in spec.get("rules") or []:
            if rule.get("host"):
                rule_hosts.add(rule["host"])
            for path in (rule.get("http") or {}).get("paths") or []:
                backends.append(path.get("backend") or {})
        if not backends:
            self.fail("ingress-backend", manifest.where(), "no backend")
        for backend in backends:
            service = backend.get("service") or {}
            port = service.get("port") or {}
            self.check_backend(manifest, service.get("name"), port.get("name", port.get("number")))
        tls_hosts = {host for tls in spec.get("tls") or [] for host in tls.get("hosts") or []}
        if tls_hosts != rule_hosts:
            self.fail(
                "ingress-hosts",
                manifest.where(),
                f"TLS hosts {sorted(tls_hosts)} differ from rule hosts {sorted(rule_hosts)}",
            )

    def check_ingress_route(self, manifest):
        for route in (manifest.doc.get("spec") or {}).get("routes") or []:
            for service in route.get("services") or []:
                self.check_backend(manifest, service.get("name"), service.get("port"))

    # Scraping

    def check_service_monitor(self, manifest):
        """Check that a ServiceMonitor selects a Service and scrapes the admin listener through it."""
        spec = manifest.doc.get("spec") or {}
        selector = spec.get("selector") or {}
        services = [
            service
            for service in self.of_kind("Service")
            if selector_matches(selector, (service.doc.get("metadata") or {}).get("labels") or {})
        ]
        if not services:
            self.fail("servicemonitor", manifest.where(), f"spec.selector {selector} matches no Service's labels")
            return
        for endpoint in spec.get("endpoints") or []:
            port_ref = endpoint.get("port", endpoint.get("targetPort"))
            for service in services:
                _, port = self.service_port(service.name, port_ref)
                if port is None:
                    self.fail(
                        "servicemonitor",
                        manifest.where(),
                        f"endpoint port {port_ref!r} is not a port of Service/{service.name}",
                    )
                    continue
                target = port.get("targetPort", port.get("port"))
                if target not in self.admin_container_ports(service):
                    self.fail(
                        "servicemonitor",
                        manifest.where(),
                        f"endpoint port {port_ref!r} of Service/{service.name} does not reach the "
                        "admin listener, which serves /metrics",
                    )

    # Env files for the Secret

    def check_env_file(self, path, names):
        for name in names:
            self.check_variable_name("env-file", str(path), name)
        for name in REQUIRED_S3_VARIABLES:
            if name not in names:
                self.fail("env-file", str(path), f"required variable {name} is missing")


# Helpers


def pod_template_spec(doc):
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def pod_template_labels(doc):
    template = (doc.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def container_ports(doc):
    names, numbers = {}, set()
    for container in pod_template_spec(doc).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                names[port["name"]] = port.get("containerPort")
            numbers.add(port.get("containerPort"))
    return names, numbers


def port_is_declared(port, names, numbers):
    if isinstance(port, int):
        return port in numbers
    if isinstance(port, str) and port.isdigit():
        return int(port) in numbers
    return port in names


def selector_is_set(selector):
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def selector_matches(selector, labels):
    """Return True if a LabelSelector (matchLabels and matchExpressions) selects labels."""
    if not selector_is_set(selector):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def parse_duration_ms(value):
    """Parse a duration the way the binary does (500ms, 30s, 2m, bare seconds)."""
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m)?\s*", value)
    if not match:
        return None
    factor = {"ms": 1, "s": 1000, "m": 60_000, None: 1000}[match.group(2)]
    return int(match.group(1)) * factor


def listen_port(address):
    """Return the port of a host:port or [v6]:port listen address, or None."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(\d{1,5})", address.strip())
    if not match or int(match.group(2)) > 65535:
        return None
    return int(match.group(2))


def read_env_file(path):
    """Return the variable names of a kubectl --from-env-file file."""
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split("=", 1)[0].strip())
    return names


def load(k8s_dir):
    manifests, env_files = [], {}
    for path in sorted(k8s_dir.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            for doc in yaml.safe_load_all(path.read_text()):
                # Other YAML, such as promtool rule tests, has no apiVersion and kind.
                if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                    manifests.append(Manifest(path.relative_to(k8s_dir.parent), doc))
        elif path.name.endswith(".env.example"):
            env_files[path.relative_to(k8s_dir.parent)] = read_env_file(path)
    return manifests, env_files


def read_config_names(config_rs):
    if config_rs is None or not config_rs.exists():
        return None
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config_rs.read_text()))


def run_checks(k8s_dir, config_rs):
    manifests, env_files = load(k8s_dir)
    return Checker(manifests, env_files, read_config_names(config_rs)).run()


# Self-test: each mutation breaks one thing and must make its check fail.


def deployment_container(docs):
    deployment = next(d for d in docs if d.get("kind") == "Deployment")
    return deployment, pod_template_spec(deployment)["containers"][0]


def set_env(container, name, value):
    for entry in container.setdefault("env", []):
        if entry["name"] == name:
            entry["value"] = value
            return
    container["env"].append({"name": name, "value": value})


def first(docs, kind):
    return next(d for d in docs if d.get("kind") == kind)


MUTATIONS = {
    # name: (file, check expected to fail, mutation of that file's documents)
    "unknown variable": (
        "deployment.yaml",
        "env-names",
        lambda docs: set_env(deployment_container(docs)[1], "PROXY_SHUTDOWN_DELAY_SECONDS", "5"),
    ),
    "secret in env": (
        "deployment.yaml",
        "credentials",
        lambda docs: set_env(deployment_container(docs)[1], "S3_SECRET_ACCESS_KEY", "x"),
    ),
    "no secretRef": (
        "deployment.yaml",
        "credentials",
        lambda docs: deployment_container(docs)[1].pop("envFrom"),
    ),
    "bad duration": (
        "deployment.yaml",
        "env-values",
        lambda docs: set_env(deployment_container(docs)[1], "PROXY_GRACE_PERIOD", "20 seconds"),
    ),
    "deployment selector": (
        "deployment.yaml",
        "deployment-selector",
        lambda docs: deployment_container(docs)[0]["spec"]["selector"]["matchLabels"].update(
            {APP_NAME_LABEL: "other"}
        ),
    ),
    "topology selector": (
        "deployment.yaml",
        "topology-selector",
        lambda docs: pod_template_spec(deployment_container(docs)[0])["topologySpreadConstraints"][0][
            "labelSelector"
        ]["matchLabels"].update({APP_NAME_LABEL: "other"}),
    ),
    "probe port": (
        "deployment.yaml",
        "probe-ports",
        lambda docs: deployment_container(docs)[1]["livenessProbe"]["httpGet"].update({"port": "metrics"}),
    ),
    "listen port": (
        "deployment.yaml",
        "listen-ports",
        lambda docs: set_env(deployment_container(docs)[1], "PROXY_LISTEN", "0.0.0.0:8080"),
    ),
    "short termination grace": (
        "deployment.yaml",
        "termination-grace",
        lambda docs: pod_template_spec(deployment_container(docs)[0]).update({"terminationGracePeriodSeconds": 25}),
    ),
    "writable root": (
        "deployment.yaml",
        "security-context",
        lambda docs: deployment_container(docs)[1]["securityContext"].update({"readOnlyRootFilesystem": False}),
    ),
    "service selector": (
        "service.yaml",
        "service-selector",
        lambda docs: first(docs, "Service")["spec"]["selector"].update({APP_NAME_LABEL: "other"}),
    ),
    "service targetPort": (
        "service.yaml",
        "service-ports",
        lambda docs: first(docs, "Service")["spec"]["ports"][0].update({"targetPort": 8080}),
    ),
    "pdb selector": (
        "pdb.yaml",
        "pdb-selector",
        lambda docs: first(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/instance": "other"}
        ),
    ),
    "hpa target": (
        "hpa.yaml",
        "hpa-target",
        lambda docs: first(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update({"name": "other"}),
    ),
    "networkpolicy selector": (
        "networkpolicy.yaml",
        "networkpolicy-selector",
        lambda docs: first(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"].update(
            {APP_NAME_LABEL: "other"}
        ),
    ),
    "networkpolicy port": (
        "networkpolicy.yaml",
        "networkpolicy-ports",
        lambda docs: first(docs, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0].update({"port": 8080}),
    ),
    "ingress service": (
        "ingress.yaml",
        "ingress-backend",
        lambda docs: first(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(
            {"name": "s3-proxy-public"}
        ),
    ),
    "ingress port": (
        "ingress.yaml",
        "ingress-backend",
        lambda docs: first(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(
            {"port": {"number": 8000}}
        ),
    ),
    "ingress to admin": (
        "ingress.yaml",
        "ingress-backend",
        lambda docs: first(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(
            {"name": "s3-proxy-admin", "port": {"name": "admin"}}
        ),
    ),
    "ingress hosts": (
        "ingress.yaml",
        "ingress-hosts",
        lambda docs: first(docs, "Ingress")["spec"]["rules"][0].update({"host": "images.example.org"}),
    ),
    "servicemonitor selector": (
        "monitoring/servicemonitor.yaml",
        "servicemonitor",
        lambda docs: first(docs, "ServiceMonitor")["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/component": "other"}
        ),
    ),
    "servicemonitor port": (
        "monitoring/servicemonitor.yaml",
        "servicemonitor",
        lambda docs: first(docs, "ServiceMonitor")["spec"]["endpoints"][0].update({"port": "http"}),
    ),
    "missing label": (
        "pdb.yaml",
        "labels",
        lambda docs: first(docs, "PodDisruptionBudget")["metadata"]["labels"].pop(APP_NAME_LABEL),
    ),
    "secret object": (
        "pdb.yaml",
        "no-secret",
        lambda docs: docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET_NAME, "labels": {APP_NAME_LABEL: APP_NAME}},
                "stringData": {"S3_SECRET_ACCESS_KEY": "x"},
            }
        ),
    ),
}


def env_file_mutation(k8s_dir):
    """Add a variable the binary does not read to the first env example file."""
    path = sorted(k8s_dir.rglob("*.env.example"))[0]
    path.write_text(path.read_text() + "S3_HOST=s3.example.org\n")


def self_test(k8s_dir, config_rs):
    ok = True
    baseline = run_checks(k8s_dir, config_rs)
    if baseline:
        print("self-test: the unmodified manifests already fail:")
        print("\n".join(baseline))
        return False
    cases = [(name, file, check, mutate) for name, (file, check, mutate) in MUTATIONS.items()]
    cases.append(("env file variable", None, "env-file", None))
    for name, file, check, mutate in cases:
        if file is not None and not (k8s_dir / file).exists():
            print(f"self-test skipped: {name}: {file} does not exist")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            copy_dir = pathlib.Path(tmp) / "k8s"
            shutil.copytree(k8s_dir, copy_dir)
            if file is None:
                env_file_mutation(copy_dir)
            else:
                target = copy_dir / file
                docs = [d for d in yaml.safe_load_all(target.read_text()) if d is not None]
                mutate(docs)
                target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            failures = run_checks(copy_dir, config_rs)
        ok = report_case(name, check, failures) and ok

    # A variable the manifests set but the binary's config.rs does not name.
    with tempfile.TemporaryDirectory() as tmp:
        names = sorted(KNOWN_VARIABLES - {"PROXY_LOG_LEVEL"})
        fake_config = pathlib.Path(tmp) / "config.rs"
        fake_config.write_text("".join(f'"{name}",\n' for name in names))
        failures = run_checks(k8s_dir, fake_config)
    ok = report_case("variable missing from config.rs", "env-names", failures) and ok
    return ok


def report_case(name, check, failures):
    hit = [f for f in failures if f.startswith(f"FAIL {check}:")]
    if hit:
        print(f"self-test ok: {name}: {hit[0]}")
        return True
    print(f"self-test FAILED: {name}: expected check {check} to fail, got {failures or 'no failure'}")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("k8s_dir", type=pathlib.Path, help="folder with the manifests (k8s)")
    parser.add_argument(
        "--config-rs",
        type=pathlib.Path,
        help="src/config.rs; when it exists, every variable name in the manifests must occur in it",
    )
    parser.add_argument("--self-test", action="store_true", help="prove that each check can fail")
    args = parser.parse_args()
    k8s_dir = args.k8s_dir.resolve()

    if args.self_test:
        return 0 if self_test(k8s_dir, args.config_rs) else 1

    failures = run_checks(k8s_dir, args.config_rs)
    for failure in failures:
        print(failure)
    if not failures:
        print(f"consistency checks passed for {k8s_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
