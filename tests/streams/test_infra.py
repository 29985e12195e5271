"""Deployment files checked against the code: docker-compose, Dockerfile, Grafana, README.

No Docker engine is needed: the compose file is checked by a real compose implementation's
`config` and by reading it next to `Settings`, the CLI and the other files it names.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from streamrec.streams.commands.cli import app
from streamrec.streams.commands.config import settings_table
from streamrec.streams.settings import Settings
from streamrec.streams.worker import ROLES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
PROMETHEUS = REPO / "infra" / "prometheus"
GRAFANA = REPO / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streamrec.json"

#: Debian package of each command-line tool the infrastructure tests use (`make system-deps`).
PACKAGES = {
    "docker-compose": "docker-compose",
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "kcat": "kcat",
}


def require_tool(name: str) -> str:
    """The tool's path; skips without it, or fails when STREAMREC_REQUIRE_TOOLS=1 (as in CI)."""
    path = shutil.which(name)
    if path is not None:
        return path
    package = PACKAGES.get(name, name)
    message = f"{name!r} is not installed (Debian package {package!r}; `make system-deps` installs it)"
    if os.environ.get("STREAMREC_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{message}, and STREAMREC_REQUIRE_TOOLS=1 requires it")
    pytest.skip(message)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def setting_env_names(model: type[BaseModel] = Settings, prefix: str = "STREAMREC_") -> set[str]:
    """Every environment variable `Settings` reads: fields, and fields of groups joined by `__`."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(prefix + name.upper())
    return names


def dockerfile_env() -> dict[str, str]:
    env = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def worker_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("command", [None])[0] == "worker"}


def addresses(name: str, service: dict[str, Any]) -> set[str]:
    """The host names a service answers to on the compose network."""
    aliases = set()
    for network in (service.get("networks") or {}).values():
        aliases |= set((network or {}).get("aliases", []))
    return {name} | aliases


def container_port(spec: str) -> int:
    return int(str(spec).rsplit(":", 1)[-1].split("/")[0])


def host_path(service: dict[str, Any], container: str) -> Path | None:
    """The repository path that a bind mount of `service` puts at `container`, if any."""
    target = PurePosixPath(container)
    for volume in service.get("volumes", []):
        source, mount = volume.split(":")[:2]
        if not source.startswith((".", "/")):
            continue
        mount_path = PurePosixPath(mount)
        if target == mount_path or mount_path in target.parents:
            return (REPO / source / target.relative_to(mount_path)).resolve()
    return None


def test_a_real_compose_implementation_accepts_the_file() -> None:
    tool = require_tool("docker-compose")
    base = [tool, "--file", str(COMPOSE), "--profile", "cpu", "--profile", "gpu"]
    check = subprocess.run([*base, "config", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    listed = subprocess.run(
        [*base, "config", "--services"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == set(services())
    resolved = yaml.safe_load(
        subprocess.run(
            [*base, "config"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    # What the implementation resolved (anchors, merge keys) is what the other tests read here.
    for name, service in services().items():
        theirs = resolved["services"][name]
        assert {k: str(v) for k, v in theirs.get("environment", {}).items()} == {
            k: str(v) for k, v in service.get("environment", {}).items()
        }, name
        assert theirs.get("command") == service.get("command") and theirs["image"] == service["image"], name


def test_every_streamrec_variable_is_a_setting_and_its_value_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    valid = setting_env_names()
    sources = {f"service {name}": s.get("environment", {}) for name, s in services().items()}
    sources["Dockerfile"] = dockerfile_env()
    checked = 0
    for source, env in sources.items():
        ours = {k: str(v) for k, v in env.items() if k.startswith("STREAMREC_")}
        unknown = set(ours) - valid
        assert not unknown, f"{source} sets {sorted(unknown)}, which no setting reads"
        for key in [k for k in os.environ if k.startswith("STREAMREC_")]:
            monkeypatch.delenv(key)
        for key, value in ours.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        for key, value in ours.items():
            current: Any = settings
            for part in key.removeprefix("STREAMREC_").lower().split("__"):
                current = getattr(current, part)
            assert str(current) == value, f"{source}: {key}={value!r} reads as {current!r}"
            checked += 1
    assert checked > 0


def test_the_encoder_runs_on_the_gpu_in_one_profile_and_on_the_cpu_in_the_other() -> None:
    s = services()
    gpu, cpu = s["encoder"], s["encoder-cpu"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    assert gpu["environment"]["STREAMREC_ENCODER__DEVICE"] == "cuda"
    assert cpu["environment"]["STREAMREC_ENCODER__DEVICE"] == "cpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert "deploy" not in cpu
    assert {"encoder"} <= addresses("encoder-cpu", cpu), "Prometheus scrapes encoder:PORT in both profiles"
    assert {s.get("command")[1] for s in worker_services().values()} == set(ROLES)


def test_paths_named_by_the_compose_file_and_the_dockerfile_exist() -> None:
    declared_volumes = set(compose().get("volumes", {}))
    for name, service in services().items():
        build = service.get("build")
        if build is not None:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} is missing"
            dockerfile = context / (
                build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            )
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: mounts {source}, which does not exist"
            else:
                assert source in declared_volumes, f"{name}: named volume {source!r} is not declared"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in shlex.split(line)[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_images_are_pinned_and_build_args_are_declared() -> None:
    declared_args = {
        line.split()[1].split("=")[0]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("ARG ")
    }
    pinned = re.compile(r"^[\w./-]+:[\w][\w.-]*$")
    for name, service in services().items():
        image = service.get("image")
        assert image, f"{name} names no image"
        assert pinned.match(image), f"{name}: image {image!r} must carry an explicit tag"
        if "build" in service:
            assert image.startswith("streamrec:"), f"{name} builds an image named {image!r}"
            build = service["build"]
            args = build.get("args", {}) if isinstance(build, dict) else {}
            assert set(args) <= declared_args, (
                f"{name}: build args {set(args) - declared_args} not in Dockerfile"
            )
            for value in args.values():
                assert ":latest" not in str(value)
        else:
            assert not image.endswith(":latest"), f"{name}: third-party image {image!r} must be pinned"
    base = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ARG BASE="))
    assert pinned.match(base.split("=", 1)[1]) and not base.endswith(":latest")


def test_ports_and_addresses_agree_across_services() -> None:
    s = services()
    published = [spec.split(":")[0] for svc in s.values() for spec in svc.get("ports", [])]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"

    kafka = s["kafka"]["environment"]
    listeners = dict(re.match(r"(\w+)://(.*)", item).groups() for item in kafka["KAFKA_LISTENERS"].split(","))
    advertised = dict(
        re.match(r"(\w+)://(.*)", item).groups() for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    internal_host, internal_port = advertised["PLAINTEXT"].split(":")
    assert internal_host in addresses("kafka", s["kafka"]) and listeners["PLAINTEXT"] == f":{internal_port}"
    external_host, external_port = advertised["EXTERNAL"].split(":")
    assert external_host == "localhost" and listeners["EXTERNAL"] == f":{external_port}"
    assert f"{external_port}:{external_port}" in s["kafka"]["ports"]
    controller = kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")[1]
    assert controller == f"kafka{listeners['CONTROLLER']}"
    assert kafka["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in s["kafka"]["volumes"]}, (
        "Kafka's data must persist"
    )

    qdrant_ports = {container_port(p) for p in s["qdrant"]["ports"]}
    for name, service in s.items():
        env = service.get("environment", {})
        if "STREAMREC_KAFKA_BOOTSTRAP" in env:
            assert env["STREAMREC_KAFKA_BOOTSTRAP"] == advertised["PLAINTEXT"], name
        if "STREAMREC_QDRANT_URL" in env:
            url = urlsplit(env["STREAMREC_QDRANT_URL"])
            assert url.hostname == "qdrant" and url.port in qdrant_ports, name

    readme = (REPO / "README.md").read_text()
    assert f"localhost:{external_port}" in readme
    grafana_port = next(container_port(p) for p in s["grafana"]["ports"])
    assert f"http://localhost:{grafana_port}" in readme


def test_worker_commands_are_real_cli_commands() -> None:
    commands = typer.main.get_command(app).commands
    for name, service in services().items():
        if "build" not in service:
            continue
        command, *args = service["command"]
        assert command in commands, f"{name}: `streamrec {command}` does not exist"
        options = {opt for param in commands[command].params for opt in param.opts}
        for arg in args:
            if arg.startswith("--"):
                assert arg in options, f"{name}: `streamrec {command}` has no option {arg}"
        if command == "worker":
            assert set(args[0].split(",")) <= set(ROLES), name
            assert service["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    init = services()["kafka-init"]
    assert init["command"][0] == "topics" and init.get("restart") == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Topics and faust's changelogs must agree on partitions: one value for all.
    partitions = {s["environment"].get("STREAMREC_PARTITIONS") for s in worker_services().values()}
    assert partitions == {init["environment"]["STREAMREC_PARTITIONS"]}


def test_prometheus_scrapes_every_worker_at_its_metrics_port() -> None:
    s = services()
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    prometheus = s["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    container_config = PurePosixPath(config_flag.split("=", 1)[1])
    assert host_path(prometheus, str(container_config)) == (PROMETHEUS / "prometheus.yml").resolve()
    for rule_file in config["rule_files"]:
        assert host_path(prometheus, str(container_config.parent / rule_file)).is_file(), rule_file

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for group in jobs["streamrec"]["static_configs"] for t in group["targets"]]
    default_port = Settings.model_fields["metrics_port"].default
    scraped = set()
    for target in targets:
        host, port = target.rsplit(":", 1)
        owners = [n for n, svc in worker_services().items() if host in addresses(n, svc)]
        assert owners, f"target {target} is no worker service"
        for owner in owners:
            env = s[owner].get("environment", {})
            assert int(port) == int(env.get("STREAMREC_METRICS_PORT", default_port)), target
            assert (
                env.get("STREAMREC_METRICS_HOST", dockerfile_env().get("STREAMREC_METRICS_HOST")) == "0.0.0.0"
            )
            scraped.add(owner)
    assert scraped == set(worker_services()), f"workers not scraped: {set(worker_services()) - scraped}"
    for group in jobs["streamrec"]["static_configs"]:
        assert "role" not in group.get("labels", {}), "a `role` target label would rename the workers' own"
    for job in jobs.values():
        for group in job["static_configs"]:
            for target in group["targets"]:
                assert target.rsplit(":", 1)[0] in {a for n, svc in s.items() for a in addresses(n, svc)}, (
                    target
                )


def _provisioning() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    grafana = services()["grafana"]
    root = host_path(grafana, "/etc/grafana/provisioning")
    assert root is not None and root.is_dir(), (
        "Grafana's provisioning directory is not mounted from the repository"
    )
    datasources = [
        d
        for f in sorted((root / "datasources").glob("*.yml"))
        for d in yaml.safe_load(f.read_text())["datasources"]
    ]
    providers = [
        p
        for f in sorted((root / "dashboards").glob("*.yml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    return grafana, datasources, providers


def test_grafana_provisioning_points_at_files_and_services_that_exist() -> None:
    grafana, datasources, providers = _provisioning()
    s = services()
    assert datasources and providers
    for source in datasources:
        url = urlsplit(source["url"])
        assert url.hostname in s, source["url"]
        assert any(container_port(p) == url.port for p in s[url.hostname].get("ports", [])), source["url"]
    for provider in providers:
        directory = host_path(grafana, provider["options"]["path"])
        assert directory is not None and list(directory.glob("*.json")), provider["options"]["path"]
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or host_path(grafana, home) == DASHBOARD.resolve()


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    _, datasources, _ = _provisioning()
    uids = {d["uid"] for d in datasources}
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid, title = panel["gridPos"], panel["title"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), title
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, title
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{title!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = title
        if panel["type"] == "row":
            assert not panel.get("targets")
            continue
        source = panel["datasource"]
        assert source["uid"] in uids and source["type"] == "prometheus", title
        assert panel["targets"], f"{title!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", source)["uid"] in uids, title

    text = "\n".join(dashboard_exprs())
    for wanted in (
        r"rate\(streamrec_events_consumed_total",
        r"streamrec_consumer_lag",
        r"histogram_quantile\(0\.5, .*streamrec_event_to_recommendation_seconds_bucket",
        r"histogram_quantile\(0\.99, .*streamrec_event_to_recommendation_seconds_bucket",
        r"streamrec_encoder_batch_size_",
        r"rate\(streamrec_encoder_texts_total",
        r"streamrec_qdrant_upsert_seconds_bucket",
        r"streamrec_candidate_search_seconds_bucket",
        r"sum by \(topic, reason\) \(rate\(streamrec_deadletter_total",
        r"streamrec_online_hit_rate_at_10",
        r"streamrec_online_ndcg_at_10",
        r'up\{job="streamrec"\}',
        r"streamrec_worker_ready",
    ):
        assert re.search(wanted, text), f"no panel queries {wanted}"


def test_alert_rules_cover_the_failures_that_matter() -> None:
    rules = [r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    by_name = {r["alert"]: r for r in rules}
    assert len(by_name) == len(rules), "alert names must be unique"
    assert re.search(r'up\{job="streamrec"\} == 0', by_name["StreamrecWorkerDown"]["expr"])
    assert "streamrec_worker_ready == 0" in by_name["StreamrecWorkerNotReady"]["expr"]
    assert "streamrec_consumer_lag" in by_name["StreamrecConsumerLagGrowing"]["expr"]
    assert "streamrec_deadletter_total" in by_name["StreamrecDeadLetterSpike"]["expr"]
    slo = by_name["StreamrecLatencySLOBreach"]
    assert (
        "histogram_quantile(0.99" in slo["expr"]
        and slo["expr"].strip().endswith("> 1")
        and slo["for"] == "5m"
    )
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])}
    assert tested == set(by_name), f"alerts without a unit test: {set(by_name) - tested}"


def _readme_block(name: str) -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", readme, re.S)
    assert match, f"README has no <!-- {name}:begin --> ... <!-- {name}:end --> block"
    return match.group(1)


def test_readme_configuration_table_is_the_generated_one() -> None:
    assert _readme_block("config") == settings_table(), (
        "README's Configuration table is out of date: replace it with the output of `streamrec config`"
    )


def test_config_command_prints_every_setting_and_an_env_file_settings_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["config"])
    assert table.exit_code == 0, table.output
    listed = set(re.findall(r"`(STREAMREC_[A-Z_]+)`", table.output))
    assert listed == setting_env_names()
    assert "| `STREAMREC_KAFKA_BOOTSTRAP` | `--kafka-bootstrap` | none |" in table.output
    assert "| `STREAMREC_QDRANT_API_KEY` | `--qdrant-api-key` | none |" in table.output

    env = runner.invoke(app, ["config", "--env"])
    assert env.exit_code == 0, env.output
    assignments = dict(
        line.split("=", 1) for line in env.output.splitlines() if line and not line.startswith("#")
    )
    commented = {
        line[2:].split("=")[0] for line in env.output.splitlines() if line.startswith("# STREAMREC_")
    }
    assert set(assignments) | commented == setting_env_names()
    for key in [k for k in os.environ if k.startswith("STREAMREC_")]:
        monkeypatch.delenv(key)
    defaults = Settings().model_dump()
    for key, value in assignments.items():
        monkeypatch.setenv(key, value)
    assert Settings().model_dump() == defaults, "the env file must reproduce the defaults"
