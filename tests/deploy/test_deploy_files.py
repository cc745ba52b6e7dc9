"""The deployment files of deploy/systemd, deploy/docker and deploy/kubernetes: they parse, carry the privilege
and hardening settings deploy/README.md promises, refer to each other consistently, and their example
configurations load with apispy's own loader.

Nothing here starts a service (there is no Docker engine, systemd or cluster to start one); where the real tool
is installed (`systemd-analyze`), it checks the unit as systemd would.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.samples import ROOT

from sniffer.config import Config, load_config

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCKER = DEPLOY / "docker"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = SYSTEMD / "apispy.service"
MANIFESTS = sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")
YAML_FILES = [*sorted(KUBERNETES.glob("*.yaml")), DOCKER / "docker-compose.yml"]
INSTALLED_APISPY = Path(sys.executable).with_name("apispy")


def read_unit(path: Path = UNIT) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def kubernetes_objects() -> dict[str, dict]:
    """Every object of the manifests, keyed by "Kind/name"."""
    objects = {}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            objects[f"{document['kind']}/{document['metadata']['name']}"] = document
    return objects


def daemonset_container() -> dict:
    return kubernetes_objects()["DaemonSet/apispy"]["spec"]["template"]["spec"]["containers"][0]


def load_toml_text(text: str, tmp_path: Path) -> Config:
    """apispy's loader picks the format by suffix: the text goes into a .toml file first."""
    path = tmp_path / "apispy.toml"
    path.write_text(text)
    return load_config(str(path))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: path.name)
def test_yaml_file_parses_to_mappings(path):
    documents = list(yaml.safe_load_all(path.read_text()))
    assert documents and all(isinstance(document, dict) for document in documents)


def test_unit_parses_with_unit_service_and_install_sections():
    assert read_unit().sections() == ["Unit", "Service", "Install"]


