"""The deployment files, checked offline: infra/k8s/ (Kubernetes, tied by kustomization.yaml) and
infra/compose.yaml (docker compose).

- Every Kubernetes manifest validates, strictly (no unknown field), against the API schemas that
  kubernetes-validate bundles, for the oldest and the newest version checked; where `kubectl` or
  `kustomize` is installed, so does what `kubectl kustomize infra/k8s` renders (it contacts no cluster).
- The compose file validates against the Compose Specification's JSON schema, vendored as
  tests/infra/compose-spec.json (source, commit and licence, Apache-2.0, in compose-spec.NOTICE).
- Consistency that the schemas cannot see: every service runs exactly once (the ledger once only), as
  its own NATS user, with its password from the Secret; every NATS user's password reaches the NATS
  pods from the Secret; no volume is shared between services; the NATS StatefulSet is three nodes whose
  routes name all three pods; no literal secret value anywhere.
- infra/k8s/nats/nats.conf and bootstrap.py with real nats-server processes: three nodes formed from
  that file and the StatefulSet's own --routes argument, a node with a wrong route password refused,
  and the bootstrap giving the stream, the heartbeat bucket and the blob store three replicas.

Nothing here runs Docker or a Kubernetes cluster.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from alphalab.cli import SERVICES
from shared.blobs import BLOB_BUCKET
from shared.bus import STREAM, Bus
from shared.events import Producer
from shared.heartbeat import BUCKET
from shared.nats_server import find_binary
from shared.secrets import is_secret_name
from shared.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
COMPOSE = INFRA / "compose.yaml"
ACCOUNTS = INFRA / "nats" / "accounts.conf"
NATS_CONF = K8S / "nats" / "nats.conf"
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
EXAMPLE_SECRETS = K8S / "secrets.example.yaml"
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
IMAGE = "alphalab:latest"
NATS_SECRET = "alphalab-nats"
SANDBOXED = {"explorer", "worker"}  # the services that run candidate code (shared/sandbox)
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
WORKLOADS = ("Deployment", "StatefulSet")


# ---- loading ------------------------------------------------------------------------------------


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _applied() -> list[dict[str, Any]]:
    """Every resource `kubectl apply -k infra/k8s` sends (the generated ConfigMaps aside)."""
    return [doc for name in _kustomization()["resources"] for doc in _docs(K8S / name)]


def _workloads() -> list[dict[str, Any]]:
    return [doc for doc in _applied() if doc["kind"] in WORKLOADS]


def _named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _applied() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(workload)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _service_of(workload: dict[str, Any]) -> str | None:
    """The AlphaLab service a workload runs (`python -m services.<name>`), or None (NATS)."""
    args = _pod(workload)["containers"][0].get("args", [])
    found = re.fullmatch(r"services\.(\w+)", args[0]) if args else None
    return found.group(1) if found else None


def _variant(workload: dict[str, Any]) -> str | None:
    return workload["metadata"].get("labels", {}).get("alphalab.dev/variant")


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _secret_ref(entry: dict[str, Any]) -> tuple[str, str] | None:
    ref = entry.get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _alphalab_compose_services() -> dict[str, dict[str, Any]]:
    """Compose services that run AlphaLab (`command: [services.<name>]`), by compose name."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if re.fullmatch(r"services\.\w+", (service.get("command") or [""])[0])
    }


def _accounts_users() -> dict[str, str]:
    """NATS user -> the variable its password comes from, as accounts.conf declares them."""
    text = ACCOUNTS.read_text()
    users = dict(re.findall(r"\{\s*user:\s*(\w+),\s*password:\s*\$(\w+)", text))
    assert users, "no users found in accounts.conf"
    return users


def _url_passwords(text: str) -> list[str]:
    """The password part of every user:password@ URL in `text` (a ${...} or $(...) reference whole)."""
    return re.findall(r"://[^:/@\s]+:(\$\{[^}]*\}|\$\([^)]*\)|[^@\s]+)@", text)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


