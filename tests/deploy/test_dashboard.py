"""What deploy/ ships for operators, checked without servers (quick: for CI beside
`scripts/infra/prometheus.sh check`, which runs promtool):

- the Grafana dashboard parses, takes its Prometheus from a datasource variable, lays its panels
  out without overlaps, and every panel queries Prometheus;
- every metric the dashboard and the rules name is one the code defines or docs/METRICS.md lists,
  so that renaming a metric breaks this test instead of a graph or an alert;
- every alert has a severity, a summary, a description and a runbook section in docs/ALERTS.md,
  and deploy/prometheus/alerts_test.yml shows it firing and not firing.

    build/test-venv/bin/python -m pytest -q tests/deploy

The YAML files are read with a few lines of parsing (the test environment has no YAML library):
they keep the plain block style they are written in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dither-dashboard.json"
RULES = ROOT / "deploy" / "prometheus"
METRICS_DOC = ROOT / "docs" / "METRICS.md"
ALERTS_DOC = ROOT / "docs" / "ALERTS.md"

# Series Prometheus itself makes: per target, and for the alerts' state.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS",
                     "ALERTS_FOR_STATE"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                "group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}


# ---- names --------------------------------------------------------------------------------------

def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names and
    Grafana's $variables aside)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, label_replace args
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables ($__rate_interval, ${x})
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", expr):
        if expr[match.end():].lstrip().startswith("("):
            continue  # a function
        if match.group(0) not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


def defined_metrics() -> set[str]:
    """Every metric docs/METRICS.md lists or the code registers (src/observability's families are
    named without the `dither_` prefix they are exposed with), with a histogram's series."""
    names = set(re.findall(r"`((?:dither|process)_[a-z0-9_]+)`", METRICS_DOC.read_text()))
    for path in (ROOT / "src").rglob("*"):
        if path.suffix not in (".cc", ".h") or path.name.endswith("_test.cc"):
            continue
        text = path.read_text(errors="replace")
        names |= {"dither_" + n for n in
                  re.findall(r'\b(?:counter|gauge|histogram)\(\s*"([a-z0-9_]+)"', text)}
        names |= set(re.findall(r'"(process_[a-z_]+)"', text))
    names |= {f"{n}{suffix}" for n in names for suffix in ("_bucket", "_sum", "_count")}
    return names | PROMETHEUS_SERIES | {rule["record"] for rule in rules("recording.yml")}


# ---- the rules files ---------------------------------------------------------------------------

def rules(name: str) -> list[dict]:
    """The rules of a rules file: each `- alert:` / `- record:` item's keys, nested keys
    (labels, annotations) flattened, block scalars (>-, |) joined."""
    found: list[dict] = []
    lines = (RULES / name).read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        item = re.match(r"^(\s*)- (alert|record): (\S+)\s*$", line)
        if item:
            found.append({item.group(2): item.group(3), "_indent": len(item.group(1))})
            continue
        field = re.match(r"^(\s*)([a-z_]+):\s*(.*)$", line)
        if not field or not found or len(field.group(1)) <= found[-1]["_indent"]:
            continue
        value = field.group(3)
        if value in (">-", ">", "|", "|-"):
            block = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > len(field.group(1))):
                block.append(lines[i].strip())
                i += 1
            value = (" " if value.startswith(">") else "\n").join(block).strip()
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        found[-1][field.group(2)] = value
    return found


def alert_tests() -> dict[str, set[str]]:
    """alertname -> the kinds of cases alerts_test.yml has for it: "firing", "quiet"."""
    cases: dict[str, set[str]] = {}
    lines = (RULES / "alerts_test.yml").read_text().splitlines()
    for i, line in enumerate(lines):
        name = re.match(r"^\s*alertname: (\w+)\s*$", line)
        if not name:
            continue
        expected = lines[i + 1].strip()
        assert expected.startswith("exp_alerts:"), f"alerts_test.yml line {i + 2}: {expected}"
        quiet = expected == "exp_alerts: []"
        firing = not quiet and lines[i + 2].strip().startswith("- exp_labels:")
        assert quiet or firing, f"alerts_test.yml line {i + 2}: exp_alerts without alerts"
        cases.setdefault(name.group(1), set()).add("quiet" if quiet else "firing")
    return cases


# ---- the dashboard -----------------------------------------------------------------------------

def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def graph_panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))  # a collapsed row holds its panels
        else:
            out.append(panel)
    return out


