"""Monitoring against the real thing: promtool on the configuration and on a live worker's metrics,
and a real Prometheus server scraping the session's worker and evaluating the alert rules.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from streamrec.streams.kafka.broker import free_port
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess
from streamrec.streams.telemetry import Metrics
from streamrec.streams.worker import ROLES
from tests.conftest import wait_for
from tests.streams.test_infra import PROMETHEUS, REPO, dashboard_exprs, require_tool

#: Labels Prometheus itself puts on every scraped series (prometheus.yml's target labels included).
TARGET_LABELS = {"job", "instance", "service", "le"}
METRIC = re.compile(r"\b(streamrec_[a-z0-9_]+|up)\b")


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def scrape(worker: WorkerProcess) -> str:
    with urllib.request.urlopen(worker.metrics_url, timeout=5) as response:
        return response.read().decode()


def exported_names(exposition: str) -> set[str]:
    """Every series name the exposition can hold, including metrics with no sample yet."""
    names = {"up"}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind in ("histogram", "summary"):
                names |= {f"{name}_count", f"{name}_sum"} | (
                    {f"{name}_bucket"} if kind == "histogram" else set()
                )
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group())
    return names


def label_names() -> dict[str, set[str]]:
    """Label names of every series a worker exports, by series name."""
    metrics = Metrics.create(CollectorRegistry())
    out: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        (family,) = value.describe()
        # prometheus_client keeps label names only on the wrapper.
        labels = set(value._labelnames)
        suffixes = {"histogram": ["_bucket", "_count", "_sum"], "counter": ["_total"]}.get(family.type, [""])
        for suffix in suffixes:
            out[family.name + suffix] = labels
    out["up"] = set()
    return out


def referenced_metrics(expr: str) -> set[str]:
    # Label values (`job="streamrec"`) and label names are not metric names.
    return set(METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))


def referenced_labels(expr: str) -> set[str]:
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
    return labels


@pytest.fixture(scope="module")
def exposition(worker: WorkerProcess) -> str:
    return scrape(worker)


def test_prometheus_config_is_valid() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    promtool = require_tool("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.broker
def test_live_metrics_pass_promtool_lint(exposition: str) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.broker
def test_dashboard_and_alerts_query_only_what_workers_export(exposition: str) -> None:
    exported = exported_names(exposition)
    labels = label_names()
    queries = [("dashboard", e) for e in dashboard_exprs()] + [(r["alert"], r["expr"]) for r in alert_rules()]
    for where, expr in queries:
        names = referenced_metrics(expr)
        assert names, f"{where}: {expr!r} names no metric"
        missing = names - exported
        assert not missing, f"{where}: {sorted(missing)} not exported by the worker (query {expr!r})"
        known = TARGET_LABELS.union(*(labels.get(n, set()) for n in names))
        unknown = referenced_labels(expr) - known
        assert not unknown, f"{where}: labels {sorted(unknown)} are on none of {sorted(names)}"
    for rule in alert_rules():
        names = referenced_metrics(rule["expr"])
        known = TARGET_LABELS.union(*(labels.get(n, set()) for n in names))
        for text in rule["annotations"].values():
            assert set(re.findall(r"\$labels\.(\w+)", text)) <= known, rule["alert"]


@pytest.mark.broker
def test_readme_metrics_section_lists_exactly_what_workers_export(exposition: str) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Metrics") :]
    section = section[: section.index("\n## ", 1)]
    documented = set(re.findall(r"`(streamrec_[a-z0-9_]+)", section))
    families = {
        line.split()[2]
        for line in exposition.splitlines()
        if line.startswith("# TYPE ") and not line.split()[2].endswith("_created")
    }
    assert documented - families == set(), "README lists metrics the worker does not export"
    assert families - documented == set(), "README's Metrics section misses exported metrics"


# -- a real Prometheus server -------------------------------------------------------------------


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _value(base: str, query: str) -> float | None:
    result = _get(base, "/api/v1/query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server with the repository's configuration, scraping the session worker every second."""
    binary = require_tool("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS / f) for f in config["rule_files"]]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "streamrec")
    job["static_configs"] = [
        {"targets": [f"{worker.host}:{worker.metrics_port}"], "labels": {"service": "-".join(worker.roles)}}
    ]
    config["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:
                    with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                        return response.status == 200
                except OSError:
                    return False

            wait_for(ready, 15, 0.1, what="Prometheus to start")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.broker
def test_a_real_prometheus_scrapes_the_worker_and_evaluates_the_rules(
    prometheus: str,
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    vectors: Collector,
    recommendations: Collector,
    ns: str,
) -> None:
    item, other, user = f"{ns}-prom-item", f"{ns}-prom-other", f"{ns}-prom-user"
    for item_id, title in ((item, "Metronome, clip-on, with tuner"), (other, "Metronome, wooden, pyramid")):
        producer.send(topics.items, {"item_id": item_id, "title": title, "ts": time.time()}, key=item_id)
    producer.flush()
    wait_for(
        lambda: (
            {item, other}
            <= {m["id"] for _, m in vectors.messages if m["kind"] == "item" and m["name"] == "text"}
        ),
        60,
        what="the items' vectors",
    )
    producer.send(
        topics.clicks, {"user_id": user, "item_id": item, "event": "click", "ts": time.time()}, key=user
    )
    producer.flush()
    wait_for(
        lambda: any(m["user_id"] == user for _, m in recommendations.messages), 60, what="a recommendation"
    )

    # Discovery hands targets to the scraper after about 5 s, whatever the scrape interval.
    wait_for(lambda: _value(prometheus, 'up{job="streamrec"}') == 1, 20, what="the worker's target to be up")
    clicks = f'topic="{topics.clicks}"'
    wait_for(
        lambda: (
            (_value(prometheus, f"sum(streamrec_event_to_recommendation_seconds_count{{{clicks}}})") or 0) > 0
        ),
        10,
        what="the latency histogram in Prometheus",
    )
    ready = _get(prometheus, "/api/v1/query", query="streamrec_worker_ready")["result"]
    assert {r["metric"]["role"] for r in ready} == set(ROLES)
    assert all(r["value"][1] == "1" for r in ready), ready
    assert (_value(prometheus, f"sum(streamrec_events_consumed_total{{{clicks}}})") or 0) > 0
    assert (_value(prometheus, "sum(streamrec_recommendations_total)") or 0) > 0
    assert (_value(prometheus, "sum(streamrec_encoder_texts_total)") or 0) >= 2
    assert (_value(prometheus, "sum(streamrec_event_to_recommendation_seconds_sum)") or 0) > 0

    # Every rule loaded from alerts.yml and evaluated without error against real series.
    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in _get(prometheus, "/api/v1/rules")["groups"] for r in g["rules"]]
        return rules if rules and not any(r["lastEvaluation"].startswith("0001") for r in rules) else None

    rules = wait_for(evaluated, 10, what="the alert rules to be evaluated")
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    assert all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules
    firing = {a["labels"]["alertname"] for a in _get(prometheus, "/api/v1/alerts")["alerts"]}
    assert "StreamrecWorkerDown" not in firing and "StreamrecWorkerNotReady" not in firing

    # Every dashboard query runs; those the pipeline has fed by now return series.
    for expr in dashboard_exprs():
        _get(prometheus, "/api/v1/query", query=expr.replace("$__rate_interval", "1m"))
    for expr in dashboard_exprs():
        if any(m in expr for m in ("events_consumed_total", "worker_ready", 'up{job="streamrec"}')):
            query = expr.replace("$__rate_interval", "1m")
            # A rate needs two scrapes of the series.
            wait_for(lambda q=query: _get(prometheus, "/api/v1/query", query=q)["result"], 10, what=query)