# ---- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_validates_against_the_kubernetes_schema(path: Path, version: str) -> None:
    docs = _docs(path)
    assert docs, path
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = "/".join(str(p) for p in err.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {where}: {err.message}")


def test_kustomization_names_every_manifest_and_generates_from_files_that_exist() -> None:
    kustomization = _kustomization()
    assert kustomization["namespace"] == "alphalab"
    listed = set(kustomization["resources"])
    on_disk = {str(p.relative_to(K8S)) for p in _manifest_files()}
    # secrets.example.yaml is on purpose not applied: an apply would overwrite the real Secrets.
    assert listed == on_disk - {EXAMPLE_SECRETS.name}, listed ^ (on_disk - {EXAMPLE_SECRETS.name})
    assert not [doc for doc in _applied() if doc["kind"] == "Secret"], "Secrets are created with kubectl"
    generated = {g["name"] for g in kustomization["configMapGenerator"]}
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (K8S / file.split("=")[-1]).is_file(), file
    # Every ConfigMap a pod mounts or reads is generated or applied.
    maps = generated | {d["metadata"]["name"] for d in _applied() if d["kind"] == "ConfigMap"}
    for workload in _workloads():
        for volume in _pod(workload).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, volume
        for container in _containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps, source
    assert [i["name"] for i in kustomization["images"]] == [IMAGE.split(":")[0]]


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
def test_what_kustomize_renders_validates_too() -> None:
    command = _kustomize()
    assert command is not None
    result = subprocess.run([*command, str(K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "alphalab", doc["metadata"]["name"]
        if doc["kind"] in WORKLOADS:  # the generated names (with their hash) are the ones mounted
            for volume in _pod(doc).get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, volume
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in docs if d["kind"] in WORKLOADS}
    assert replicas["alphalab-worker-gpu"] == 0  # off unless asked for, like compose's gpu profile
    assert replicas["alphalab-nats"] == 3 and replicas["alphalab-ledger"] == 1


def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_compose_schema_is_the_vendored_one() -> None:
    import hashlib

    notice = COMPOSE_SCHEMA.with_suffix(".NOTICE").read_text()
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert f"sha256:  {digest}" in notice  # edited without updating its provenance
    assert "Apache License, Version 2.0" in notice and "github.com/compose-spec/compose-go" in notice


# ---- every service once, as its own user ---------------------------------------------------------


def test_every_service_runs_exactly_once_on_kubernetes() -> None:
    plain: dict[str, list[str]] = {}
    for workload in _workloads():
        service = _service_of(workload)
        if service is not None and _variant(workload) in (None, "cpu"):
            plain.setdefault(service, []).append(workload["metadata"]["name"])
    assert set(plain) == set(SERVICES), set(plain) ^ set(SERVICES)
    assert all(len(names) == 1 for names in plain.values()), plain
    ledger = _named("StatefulSet", "alphalab-ledger")
    assert _service_of(ledger) == "ledger" and ledger["spec"]["replicas"] == 1
    for name in ("strategist", "explorer", "supervisor"):  # singletons: never two during a rollout
        deployment = _named("Deployment", f"alphalab-{name}")
        assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    variants = [w for w in _workloads() if _variant(w) not in (None, "cpu")]
    assert [(_service_of(w), _variant(w)) for w in variants] == [("worker", "gpu")]
    # Each workload's selector is its own: the CPU workers' never matches the GPU workers' pods.
    selectors = [w["spec"]["selector"]["matchLabels"] for w in _workloads()]
    for a in selectors:
        for b in selectors:
            assert a is b or not (a.items() <= b.items()), (a, b)


def test_every_service_runs_exactly_once_in_compose() -> None:
    services = _alphalab_compose_services()
    plain = [s["command"][0].removeprefix("services.") for s in services.values() if "profiles" not in s]
    assert sorted(plain) == sorted(SERVICES)
    profiled = {n: s for n, s in services.items() if "profiles" in s}
    assert {n: (s["command"], s["profiles"]) for n, s in profiled.items()} == {
        "worker-gpu": (["services.worker"], ["gpu"])
    }


def test_each_service_connects_as_its_own_nats_user_on_kubernetes() -> None:
    users = _accounts_users()
    for workload in _workloads():
        service = _service_of(workload)
        if service is None:
            continue
        assert service in users, f"{service} has no NATS user in accounts.conf"
        for container in _containers(workload):
            env = _env(container)
            where = (workload["metadata"]["name"], container["name"])
            assert _secret_ref(env["NATS_PASSWORD"]) == (NATS_SECRET, users[service]), where
            # $(NATS_PASSWORD) is expanded by the kubelet, from the entry defined before it.
            names = list(env)
            assert names.index("NATS_PASSWORD") < names.index("ALPHALAB_NATS_URL")
            wanted = f"nats://{service}:$(NATS_PASSWORD)@alphalab-nats:4222"
            assert env["ALPHALAB_NATS_URL"]["value"] == wanted, where


def test_each_service_connects_as_its_own_nats_user_in_compose() -> None:
    users = _accounts_users()
    for name, service in _alphalab_compose_services().items():
        user = service["command"][0].removeprefix("services.")
        env = service["environment"]
        found = re.fullmatch(r"nats://(\w+):\$\{(\w+):\?[^}]*\}@nats:4222", env["ALPHALAB_NATS_URL"])
        assert found and found.groups() == (user, users[user]), (name, env["ALPHALAB_NATS_URL"])
        # the same variable again under a name shared.secrets scrubs from logs
        assert re.fullmatch(rf"\$\{{{users[user]}:\?[^}}]*\}}", env["NATS_PASSWORD"]), (name, env)
        build = service["build"]
        assert service["image"] == IMAGE, name
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file(), build


def test_only_settings_are_given_as_alphalab_variables() -> None:
    """The services refuse an ALPHALAB_* variable that is not a setting."""
    settings_map = _named("ConfigMap", "alphalab-settings")
    assert set(settings_map["data"]) <= SETTINGS, set(settings_map["data"]) - SETTINGS
    for workload in _workloads():
        for container in _containers(workload):
            given = {n for n in _env(container) if n.startswith(ENV_PREFIX)}
            assert given <= SETTINGS, (workload["metadata"]["name"], given - SETTINGS)
    for name, service in _alphalab_compose_services().items():
        given = {n for n in service["environment"] if n.startswith(ENV_PREFIX)}
        assert given <= SETTINGS, (name, given - SETTINGS)


def test_every_alphalab_container_runs_the_one_image() -> None:
    for workload in _workloads():
        if _service_of(workload) is not None:
            assert {c["image"] for c in _containers(workload)} == {IMAGE}, workload["metadata"]["name"]


# ---- NATS users and secrets ----------------------------------------------------------------------


def test_every_nats_user_gets_its_password_from_the_secret() -> None:
    users = _accounts_users()
    nats = _named("StatefulSet", "alphalab-nats")
    env = _env(_pod(nats)["containers"][0])
    for user, variable in users.items():
        assert _secret_ref(env[variable]) == (NATS_SECRET, variable), (user, env.get(variable))
    assert _secret_ref(env["NATS_ROUTE_PASSWORD"]) == (NATS_SECRET, "NATS_ROUTE_PASSWORD")
    assert set(_compose()["services"]["nats"]["environment"]) == set(users.values())
    # Every key any container reads from a Secret is a key of that Secret (secrets.example.yaml).
    keys = {(d["metadata"]["name"], k) for d in _docs(EXAMPLE_SECRETS) for k in d["stringData"]}
    for workload in _workloads():
        for container in _containers(workload):
            for entry in container.get("env", []):
                ref = _secret_ref(entry)
                assert ref is None or ref in keys, (workload["metadata"]["name"], ref)
    assert {(NATS_SECRET, v) for v in users.values()} <= keys
    # env.example is what `kubectl create secret --from-env-file` reads: it names the same keys.
    lines = (INFRA / "env.example").read_text().splitlines()
    example = {line.split("=")[0] for line in lines if "=" in line and not line.startswith("#")}
    assert {k for name, k in keys if name == NATS_SECRET} <= example


def test_the_accounts_config_nats_pods_read_is_infra_nats_accounts_conf() -> None:
    """kustomize reads no file outside infra/k8s, so the cluster gets a copy: it must not drift."""
    copy = K8S / "nats" / "accounts.conf"
    assert copy.read_bytes() == ACCOUNTS.read_bytes(), f"cp {ACCOUNTS} {copy}"
    assert 'include "accounts.conf"' in NATS_CONF.read_text()


def test_no_literal_secret_values() -> None:
    for path in _manifest_files():
        for doc in _docs(path):
            if doc["kind"] == "Secret":  # only the example, and only empty
                assert path == EXAMPLE_SECRETS and set(doc["stringData"].values()) == {""}, path
                assert "data" not in doc, path
            if doc["kind"] == "ConfigMap":
                assert not [k for k in doc["data"] if is_secret_name(k)], doc["data"]
            if doc["kind"] not in WORKLOADS:
                continue
            for container in _containers(doc):
                env = _env(container)
                for name, entry in env.items():
                    if is_secret_name(name):
                        assert _secret_ref(entry), f"{path.name}: {name} is not from a Secret"
                for text in [*(e.get("value", "") for e in env.values()), *container.get("args", [])]:
                    for password in _url_passwords(text):
                        found = re.fullmatch(r"\$\((\w+)\)", password)
                        assert found and _secret_ref(env[found.group(1)]), f"{path.name}: {text}"
    compose = _compose()
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if is_secret_name(variable):  # interpolated from infra/.env or the shell, or passed through
                assert value is None or re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", value), (name, variable)
        for text in _strings(service):
            for password in _url_passwords(text):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", password), (name, text)
    # NATS configs name their passwords by variable only.
    for conf in (NATS_CONF, K8S / "nats" / "accounts.conf"):
        for value in re.findall(r"password:\s*(\S+)", conf.read_text()):
            assert re.fullmatch(r"\$\w+[,}]?", value), (conf.name, value)
    # Nothing shaped like a provider's API key anywhere under infra/.
    for path in INFRA.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert not re.search(r"\bsk-[A-Za-z0-9_-]{16,}", path.read_text(errors="replace")), path


# ---- volumes ------------------------------------------------------------------------------------


def test_no_volume_is_shared_between_services_on_kubernetes() -> None:
    claims: dict[str, str] = {}
    for workload in _workloads():
        name = workload["metadata"]["name"]
        pod = _pod(workload)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        templates = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            assert "hostPath" not in volume and "nfs" not in volume, (name, volume)
            if "persistentVolumeClaim" in volume:  # a named claim: one workload of one pod only
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert claim not in claims, (name, claims[claim], claim)
                claims[claim] = name
                assert workload["spec"]["replicas"] == 1, name
        if _service_of(workload) is None:
            continue
        main = pod["containers"][0]
        [home] = [m["name"] for m in main["volumeMounts"] if m["mountPath"] == "/data"]
        assert home in templates or "emptyDir" in volumes.get(home, {}), (name, home)
    ledger = _named("StatefulSet", "alphalab-ledger")
    [template] = ledger["spec"]["volumeClaimTemplates"]  # the DuckDB file outlives the pod
    mounts = _pod(ledger)["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts if m["name"] == template["metadata"]["name"]] == ["/data"]


def test_no_volume_is_shared_between_services_in_compose() -> None:
    compose = _compose()
    used: dict[str, str] = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _, target = volume.split("#")[0].strip().partition(":")
            if not target:  # anonymous: one per container
                continue
            if source.startswith((".", "/")):  # a bind mount: only NATS's read-only config
                assert (name, source, target) == ("nats", "./nats", "/etc/nats:ro"), (name, volume)
                continue
            assert source in compose["volumes"], (name, source)
            assert source not in used, (name, used[source], source)
            used[source] = name
            # a named volume belongs to one container: not on a service that scales
            assert service.get("deploy", {}).get("replicas", 1) == 1 and "profiles" not in service, name
    for name, service in _alphalab_compose_services().items():
        homes = [v for v in service["volumes"] if v.split(":")[-1] == "/data"]
        assert len(homes) == 1 and service["environment"]["ALPHALAB_HOME"] == "/data", name
    assert "ledger-home:/data" in [v.split("#")[0].strip() for v in compose["services"]["ledger"]["volumes"]]
    assert compose["services"]["worker"]["deploy"]["replicas"] >= 1


# ---- the NATS cluster ---------------------------------------------------------------------------


def _routes() -> list[str]:
    args = _pod(_named("StatefulSet", "alphalab-nats"))["containers"][0]["args"]
    assert "--cluster" not in args and not any(a.startswith("--cluster=") for a in args), (
        "--cluster on the command line clears nats.conf's route authorization"
    )
    return args[args.index("--routes") + 1].split(",")


def test_the_nats_statefulset_is_three_nodes_whose_routes_name_every_pod() -> None:
    nats = _named("StatefulSet", "alphalab-nats")
    spec = nats["spec"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    headless = _named("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    pods = {f"{nats['metadata']['name']}-{i}.{spec['serviceName']}:6222" for i in range(spec["replicas"])}
    routes = _routes()
    assert {r.split("@")[-1] for r in routes} == pods and len(routes) == len(pods)
    assert all(r.startswith("nats-route://route:$(NATS_ROUTE_PASSWORD)@") for r in routes), routes
    conf = NATS_CONF.read_text()
    assert re.search(r"^\s*no_advertise: true", conf, re.M) and "password: $NATS_ROUTE_PASSWORD" in conf
    # JetStream's store on each pod's own claim, the config from the generated ConfigMap.
    container = _pod(nats)["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    [template] = spec["volumeClaimTemplates"]
    store = re.search(r"store_dir:\s*(\S+)", conf)
    assert store and mounts[template["metadata"]["name"]] == store.group(1)
    config = [v for v in _pod(nats)["volumes"] if v["name"] == "config"]
    assert config[0]["configMap"]["name"] == "alphalab-nats-config"
    assert container["args"][:2] == ["--config", f"{mounts['config']}/nats.conf"]
    # Probes on the monitoring port the config opens; the client Service selects the same pods.
    monitor = {p["name"]: p["containerPort"] for p in container["ports"]}["monitor"]
    assert f"http: 0.0.0.0:{monitor}" in conf
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"].startswith("/healthz"), probe
        assert container[probe]["httpGet"]["port"] == "monitor", probe
    client = _named("Service", "alphalab-nats")
    assert client["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert [p["port"] for p in client["spec"]["ports"]] == [4222]  # monitoring stays off the Service
    assert _named("PodDisruptionBudget", "alphalab-nats")["spec"]["maxUnavailable"] == 1


def test_sandboxed_services_get_the_sandbox_and_the_others_do_not() -> None:
    for workload in _workloads():
        service = _service_of(workload)
        if service is None:
            continue
        main = _pod(workload)["containers"][0]["securityContext"]
        if service in SANDBOXED:
            assert main["runAsUser"] == 0 and main["privileged"] is True, workload["metadata"]["name"]
            assert main["seccompProfile"]["type"] == "Unconfined"
        else:
            assert _pod(workload)["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
            assert main["capabilities"]["drop"] == ["ALL"] and main["allowPrivilegeEscalation"] is False
    for name, service in _alphalab_compose_services().items():
        sandboxed = service["command"][0].removeprefix("services.") in SANDBOXED
        assert (service.get("user") == "0:0") == sandboxed, name
        assert ("SYS_ADMIN" in service.get("cap_add", [])) == sandboxed, name
        if sandboxed:
            assert {"seccomp=unconfined", "systempaths=unconfined"} <= set(service["security_opt"]), name


def test_gpu_workers_ask_for_a_gpu_and_start_only_when_asked() -> None:
    gpu = _named("Deployment", "alphalab-worker-gpu")
    main = _pod(gpu)["containers"][0]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in _pod(gpu)["tolerations"])
    assert {r["name"]: r["count"] for r in _kustomization()["replicas"]}["alphalab-worker-gpu"] == 0
    service = _compose()["services"]["worker-gpu"]
    assert service["profiles"] == ["gpu"]
    assert service["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    # The same worker otherwise, but that the CPU one is told it has no GPU, so it never takes a GPU run.
    cpu = _compose()["services"]["worker"]
    assert cpu["environment"].pop("ALPHALAB_GPUS") == "none" and "ALPHALAB_GPUS" not in service["environment"]
    assert service["environment"] == cpu["environment"] and service["command"] == cpu["command"]
    cpu_env = _env(_pod(_named("Deployment", "alphalab-worker"))["containers"][0])
    assert cpu_env.pop("ALPHALAB_GPUS")["value"] == "none" and _env(main) == cpu_env


# ---- nats.conf and bootstrap.py with real servers ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_conf(folder: Path, client: int, monitor: int, route: int) -> Path:
    """nats.conf as shipped, with only its addresses and paths moved to loopback and `folder`."""
    text = NATS_CONF.read_text()
    for old, new in {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{client}",
        "http: 0.0.0.0:8222": f"http: 127.0.0.1:{monitor}",
        "listen: 0.0.0.0:6222": f"listen: 127.0.0.1:{route}",
        "store_dir: /data": f'store_dir: "{folder / "store"}"',
        "pid_file: /var/run/nats/nats.pid": f'pid_file: "{folder / "nats.pid"}"',
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    folder.mkdir(parents=True)
    shutil.copy(K8S / "nats" / "accounts.conf", folder / "accounts.conf")
    (folder / "nats.conf").write_text(text)
    return folder / "nats.conf"


def _jsz(monitor: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/jsz", timeout=2) as answer:
        return json.loads(answer.read())


def _healthy(monitor: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=2) as answer:
            return json.loads(answer.read()).get("status") == "ok"
    except OSError:
        return False


def _load_bootstrap() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_bootstrap", K8S / "bootstrap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
async def test_nats_conf_forms_a_cluster_and_bootstrap_replicates_the_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = {variable: "p" + secrets.token_hex(12) for variable in _accounts_users().values()}
    passwords["NATS_ROUTE_PASSWORD"] = "p" + secrets.token_hex(12)
    nodes = [(_free_port(), _free_port(), _free_port()) for _ in range(4)]  # the 4th: an intruder
    statefulset = _named("StatefulSet", "alphalab-nats")
    pod = f"{statefulset['metadata']['name']}-{{}}.{statefulset['spec']['serviceName']}:6222"

    def routes(password: str) -> str:
        """The StatefulSet's own --routes, its pod names mapped to loopback ports."""
        text = ",".join(_routes()).replace("$(NATS_ROUTE_PASSWORD)", password)
        for index, (_, _, route) in enumerate(nodes[:3]):
            text = text.replace(pod.format(index), f"127.0.0.1:{route}")
        assert "alphalab-nats" not in text, text
        return text

    def start(index: int, route_password: str) -> subprocess.Popen[bytes]:
        client, monitor, route = nodes[index]
        conf = _node_conf(tmp_path / f"n{index}", client, monitor, route)
        env = {**os.environ, **passwords, "NATS_ROUTE_PASSWORD": route_password, "POD_NAME": f"node-{index}"}
        command = [find_binary(), "-c", str(conf), "--routes", routes(route_password)]
        command += ["-l", str(conf.parent / "nats.log")]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(user: str, index: int = 0) -> str:
        return f"nats://{user}:{passwords[f'NATS_{user.upper()}_PASSWORD']}@127.0.0.1:{nodes[index][0]}"

    bootstrap = _load_bootstrap()
    servers = [start(i, passwords["NATS_ROUTE_PASSWORD"]) for i in range(3)]
    try:
        deadline = time.monotonic() + 60
        while not all(_healthy(monitor) for _, monitor, _ in nodes[:3]):
            assert time.monotonic() < deadline, "the three nodes did not become healthy"
            assert all(s.poll() is None for s in servers), "a node exited"
            await asyncio.sleep(0.2)
        assert _jsz(nodes[0][1])["meta_cluster"]["cluster_size"] == 3

        # `wait` does not create the stream: it waits for it, and gives up at its timeout.
        monkeypatch.setenv("ALPHALAB_NATS_URL", url("ledger"))
        assert await bootstrap.main(["wait", "--timeout", "1"]) == 1
        # A service that got there first made the stream with one replica ...
        bus = await Bus.connect(url("worker", 1), Producer(service="worker", instance="early"))
        try:
            assert (await bus.js.stream_info(STREAM)).config.num_replicas == 1
        finally:
            await bus.close()
        # ... which `create`, as the strategist, raises to three, making the bucket and store with three.
        monkeypatch.setenv("ALPHALAB_NATS_URL", url("strategist", 2))
        assert await bootstrap.main(["create", "--replicas", "3", "--timeout", "60"]) == 0
        assert await bootstrap.main(["create", "--replicas", "3", "--timeout", "60"]) == 0  # idempotent
        monkeypatch.setenv("ALPHALAB_NATS_URL", url("ledger"))
        assert await bootstrap.main(["wait", "--timeout", "30"]) == 0
        bus = await Bus.connect(url("supervisor"), Producer(service="supervisor", instance="check"))
        try:
            for stream in (STREAM, f"KV_{BUCKET}", f"OBJ_{BLOB_BUCKET}"):
                assert (await bus.js.stream_info(stream)).config.num_replicas == 3, stream
        finally:
            await bus.close()

        # A node with the wrong route password is refused: the routes authenticate.
        intruder = start(3, "wrong" + secrets.token_hex(4))
        servers.append(intruder)
        log = tmp_path / "n3" / "nats.log"
        deadline = time.monotonic() + 20
        while "Authorization Violation" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the intruder's routes were not refused"
            await asyncio.sleep(0.2)
        peers = [r["name"] for r in _jsz(nodes[0][1])["meta_cluster"].get("replicas", [])]
        assert "node-3" not in peers and _jsz(nodes[0][1])["meta_cluster"]["cluster_size"] == 3
    finally:
        for server in servers:
            server.kill()
            server.wait()