def expressions(board: dict) -> list[str]:
    return [t["expr"] for p in graph_panels(board) for t in p["targets"]]


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced as Grafana would (All = .*)."""
    expr = re.sub(r"\$\{?__(?:rate_)?interval\}?|\$\{?__range\}?", "1m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def test_the_metric_name_parser_finds_names_and_only_names():
    assert metric_names(
        'sum by (le, route) (rate(dither_x_seconds_bucket{route!~"/a.*",job="y"}[$__interval]))'
        ' / on(job) group_left up offset 5m > 1e3 and time() - process_start_time_seconds') == {
        "dither_x_seconds_bucket", "up", "process_start_time_seconds"}
    assert metric_names('label_replace(absent(up{job=~".*a.*"}), "job", "a", "", "")') == {"up"}
    assert metric_names("job:dither_pending_dithers:max > bool 0") == {
        "job:dither_pending_dithers:max"}


def test_the_dashboard_is_a_grafana_dashboard_over_a_prometheus_datasource_variable():
    board = dashboard()
    assert board["title"] and board["uid"]
    assert board["schemaVersion"] >= 36  # Grafana 9.x and later
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = graph_panels(board)
    assert len(panels) >= 20
    ids = [p["id"] for p in board["panels"]] + \
        [p["id"] for row in board["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{panel['title']}: an empty expression"
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        # Every $variable a query uses is one of the dashboard's or Grafana's own.
        used = set(re.findall(r"\$\{?(\w+)", " ".join(t["expr"] for t in panel["targets"])))
        assert used <= set(variables) | {"__rate_interval", "__interval", "__range"}, \
            f"{panel['title']}: {used - set(variables)}"


def test_every_dashboard_query_is_promql_that_promtool_accepts(tmp_path):
    # Each expression as a recording rule: promtool parses it as Prometheus would.
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(expressions(dashboard())):
        lines += [f"      - record: dashboard:query:{i}",
                  f"        expr: {json.dumps(as_promql(expr))}"]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text("\n".join(lines) + "\n")
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_panels_fit_the_grid_without_overlapping():
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for y in range(pos["y"], pos["y"] + pos["h"]):
            for x in range(pos["x"], pos["x"] + pos["w"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_shows_every_part_of_the_platform():
    used = set().union(*(metric_names(e) for e in expressions(dashboard())))
    for name in ("dither_http_requests_total", "dither_http_request_duration_seconds_bucket",
                 "dither_http_rejections_total", "dither_http_requests_in_flight",
                 "dither_http_connections", "dither_uploads_total",
                 "dither_upload_size_bytes_bucket", "dither_upload_stage_duration_seconds_bucket",
                 "dither_dithers_total", "dither_stage_duration_seconds_bucket",
                 "dither_pending_dithers", "dither_oldest_pending_dither_age_seconds",
                 "dither_outbox_messages", "dither_outbox_oldest_age_seconds",
                 "dither_messages_published_total", "dither_message_publish_failures_total",
                 "dither_messages_consumed_total", "dither_messages_dead_lettered_total",
                 "dither_consumer_lag_messages", "dither_db_pool_connections",
                 "dither_db_pool_max_connections", "dither_db_pool_waits_total",
                 "dither_db_pool_wait_seconds_total", "dither_db_pool_timeouts_total",
                 "dither_mails_total", "dither_mail_send_duration_seconds_bucket", "dither_build_info", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_open_fds", "up"):
        assert name in used, f"no panel shows {name}"


def test_every_metric_the_dashboard_and_the_rules_name_exists():
    known = defined_metrics()
    unknown = {}
    for expr in expressions(dashboard()):
        for name in metric_names(expr) - known:
            unknown.setdefault(name, f"dashboard: {expr}")
    for file in ("alerts.yml", "recording.yml"):
        for rule in rules(file):
            for name in metric_names(rule["expr"]) - known:
                unknown.setdefault(name, f"{file} {rule.get('alert') or rule.get('record')}")
    assert not unknown, "metrics neither in docs/METRICS.md nor in the code: " + \
        "; ".join(f"{n} ({where})" for n, where in sorted(unknown.items()))


def test_every_alert_is_documented_and_tested_firing_and_not_firing():
    alerts = rules("alerts.yml")
    assert len(alerts) >= 10
    doc = ALERTS_DOC.read_text()
    tested = alert_tests()
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), "an alert name repeats"
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("severity") in ("warning", "critical"), name
        assert alert.get("summary") and alert.get("description"), name
        assert alert.get("runbook") == f"docs/ALERTS.md#{name.lower()}", name
        assert re.search(rf"^#+ {name}\s*$", doc, re.M), f"docs/ALERTS.md has no section {name}"
        assert tested.get(name) == {"firing", "quiet"}, \
            f"alerts_test.yml must show {name} firing and not firing (has {tested.get(name)})"
    assert set(tested) <= set(names), f"tests of unknown alerts: {set(tested) - set(names)}"


@pytest.mark.parametrize("file", ["alerts.yml", "recording.yml"])
def test_the_rules_parser_reads_every_rule(file):
    # The line parser above must see every rule promtool sees (one `expr` each).
    text = (RULES / file).read_text()
    parsed = rules(file)
    assert len(parsed) == len(re.findall(r"^\s*expr:", text, re.M))
    assert all(rule.get("expr") for rule in parsed)