@pytest.mark.parametrize(("key", "value"), [
    ("User", "apispy"),
    ("EnvironmentFile", "/etc/apispy/apispy.env"),
    ("AmbientCapabilities", "CAP_NET_RAW"),
    ("CapabilityBoundingSet", "CAP_NET_RAW"),
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("ReadWritePaths", "/var/lib/apispy /var/log/apispy"),
    ("PrivateTmp", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("SystemCallArchitectures", "native"),
    ("Restart", "on-failure"),
    ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ("KillSignal", "SIGTERM"),
    ("TimeoutStopSec", "30"),
])  # fmt: skip
def test_unit_sets_hardening_key(key, value):
    assert read_unit()["Service"][key] == value


def test_unit_allows_capture_network_and_netlink_address_families_only():
    families = read_unit()["Service"]["RestrictAddressFamilies"].split()
    # AF_NETLINK: scapy lists interfaces over rtnetlink when imported; without it apispy cannot start.
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"]


def test_unit_bounds_memory():
    assert re.fullmatch(r"\d+[KMGT]", read_unit()["Service"]["MemoryMax"])


def test_unit_leaves_executable_memory_to_numba():
    assert "MemoryDenyWriteExecute" not in read_unit()["Service"]


def test_unit_execstart_runs_apispy_live_on_the_configured_interface():
    command = shlex.split(read_unit()["Service"]["ExecStart"])
    assert Path(command[0]).name == "apispy"
    assert command[1] == "live"
    assert command[command.index("-i") + 1] == "${APISPY_INTERFACE}"
    assert command[command.index("--config") + 1] == "/etc/apispy/apispy.toml"


def test_unit_writes_only_into_its_writable_directories():
    service = read_unit()["Service"]
    writable = service["ReadWritePaths"].split()
    command = shlex.split(service["ExecStart"])
    outputs = [command[index + 1] for index, word in enumerate(command) if word in ("--alerts", "--inventory")]
    assert outputs and all(any(output.startswith(directory + "/") for directory in writable) for output in outputs)


def test_environment_example_sets_the_interface_and_influx_variables():
    assigned = {
        line.partition("=")[0]
        for line in (SYSTEMD / "apispy.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {"APISPY_INTERFACE", "INFLUX_URL", "INFLUX_TOKEN", "INFLUX_ORG", "INFLUX_BUCKET"} <= assigned


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the unit was checked as INI only")
    # verify insists that ExecStart's program exists: point it at the apispy installed with this interpreter.
    unit = tmp_path / "apispy.service"
    unit.write_text(UNIT.read_text().replace("/opt/apispy/bin/apispy", str(INSTALLED_APISPY)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "apispy.service" in line]
    assert (result.returncode, complaints) == (0, [])


def test_logrotate_rotates_the_unit_logs_and_reloads_the_service():
    text = (SYSTEMD / "logrotate-apispy").read_text()
    assert text.count("{") == text.count("}") == 1
    assert re.search(r"^/var/log/apispy/\*\.jsonl \{$", text, re.MULTILINE)
    postrotate = text.split("postrotate", 1)[1].split("endscript", 1)[0]
    assert "systemctl reload apispy" in postrotate


def test_systemd_example_config_loads_with_apispys_loader(tmp_path):
    config = load_toml_text((SYSTEMD / "apispy.toml.example").read_text(), tmp_path)
    assert [target["kind"] for target in config.webhooks] == ["slack", "pagerduty", "generic"]
    assert config.influx.spill_path == "/var/lib/apispy/influx-spill.lp"


def test_configmap_config_loads_with_apispys_loader(tmp_path):
    configmap = kubernetes_objects()["ConfigMap/apispy-config"]
    config = load_toml_text(configmap["data"]["apispy.toml"], tmp_path)
    assert config.influx.spill_path == "/var/lib/apispy/influx-spill.lp"


def test_daemonset_captures_on_the_host_network():
    pod = kubernetes_objects()["DaemonSet/apispy"]["spec"]["template"]["spec"]
    assert (pod["hostNetwork"], pod["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")


def test_daemonset_adds_net_raw_and_drops_all_other_capabilities():
    security = daemonset_container()["securityContext"]
    assert security["capabilities"] == {"add": ["NET_RAW"], "drop": ["ALL"]}
    assert (security["allowPrivilegeEscalation"], security["readOnlyRootFilesystem"]) == (False, True)


def test_daemonset_runs_apispy_live_on_the_interface_from_its_environment():
    container = daemonset_container()
    arguments = container["args"]
    assert arguments[0] == "live"
    assert arguments[arguments.index("-i") + 1] == "$(APISPY_INTERFACE)"
    assert "APISPY_INTERFACE" in {variable["name"] for variable in container["env"]}


def test_daemonset_refers_to_the_configmap_and_secret_defined_beside_it():
    objects = kubernetes_objects()
    pod = objects["DaemonSet/apispy"]["spec"]["template"]["spec"]
    configmaps = {volume["configMap"]["name"] for volume in pod["volumes"] if "configMap" in volume}
    secrets = {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for variable in pod["containers"][0]["env"]
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert configmaps and secrets
    assert {f"ConfigMap/{name}" for name in configmaps} | {f"Secret/{name}" for name in secrets} <= set(objects)


def test_daemonset_mounts_the_config_where_apispy_reads_it():
    container = daemonset_container()
    arguments = container["args"]
    config_path = Path(arguments[arguments.index("--config") + 1])
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert (config_path.parent, config_path.name) == (Path(mounts["config"]), "apispy.toml")


def test_daemonset_tolerates_every_node_and_stops_gracefully():
    pod = kubernetes_objects()["DaemonSet/apispy"]["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["terminationGracePeriodSeconds"] == 30


def test_daemonset_has_resource_limits_and_an_exec_liveness_probe():
    container = daemonset_container()
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert "exec" in container["livenessProbe"]


def test_secret_is_a_stringdata_template_with_the_influx_token():
    secret = kubernetes_objects()["Secret/apispy-influx"]
    assert list(secret["stringData"]) == ["INFLUX_TOKEN"]
    assert "REPLACE" in secret["stringData"]["INFLUX_TOKEN"]


def test_kubernetes_objects_live_in_the_apispy_namespace():
    objects = kubernetes_objects()
    namespaced = {obj["metadata"].get("namespace") for key, obj in objects.items() if not key.startswith("Namespace/")}
    assert ("Namespace/apispy" in objects, namespaced) == (True, {"apispy"})


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [path.name for path in MANIFESTS]


def test_dockerfile_is_multi_stage_on_python_slim():
    instructions = dockerfile_instructions()
    assert [keyword for keyword, _ in instructions].count("FROM") == 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in (DOCKER / "Dockerfile").read_text()


def test_dockerfile_runs_apispy_as_a_non_root_user():
    users = [arguments for keyword, arguments in final_stage(dockerfile_instructions()) if keyword == "USER"]
    assert users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["apispy"]') in dockerfile_instructions()
    assert ("CMD", '["live", "-i", "eth0"]') in dockerfile_instructions()


def test_dockerfile_warms_the_numba_cache_as_the_runtime_user():
    stage = final_stage(dockerfile_instructions())
    runs = [index for index, (keyword, arguments) in enumerate(stage) if keyword == "RUN"]
    warm = next(index for index in runs if "apispy replay" in stage[index][1])
    user_before = [arguments for keyword, arguments in stage[:warm] if keyword == "USER"][-1]
    assert user_before == "apispy"
    assert any(keyword == "ENV" and "NUMBA_CACHE_DIR=" in arguments for keyword, arguments in stage)


def test_dockerignore_lets_in_every_file_the_dockerfile_reads():
    lines = (DOCKER / "dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            sources += arguments.split()[:-1]
        sources += re.findall(r"type=bind,source=([^,\s]+)", arguments)
    sources = [source.rstrip("/") for source in sources]
    assert sources and set(sources) <= allowed
    assert all((ROOT / source).exists() for source in sources)


def test_compose_gives_apispy_the_host_network_and_net_raw_only():
    apispy = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]["apispy"]
    assert (apispy["network_mode"], apispy["cap_add"], apispy["cap_drop"]) == ("host", ["NET_RAW"], ["ALL"])


def test_compose_mounts_grafana_provisioning_from_deploy_grafana():
    services = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    sources = [volume.split(":")[0] for volume in services["grafana"]["volumes"] if volume.startswith(".")]
    assert sorted((DOCKER / source).resolve() for source in sources) == [
        DEPLOY / "grafana" / "dashboards",
        DEPLOY / "grafana" / "provisioning",
    ]
    assert "influxdb" in services
