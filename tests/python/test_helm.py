"""The Helm chart's hardening, asserted on what `helm template` renders.

Every pod the chart can make (Deployments, the migration Job, the `helm test` Pods), with
the default values and with each values file in helm/sluice/ci/, must run as non-root on a
read-only root filesystem with every capability dropped, no privilege escalation, seccomp
RuntimeDefault and no service-account token; no secret may appear in a ConfigMap, a
command line or a literal environment value; the servers must be probed over HTTPS and be
given longer to stop than they take to drain. The checks are shown to fail on renders that
break each rule, so a later change cannot quietly drop one.

helm comes from $SLUICE_HELM (set by .ci/run; then a missing helm is a failure) or PATH;
with neither, these tests are skipped.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sluice"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RENDERS = ["default"] + [p.name for p in CI_VALUES]

POD_KINDS_WITH_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Environment names that carry secrets and so must come from a Secret, never a literal.
SECRET_ENV_MARKERS = ("DATABASE_URL", "SECRET", "PASSWORD", "ACCESS_KEY", "TOKEN", "CREDENTIAL")


def _helm() -> str:
    configured = os.environ.get("SLUICE_HELM")
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            pytest.fail(f"SLUICE_HELM={configured} is not an executable helm", pytrace=False)
        return configured
    found = shutil.which("helm")
    if not found:
        pytest.skip("helm not found: set SLUICE_HELM (scripts/install-helm installs one) or put helm on PATH")
    return found


@pytest.fixture(scope="module")
def helm() -> str:
    return _helm()


# What every install must set (the catalog and the bucket), given first so that any
# values file after it overrides it.
REQUIRED = ROOT / "tests" / "helm" / "required-values.yaml"


def render(helm: str, *args: str, required: bool = True) -> list[dict]:
    """`helm template` of the chart (test hooks included) as a list of manifests."""
    first = ["-f", str(REQUIRED)] if required else []
    result = subprocess.run(
        [helm, "template", "sluice-test", str(CHART), "--namespace", "streaming",
         "--api-versions", "cert-manager.io/v1", *first, *args],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class RenderError(Exception):
    pass


def render_named(helm: str, name: str) -> list[dict]:
    return render(helm) if name == "default" else render(helm, "-f", str(CHART / "ci" / name))


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    specs = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in POD_KINDS_WITH_TEMPLATE:
            specs.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            specs.append((f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind == "Pod":
            specs.append((f"{kind}/{name}", doc["spec"]))
    return specs


def hardening_problems(docs: list[dict]) -> list[str]:
    """Every way in which a rendered pod or ServiceAccount falls short of the hardening."""
    problems = []
    for doc in docs:
        if doc["kind"] == "ServiceAccount" and doc.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{doc['metadata']['name']}: automountServiceAccountToken is not false")
    for where, spec in pod_specs(docs):
        pod_sc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                problems.append(f"{where}: {host}")
        for volume in spec.get("volumes") or []:
            if "hostPath" in volume:
                problems.append(f"{where}: hostPath volume {volume['name']}")
        if pod_sc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod runAsNonRoot is not true")
        if pod_sc.get("runAsUser") in (None, 0):
            problems.append(f"{where}: pod runAsUser is {pod_sc.get('runAsUser')!r}, not a non-zero uid")
        if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        if not containers:
            problems.append(f"{where}: no containers")
        for container in containers:
            cwhere = f"{where} container {container['name']}"
            sc = container.get("securityContext") or {}
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{cwhere}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
                problems.append(f"{cwhere}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cwhere}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cwhere}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{cwhere}: privileged")
            capabilities = sc.get("capabilities") or {}
            if "ALL" not in (capabilities.get("drop") or []):
                problems.append(f"{cwhere}: capabilities do not drop ALL")
            if capabilities.get("add"):
                problems.append(f"{cwhere}: adds capabilities {capabilities['add']}")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                problems.append(f"{cwhere}: seccompProfile is {seccomp!r}, not RuntimeDefault")
            mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                problems.append(f"{cwhere}: no writable /tmp on a read-only root filesystem")
    return problems


# Keys of rendered Secrets that are not secret themselves (addresses, public certificates).
PUBLIC_SECRET_KEYS = {"endpoint", "bucket", "region", "tls.crt", "ca.crt"}


def secret_values(docs: list[dict]) -> set[str]:
    """The values of every rendered Secret, and the value part of each credentials line."""
    values = set()
    for doc in docs:
        if doc["kind"] != "Secret":
            continue
        data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
        data.update(doc.get("stringData") or {})
        for key, value in data.items():
            if key in PUBLIC_SECRET_KEYS:
                continue
            values.add(value.strip())
            if "PRIVATE KEY" not in value:
                # "aws_secret_access_key = ...": the part after "=" is the secret.
                values.update(line.split("=", 1)[-1].strip() for line in value.splitlines())
    return {v for v in values if len(v) >= 8}


def values_file_secrets(name: str) -> set[str]:
    """Secrets written into a values file, which must not surface outside Secrets."""
    if name == "default":
        return set()
    values = yaml.safe_load((CHART / "ci" / name).read_text())
    found = {(values.get("database") or {}).get("url"),
             (values.get("objectStore") or {}).get("accessKeyId"),
             (values.get("objectStore") or {}).get("secretAccessKey")}
    return {v for v in found if v}


def leak_problems(docs: list[dict], extra_secrets: set[str] = frozenset()) -> list[str]:
    """Secrets found in a ConfigMap, an annotation, a command line or a literal env value."""
    secrets = secret_values(docs) | set(extra_secrets)
    problems = []

    def scan(where: str, text: str) -> None:
        for secret in secrets:
            if secret in text:
                problems.append(f"{where}: holds a secret value ({secret[:6]}...)")

    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                scan(f"{name} key {key}", f"{key}={value}")
        for key, value in (doc["metadata"].get("annotations") or {}).items():
            scan(f"{name} annotation {key}", str(value))
    for where, spec in pod_specs(docs):
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            cwhere = f"{where} container {container['name']}"
            scan(f"{cwhere} argv", json.dumps((container.get("command") or []) + (container.get("args") or [])))
            for env in container.get("env") or []:
                if "value" in env:
                    scan(f"{cwhere} env {env['name']}", str(env["value"]))
                    if any(marker in env["name"] for marker in SECRET_ENV_MARKERS) and \
                            not env["name"].endswith("_FILE"):
                        problems.append(f"{cwhere} env {env['name']}: a secret given as a literal value")
    return problems


# --- the chart as it is rendered ---


@pytest.mark.parametrize("values", RENDERS)
def test_every_pod_is_hardened(helm, values):
    docs = render_named(helm, values)
    assert pod_specs(docs), f"{values}: rendered no pod at all"
    assert hardening_problems(docs) == []


@pytest.mark.parametrize("values", RENDERS)
def test_no_secret_outside_secrets(helm, values):
    docs = render_named(helm, values)
    from_values = values_file_secrets(values)
    assert from_values <= secret_values(docs), "a secret from the values file is not in a Secret"
    assert leak_problems(docs, from_values) == []


def test_a_render_without_a_catalog_or_bucket_fails_naming_the_values(helm):
    with pytest.raises(RenderError) as refused:
        render(helm, required=False)
    assert "database.existingSecret" in str(refused.value) and "database.url" in str(refused.value)
    with pytest.raises(RenderError) as refused:
        render(helm, "--set", "database.existingSecret=pg", required=False)
    assert "objectStore.existingSecret" in str(refused.value)
    assert render(helm, "--set", "database.existingSecret=pg", "--set", "objectStore.existingSecret=s3",
                  required=False)


def test_the_default_render_has_every_workload(helm):
    docs = render(helm)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [
        ("Deployment", "sluice-test-control-plane"),
        ("Deployment", "sluice-test-data-plane"),
        ("HorizontalPodAutoscaler", "sluice-test-data-plane"),
        ("PodDisruptionBudget", "sluice-test-control-plane"),
        ("Job", "sluice-test-migrate"),
        ("Pod", "sluice-test-test-roundtrip"),
        ("Pod", "sluice-test-test-plaintext-refused"),
        ("NetworkPolicy", "sluice-test-data-plane"),
        ("NetworkPolicy", "sluice-test-control-plane"),
    ]:
        assert expected in kinds
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    spread = next(d for d in docs if d["metadata"]["name"] == "sluice-test-data-plane"
                  and d["kind"] == "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"


@pytest.mark.parametrize("values", RENDERS)
def test_servers_are_probed_over_tls_and_drain_before_they_are_killed(helm, values):
    docs = render_named(helm, values)
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    drain = int(config["SLUICE_SHUTDOWN_GRACE_SECONDS"])
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
        assert spec["terminationGracePeriodSeconds"] > drain + sleep
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        # Liveness: the process; readiness: the catalog and the object store answer too.
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert config["SLUICE_TLS_CERT"].startswith("/etc/sluice/tls/")
        # Every secret (the database URL, the root key, the object store's keys) is a
        # file mounted from its Secret, never an environment value (checkov CKV_K8S_35).
        env = {e["name"]: e for e in container.get("env", [])}
        assert not [n for n, e in env.items() if "secretKeyRef" in (e.get("valueFrom") or {})], env
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for setting, directory, volume in [
            ("SLUICE_DATABASE_URL_FILE", "/etc/sluice/database", "database"),
            ("SLUICE_ROOT_KEY_FILE", "/etc/sluice/root-key", "root-key"),
            ("SLUICE_S3_SECRET_ACCESS_KEY_FILE", "/etc/sluice/object-store", "object-store"),
        ]:
            assert config[setting].startswith(directory + "/") and directory in mounts
            assert "secret" in volumes[volume]


def test_network_policies_allow_only_tls_in_and_dns_database_object_store_out(helm):
    docs = render(helm)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    for component in ("data-plane", "control-plane"):
        server = policies[f"sluice-test-{component}"]
        labels = server["spec"]["podSelector"]["matchLabels"]
        assert labels["app.kubernetes.io/component"] == component
        assert server["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ingress_ports = [p for rule in server["spec"]["ingress"] for p in rule["ports"]]
        assert ingress_ports == [{"protocol": "TCP", "port": "https"}]
        egress_ports = sorted((p["protocol"], p["port"]) for rule in server["spec"]["egress"] for p in rule["ports"])
        assert egress_ports == [("TCP", 53), ("TCP", 443), ("TCP", 5432), ("UDP", 53)]
        assert all(rule.get("to") for rule in server["spec"]["egress"]), "an egress rule without `to` allows everything"
    # The data API from anywhere by default; the admin API only from this namespace.
    assert "from" not in policies["sluice-test-data-plane"]["spec"]["ingress"][0]
    admin_from = policies["sluice-test-control-plane"]["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in admin_from and not any("ipBlock" in f or "namespaceSelector" in f
                                                          for f in admin_from)
    # Named namespaces replace it.
    named = render(helm, "--set", "networkPolicy.admin.namespaceSelector.team=platform")
    admin_from = next(d for d in named if d["kind"] == "NetworkPolicy"
                      and d["metadata"]["name"] == "sluice-test-control-plane")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"team": "platform"}}} in admin_from
    assert {"podSelector": {}} not in admin_from

    off = render(helm, "-f", str(CHART / "ci" / "networkpolicy-off-values.yaml"))
    assert not [d for d in off if d["kind"] == "NetworkPolicy"]


def test_cert_manager_certificate_only_when_enabled(helm):
    assert not [d for d in render(helm) if d["kind"] == "Certificate"]
    docs = render(helm, "-f", str(CHART / "ci" / "cert-manager-values.yaml"))
    certificate = next(d for d in docs if d["kind"] == "Certificate")
    assert certificate["spec"]["secretName"] == "sluice-test-tls"
    assert "sluice-test.streaming.svc" in certificate["spec"]["dnsNames"]
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "sluice-test-tls"]


@pytest.mark.parametrize("values_file, message", [
    ("wrong-type-values.yaml", "got string, want integer"),
    ("unknown-key-values.yaml", "additional properties 'autoscalling' not allowed"),
])
def test_schema_refuses_bad_values(helm, values_file, message):
    with pytest.raises(RenderError, match=message):
        render(helm, "-f", str(ROOT / "tests" / "helm" / values_file))


# --- the checks themselves catch what they are for ---


@pytest.mark.parametrize("override, expected", [
    (["--set", "containerSecurityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem is not true"),
    (["--set", "containerSecurityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation is not false"),
    (["--set-json", 'containerSecurityContext.capabilities={"drop":[]}'], "capabilities do not drop ALL"),
    (["--set", "podSecurityContext.runAsUser=0", "--set", "containerSecurityContext.runAsUser=0"], "uid 0"),
    (["--set", "podSecurityContext.seccompProfile.type=Unconfined",
      "--set", "containerSecurityContext.seccompProfile.type=Unconfined"], "not RuntimeDefault"),
    (["--set", "podSecurityContext.runAsNonRoot=false"], "pod runAsNonRoot is not true"),
])
def test_hardening_check_catches_a_weakened_render(helm, override, expected):
    problems = hardening_problems(render(helm, *override))
    assert any(expected in p for p in problems), problems


def test_hardening_check_catches_a_mounted_token():
    docs = [{"kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}, "volumeMounts": [{"mountPath": "/tmp"}]}]}}]
    assert hardening_problems(docs) == ["Pod/p: automountServiceAccountToken is not false"]


def test_leak_check_catches_a_secret_on_the_command_line(helm):
    url = "postgres://sluice:hunter2-in-argv@db:5432/sluice"
    docs = render(helm, "--set", f"database.url={url}",
                  "--set", f"controlPlane.args={{control-plane,--database-url,{url}}}")
    assert any("argv" in p for p in leak_problems(docs))


def test_leak_check_catches_a_secret_in_a_configmap(helm):
    docs = render(helm, "--set", "database.url=postgres://sluice:hunter2@db:5432/sluice")
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    config["data"]["SLUICE_DATABASE_URL"] = "postgres://sluice:hunter2@db:5432/sluice"
    assert any("ConfigMap" in p for p in leak_problems(docs))


# --- the documentation keeps up with the values ---

# Values documented as a whole in the README rather than key by key.
WHOLE_VALUES = {"resources", "podSecurityContext", "containerSecurityContext", "namespaceSelector", "podSelector"}


def value_keys(values: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in values.items():
        if isinstance(value, dict) and value and key not in WHOLE_VALUES:
            keys |= value_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_readme_and_schema_cover_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    documented = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")
                  and line.count("|") >= 4 and not line.startswith("| `SLUICE_") and not line.startswith("| `sluice ")}
    assert value_keys(values) == documented

    schema = json.loads((CHART / "values.schema.json").read_text())

    def closed_everywhere(node: dict, where: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"
            for key, child in node["properties"].items():
                closed_everywhere(child, f"{where}.{key}")

    closed_everywhere(schema, "values")
    assert set(schema["properties"]) == set(values)


# --- the Secrets the chart makes are what the server and its clients read ---


def test_generated_secrets_have_the_shapes_the_server_reads(helm, tmp_path):
    import configparser
    import re
    import socket
    import ssl
    import threading

    docs = render(helm)
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
               for d in docs if d["kind"] == "Secret"}

    # The root key: 64 hex characters, as `RootKey::from_hex` reads SLUICE_ROOT_KEY.
    assert re.fullmatch(r"[0-9a-f]{64}", secrets["sluice-test-root-key"]["root.key"])

    # The bootstrap credentials: an AWS shared-credentials file with a key of AWS's shape.
    credentials = configparser.ConfigParser()
    credentials.read_string(secrets["sluice-test-bootstrap"]["credentials"])
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", credentials["default"]["aws_access_key_id"])
    assert re.fullmatch(r"[A-Za-z0-9]{40}", credentials["default"]["aws_secret_access_key"])

    # TLS: a client that trusts ca.crt accepts the server certificate for the Service
    # names, over a real handshake on the loopback interface.
    tls = secrets["sluice-test-tls"]
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text(tls[name])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(count: int) -> None:
        for _ in range(count):
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    names = ["sluice-test.streaming.svc", "sluice-test-control-plane.streaming.svc.cluster.local", "localhost"]
    thread = threading.Thread(target=serve, args=(len(names) + 1,), daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    try:
        for name in names:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with client_context.wrap_socket(raw, server_hostname=name) as tls_socket:
                    assert tls_socket.version() in ("TLSv1.2", "TLSv1.3")
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                client_context.wrap_socket(raw, server_hostname="not-sluice.example.com")
    finally:
        thread.join(timeout=10)
        listener.close()


# --- the chart and the binary agree ---

SERVER_COMMANDS = {"control-plane", "data-plane", "migrate"}


@pytest.mark.parametrize("values", RENDERS)
def test_the_binary_takes_every_command_and_setting_the_chart_gives(helm, values, binary):
    """Each server container runs a `sluice` command that exists, and every SLUICE_*
    variable the chart sets is one that command reads: a flag's variable (named in its
    --help) or one read from the environment only (named in the binary)."""
    image = binary.read_bytes()
    checked = 0
    for where, spec in pod_specs(render_named(helm, values)):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            args = container.get("args") or []
            if not args or args[0] not in SERVER_COMMANDS:
                continue
            helped = subprocess.run([str(binary), args[0], "--help"], capture_output=True, text=True,
                                    timeout=30, env={"PATH": os.environ.get("PATH", "")})
            assert helped.returncode == 0, f"{where}: sluice {args[0]} --help: {helped.stderr}"
            for extra in args[1:]:
                if extra.startswith("--"):
                    flag = extra.split("=", 1)[0]
                    assert flag in helped.stdout, f"{where}: sluice {args[0]} has no {flag}"
            for env in container.get("env", []):
                name = env["name"]
                if not name.startswith("SLUICE_"):
                    continue
                known = f"[env: {name}" in helped.stdout or name.encode() in image
                assert known, f"{where}: sluice {args[0]} does not read {name}"
            checked += 1
    # Both planes always; the migration Job unless a values file turns it off.
    assert checked >= 2, f"{values}: found {checked} server containers"


def test_a_service_monitor_scrapes_every_plane_with_a_basic_credential(helm):
    assert not [d for d in render(helm) if d["kind"] == "ServiceMonitor"]
    docs = render(helm, "--api-versions", "monitoring.coreos.com/v1",
                  "--set", "metrics.serviceMonitor.enabled=true",
                  "--set", "metrics.serviceMonitor.basicAuthSecret=sluice-scraper")
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("https", "/metrics", "https")
    assert endpoint["basicAuth"]["password"] == {"name": "sluice-scraper", "key": "password"}
    assert endpoint["tlsConfig"]["ca"]["secret"]["key"] == "ca.crt"
    # It selects both planes' Services.
    services = [d for d in docs if d["kind"] == "Service"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert len(services) == 2 and all(selector.items() <= d["metadata"]["labels"].items() for d in services)
    # Without a credential, or without the API, the render says what is missing.
    for args, message in [
        (["--api-versions", "monitoring.coreos.com/v1", "--set", "metrics.serviceMonitor.enabled=true"],
         "metrics.serviceMonitor.basicAuthSecret"),
        (["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.basicAuthSecret=x"],
         "monitoring.coreos.com/v1"),
    ]:
        with pytest.raises(RenderError) as refused:
            render(helm, *args)
        assert message in str(refused.value)


def test_a_public_ca_needs_no_ca_crt(helm):
    def ca_volumes(docs):
        return [v for d in docs if d["kind"] == "Pod" for v in d["spec"].get("volumes", [])
                if v["name"] == "ca"]
    assert ca_volumes(render(helm))
    docs = render(helm, "--set", "tls.publicCa=true", "--set", "tls.existingSecret=public-tls")
    assert not ca_volumes(docs)
    assert not any("ca.crt" in yaml.safe_dump(d) for d in docs if d["kind"] in ("Pod", "Deployment"))
