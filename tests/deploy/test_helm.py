"""The Helm chart (deploy/helm/dither, docs/KUBERNETES.md), rendered by a real helm.

No cluster: `helm lint` and `helm template` render the chart locally with its default values, the
production-like values (ci/production-values.yaml) and variations, and the manifests are read
back as YAML. Checked: each program's container carries every variable that program needs in a
cluster, the same shared values everywhere, secrets only through Secrets, probes on /health/live
and /health/ready, peers reached by Service DNS names, the metrics port and the ServiceMonitor,
the workers' HorizontalPodAutoscaler, and the pods' security settings.

Run by `scripts/helm.sh test` (which builds helm once); alone:
    HELM_BIN=build/infra/cache/helm-v4.3.2/helm python -m pytest tests/deploy/test_helm.py
"""

import base64
import functools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "dither"
PRODUCTION = CHART / "ci" / "production-values.yaml"
RELEASE = "dither"
NAMESPACE = "images"

# What each program needs in a cluster, read from the code (the defaults suit one machine, not a
# cluster of pods):
# - src/app/app.cc start(): every process signs or checks file links with
#   PUBLIC_BASE_URL + "/files/", and the default (http://DITHER_HOST:DITHER_PORT) is not how
#   clients reach a pod.
# - src/app/adapters.cc load_secrets(): an unset secret is generated per process into
#   DITHER_DATA_DIR/secrets; README "Owners, keys and links": processes on several hosts must
#   share SERVICE_TOKEN, LINK_SIGNING_KEYS and API_KEY_PEPPER.
# - DITHER_DATA_DIR: the default `data` is relative to the working directory, on the read-only root
#   file system; it must name the writable volume.
# - src/app/adapters.cc open_*(): without POSTGRES_HOST each pod keeps SQLite files of its own (the
#   gateway its API keys and sessions, app.cc gateway_access(); each service its schema).
COMMON = {
    "PUBLIC_BASE_URL",
    "SERVICE_TOKEN",
    "LINK_SIGNING_KEYS",
    "API_KEY_PEPPER",
    "DITHER_DATA_DIR",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
}
# src/app/config.cc load_distributed(): S3_ACCESS_KEY and S3_SECRET_KEY are required with
# S3_ENDPOINT; without S3_ENDPOINT files would stay in the pod. app.cc gateway_storage(): the
# gateway reads them from the bucket; the upload and dithering services write them.
S3 = {"S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY"}
# src/app/app.cc start(): a service without the other two in its process refuses to start without
# KAFKA_SERVER; every producer and consumer must name the same topics.
KAFKA = {"KAFKA_SERVER", "KAFKA_IMAGE_TOPIC", "KAFKA_DITHER_TOPIC"}
REQUIRED = {
    # app.cc connect_gateway(): the services' addresses (default 127.0.0.1, this pod); app.cc
    # start_gateway(): DITHER_HOST (default 127.0.0.1, unreachable from the kubelet and Services).
    "api-gateway": COMMON
    | S3
    | {"DITHER_HOST", "DITHER_PORT", "UPLOAD_SERVICE_HOST", "DITHER_SERVICE_HOST", "NOTIFY_SERVICE_HOST"},
    # app.cc serve_services(): SERVICE_BIND_HOST (default 127.0.0.1) and the service's port.
    "upload-service": COMMON | S3 | KAFKA | {"SERVICE_BIND_HOST", "UPLOAD_SERVICE_PORT"},
    "dithering-service": COMMON | S3 | KAFKA | {"SERVICE_BIND_HOST", "DITHER_SERVICE_PORT"},
    # adapters.cc open_mail_sender(): without SMTP_HOST mails become files in the pod's volume.
    "notification-service": COMMON
    | KAFKA
    | {"SERVICE_BIND_HOST", "NOTIFY_SERVICE_PORT", "SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "MAIL_FROM"},
}
# The variable holding each program's HTTP port, and its listening address.
PORT_VARIABLE = {
    "api-gateway": ("DITHER_PORT", "DITHER_HOST"),
    "upload-service": ("UPLOAD_SERVICE_PORT", "SERVICE_BIND_HOST"),
    "dithering-service": ("DITHER_SERVICE_PORT", "SERVICE_BIND_HOST"),
    "notification-service": ("NOTIFY_SERVICE_PORT", "SERVICE_BIND_HOST"),
}
# Never a plain value in a Deployment (README: "never logged"; DISTRIBUTED.md: KAFKA_PROPERTIES
# may hold sasl.password).
SECRET_VARIABLES = {
    "SERVICE_TOKEN",
    "LINK_SIGNING_KEYS",
    "API_KEY_PEPPER",
    "POSTGRES_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "SMTP_PASSWORD",
    "KAFKA_PROPERTIES",
}
QUEUE_AGE_METRIC = "dither_oldest_pending_dither_age_seconds"
PRODUCTION_ARGS = ("-f", str(PRODUCTION))


def helm_binary():
    path = Path(os.environ.get("HELM_BIN") or ROOT / "build/infra/cache/helm-v4.3.2/helm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no helm at {path}: run scripts/helm.sh install (or set HELM_BIN)")
    return str(path)


def run_helm(*args):
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


@functools.lru_cache(maxsize=None)
def render(*args):
    """The manifests `helm template` renders with these extra arguments, as a list of objects."""
    done = run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert done.returncode == 0, f"helm template {' '.join(args)} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_fails(*args):
    done = run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert done.returncode != 0, f"helm template {' '.join(args)} should have been refused"
    return done.stderr


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def containers(docs):
    """{program: (deployment, container)} for every Deployment's containers."""
    out = {}
    for deployment in of_kind(docs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            program = Path(container["command"][0]).name
            assert program not in out, f"{program} runs in two Deployments"
            out[program] = (deployment, container)
    return out


def env_of(container):
    names = [e["name"] for e in container.get("env", [])]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"{container['name']}: variables set twice: {sorted(duplicates)}"
    return {e["name"]: e for e in container.get("env", [])}


def plain(container, name):
    entry = env_of(container)[name]
    assert "value" in entry, f"{container['name']}: {name} should be a plain value"
    return entry["value"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


VALUE_SETS = {
    "default": (),
    "production": PRODUCTION_ARGS,
}


@pytest.mark.parametrize("values", ["default", "production"])
def test_helm_lint_strict(values):
    done = run_helm("lint", "--strict", str(CHART), *VALUE_SETS[values])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_program_has_every_variable_it_needs(values):
    found = containers(render(*VALUE_SETS[values]))
    assert set(found) == set(REQUIRED), "one Deployment per program"
    for program, required in REQUIRED.items():
        env = env_of(found[program][1])
        missing = sorted(required - set(env))
        assert not missing, f"{program} lacks {missing}"
        for name in required:
            entry = env[name]
            assert entry.get("value") or entry.get("valueFrom"), f"{program}: {name} is empty"


@pytest.mark.parametrize("values", ["default", "production"])
def test_shared_variables_agree_between_programs(values):
    """What the programs share must be the same in each: one database, bucket, set of topics, set
    of secrets and public address (every program signs or checks the others' links)."""
    must_agree = COMMON | S3 | KAFKA | {"KAFKA_GROUP_PREFIX", "KAFKA_PROPERTIES", "POSTGRES_POOL_SIZE"}
    seen = {}
    for program, (_, container) in containers(render(*VALUE_SETS[values])).items():
        for name, entry in env_of(container).items():
            if name not in must_agree:
                continue
            body = {k: v for k, v in entry.items() if k != "name"}
            first = seen.setdefault(name, (program, body))
            assert body == first[1], f"{name}: {program} has {body}, {first[0]} {first[1]}"
    assert must_agree - {"KAFKA_GROUP_PREFIX", "KAFKA_PROPERTIES"} <= set(seen)


@pytest.mark.parametrize("values", ["default", "production"])
def test_programs_listen_on_their_named_port_on_every_address(values):
    for program, (_, container) in containers(render(*VALUE_SETS[values])).items():
        port_var, host_var = PORT_VARIABLE[program]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == int(plain(container, port_var)), program
        assert plain(container, host_var) == "0.0.0.0", f"{program} must listen on the pod's address"


@pytest.mark.parametrize("values", ["default", "production"])
def test_probes_are_live_and_ready_on_the_http_port(values):
    for program, (_, container) in containers(render(*VALUE_SETS[values])).items():
        for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                            ("startupProbe", "/health/live")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{program} {probe}"
            assert get["port"] == "http", f"{program} {probe}"
        # The startup probe outlasts STARTUP_WAIT_SECONDS (the wait for the servers at start-up).
        startup = container["startupProbe"]
        wait = int(plain(container, "STARTUP_WAIT_SECONDS"))
        assert startup["periodSeconds"] * startup["failureThreshold"] > wait, program


def test_peers_are_reached_by_their_service_names():
    docs = render()
    found = containers(docs)
    gateway = found["api-gateway"][1]
    for variable, program in (("UPLOAD_SERVICE_HOST", "upload-service"),
                              ("DITHER_SERVICE_HOST", "dithering-service"),
                              ("NOTIFY_SERVICE_HOST", "notification-service")):
        host, port = plain(gateway, variable).rsplit(":", 1)
        assert "." not in host and host != "127.0.0.1", f"{variable} should name a Service: {host}"
        service = named(docs, "Service", host)
        ports = {p["port"]: p for p in service["spec"]["ports"]}
        assert int(port) in ports, f"{variable}: Service {host} has no port {port}"
        assert ports[int(port)]["targetPort"] == "http"
        # The Service selects the pods of that program's Deployment, and of no other.
        selected = [p for p, (d, _) in found.items()
                    if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert selected == [program], f"Service {host} selects {selected}"
        target = found[program][1]
        assert int(port) == int(plain(target, PORT_VARIABLE[program][0]))


def test_every_deployment_has_its_own_service_and_the_gateway_answers_its_names():
    docs = render()
    found = containers(docs)
    for program, (deployment, _) in found.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        services = [s for s in of_kind(docs, "Service")
                    if s["spec"].get("clusterIP") != "None" and selects(s["spec"]["selector"], labels)]
        assert len(services) == 1, f"{program}: {len(services)} Services"
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    gateway = found["api-gateway"][1]
    allowed = plain(gateway, "ALLOWED_HOSTS").split(",")
    assert f"dither-gateway.{NAMESPACE}.svc.cluster.local" in allowed
    assert "dither-gateway" in allowed
    gateway_service = named(docs, "Service", "dither-gateway")
    assert [p["name"] for p in gateway_service["spec"]["ports"]] == ["http"], "no metrics on the public Service"


def test_public_url_and_hosts_follow_the_values():
    found = containers(render(*PRODUCTION_ARGS))
    for _, container in found.values():
        assert plain(container, "PUBLIC_BASE_URL") == "https://dither.example.com"
    allowed = plain(found["api-gateway"][1], "ALLOWED_HOSTS").split(",")
    assert {"dither.example.com", "dither.example.org"} <= set(allowed)
    ingress = of_kind(render(*PRODUCTION_ARGS), "Ingress")[0]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "dither-gateway", "port": {"name": "http"}}


# Distinctive credentials given as values: they must reach the programs only through Secrets.
MARKED = {
    "secrets.serviceToken": "service-token-marker-0123456789abcdef",
    "secrets.linkSigningKeys": "link-key-marker-0123456789abcdefghij",
    "secrets.apiKeyPepper": "pepper-marker-0123456789abcdefghijklm",
    "postgresql.password": "pg-password-marker",
    "s3.accessKey": "s3-access-marker",
    "s3.secretKey": "s3-secret-marker",
    "smtp.password": "smtp-password-marker",
    "kafka.properties": "sasl.password=kafka-marker",
}
MARKED_ARGS = tuple(a for k, v in MARKED.items() for a in ("--set-string", f"{k}={v}")) + (
    "--set", "smtp.user=mailer")


@pytest.mark.parametrize("values", ["default", "production", "marked"])
def test_secrets_come_only_from_secrets(values):
    args = MARKED_ARGS if values == "marked" else VALUE_SETS[values]
    docs = render(*args)
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    for program, (_, container) in containers(docs).items():
        for name, entry in env_of(container).items():
            if name not in SECRET_VARIABLES:
                continue
            assert "value" not in entry, f"{program}: {name} is a plain value"
            ref = entry["valueFrom"]["secretKeyRef"]
            if ref["name"] in secrets:  # made by the chart: the key must be there
                assert ref["key"] in secrets[ref["name"]]["data"], f"{program}: {name} -> {ref}"
            else:  # an existing Secret: only with the production values, which name them all
                assert values == "production", f"{program}: {name} names a Secret not rendered: {ref}"
    if values == "production":
        assert not secrets, "with existing Secrets everywhere, the chart makes none"


def test_marked_credentials_appear_nowhere_but_in_secrets():
    docs = render(*MARKED_ARGS)
    stored = set()
    for doc in docs:
        text = yaml.safe_dump(doc)
        if doc["kind"] == "Secret":
            stored |= {base64.b64decode(v).decode() for v in doc["data"].values()}
            continue
        for value in MARKED.values():
            for form in (value, base64.b64encode(value.encode()).decode()):
                assert form not in text, f"{doc['kind']} {doc['metadata']['name']} shows {value}"
    assert set(MARKED.values()) <= stored


def test_shared_secrets_are_generated_long_and_kept():
    docs = render()
    secret = named(docs, "Secret", "dither-secrets")
    assert set(secret["data"]) == {"SERVICE_TOKEN", "LINK_SIGNING_KEYS", "API_KEY_PEPPER"}
    values = [base64.b64decode(v).decode() for v in secret["data"].values()]
    assert all(len(v) >= 32 for v in values) and len(set(values)) == 3
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # existingSecret: no Secret of the chart's, every program reads the named one.
    docs = render("--set", "secrets.existingSecret=mine")
    assert not [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == "dither-secrets"]
    for _, container in containers(docs).values():
        assert env_of(container)["SERVICE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_values_schema_refuses_secrets_and_chart_variables_as_plain_values():
    for bad in ("config.SERVICE_TOKEN=x", "config.POSTGRES_PASSWORD=x", "gateway.env.DITHER_HOST=x",
                "dithering.env.S3_SECRET_KEY=x", "config.PUBLIC_BASE_URL=http://x",
                "secrets.apiKeyPepper=too-short"):
        assert "schema" in render_fails("--set-string", bad).lower(), bad
    for bad in ("gateway.extraEnv[0].name=SMTP_PASSWORD,gateway.extraEnv[0].valueFrom.secretKeyRef.name=s",
                "upload.extraEnv[0].name=OTHER_SECRET,upload.extraEnv[0].value=x"):
        assert "schema" in render_fails("--set", bad).lower(), bad
    render_fails("--set", "dithering.autoscaling.cpu.enabled=false")  # no metric to scale on
    render_fails("--set", "ingress.enabled=true")  # an Ingress needs its hosts
    # Any other variable passes through to every program, or to one; a secret one from a Secret.
    found = containers(render(
        "--set-string", "config.AUTO_DITHER_PRESET=gameboy", "--set-string", "upload.env.QUOTA_IMAGES=5",
        "--set", "dithering.extraEnv[0].name=X_SECRET,dithering.extraEnv[0].valueFrom.secretKeyRef.name=s,"
                 "dithering.extraEnv[0].valueFrom.secretKeyRef.key=k"))
    for program, (_, container) in found.items():
        assert plain(container, "AUTO_DITHER_PRESET") == "gameboy"
        assert ("QUOTA_IMAGES" in env_of(container)) == (program == "upload-service")
    assert env_of(found["dithering-service"][1])["X_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "k"


@pytest.mark.parametrize("values", ["default", "production"])
def test_metrics_port_service_and_monitor(values):
    docs = render(*VALUE_SETS[values])
    metrics_service = named(docs, "Service", "dither-metrics")
    assert metrics_service["spec"]["clusterIP"] == "None"
    for program, (deployment, container) in containers(docs).items():
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert "metrics" in ports and ports["metrics"] != ports["http"], program
        host, port = plain(container, "METRICS_ADDRESS").rsplit(":", 1)
        assert (host, int(port)) == ("0.0.0.0", ports["metrics"]), program
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(metrics_service["spec"]["selector"], labels), f"metrics Service misses {program}"
    assert metrics_service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitors = of_kind(docs, "ServiceMonitor")
    if values == "default":
        assert not monitors, "the ServiceMonitor is off by default (it needs the operator's CRD)"
        docs = render("--set", "metrics.serviceMonitor.enabled=true")
        monitors = of_kind(docs, "ServiceMonitor")
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], metrics_service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    # Each target's job is its program's name, as deploy/prometheus/prometheus.yml names the jobs
    # that the alerting rules and the dashboard select.
    [relabel] = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    [source] = relabel["sourceLabels"]
    label = source.removeprefix("__meta_kubernetes_pod_label_")
    for program, (deployment, _) in containers(docs).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert {k.replace("/", "_").replace(".", "_").replace("-", "_"): v
                for k, v in labels.items()}.get(label) == program, program


def test_metrics_off_means_no_listener_and_no_monitor():
    docs = render("--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true")
    assert not of_kind(docs, "ServiceMonitor")
    for program, (_, container) in containers(docs).items():
        assert "METRICS_ADDRESS" not in env_of(container), program
        assert [p["name"] for p in container["ports"]] == ["http"], program


def hpa_of(docs):
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert len(hpas) == 1, "one HPA: the dithering workers'"
    return hpas[0]


def test_hpa_scales_the_workers_on_cpu_by_default():
    docs = render()
    hpa = hpa_of(docs)
    assert hpa["apiVersion"] == "autoscaling/v2"
    deployment, _ = containers(docs)["dithering-service"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert "replicas" not in deployment["spec"], "the HPA owns the workers' replica count"
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # CPU utilisation is relative to the request: the workers must have one.
    _, container = containers(docs)["dithering-service"]
    assert container["resources"]["requests"]["cpu"]


@pytest.mark.parametrize("kind", ["External", "Pods"])
def test_hpa_on_queue_age(kind):
    docs = render("--set", "dithering.autoscaling.queueAge.enabled=true",
                  "--set", f"dithering.autoscaling.queueAge.type={kind}",
                  "--set", "dithering.autoscaling.cpu.enabled=false")
    metrics = hpa_of(docs)["spec"]["metrics"]
    assert [m["type"] for m in metrics] == [kind]
    spec = metrics[0][kind.lower()]
    assert spec["metric"]["name"] == QUEUE_AGE_METRIC
    # One age for the whole queue: compared as is (External) or averaged over pods that all
    # report the same figure (Pods); never divided by the replica count.
    assert spec["target"] == ({"type": "Value", "value": "30"} if kind == "External"
                              else {"type": "AverageValue", "averageValue": "30"})


def test_production_scales_on_cpu_and_queue_age_and_off_means_fixed_replicas():
    metrics = hpa_of(render(*PRODUCTION_ARGS))["spec"]["metrics"]
    assert sorted(m["type"] for m in metrics) == ["External", "Resource"]
    docs = render("--set", "dithering.autoscaling.enabled=false", "--set", "dithering.replicas=3")
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    assert containers(docs)["dithering-service"][0]["spec"]["replicas"] == 3


def test_workers_have_a_disruption_budget():
    docs = render()
    deployment, _ = containers(docs)["dithering-service"]
    budgets = [b for b in of_kind(docs, "PodDisruptionBudget")
               if selects(b["spec"]["selector"]["matchLabels"],
                          deployment["spec"]["template"]["metadata"]["labels"])]
    assert len(budgets) == 1 and budgets[0]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("values", ["default", "production"])
def test_pods_run_unprivileged_with_limits(values):
    docs = render(*VALUE_SETS[values])
    for program, (deployment, container) in containers(docs).items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, program
        assert pod["securityContext"]["runAsUser"] != 0, program
        assert pod["automountServiceAccountToken"] is False, program
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, program
        assert security["allowPrivilegeEscalation"] is False, program
        assert security["capabilities"]["drop"] == ["ALL"], program
        assert not security.get("privileged"), program
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{program} {kind}"
        assert container["command"] == [f"/usr/local/bin/{program}"]
        # The writable places are volumes of the pod's own: the data directory and /tmp.
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for path in (plain(container, "DITHER_DATA_DIR"), "/tmp"):
            assert path in mounts, f"{program}: nothing writable at {path}"
            assert "emptyDir" in volumes[mounts[path]], f"{program}: {path}"


def test_image_follows_the_values():
    for _, container in containers(render()).values():
        assert container["image"] == "dither:0.1.0"
    for _, container in containers(render(*PRODUCTION_ARGS)).values():
        assert container["image"] == "images.example.com/dither:0.1.0"


def test_network_policies_admit_only_the_gateway_to_the_services():
    docs = render(*PRODUCTION_ARGS)
    found = containers(docs)
    policies = of_kind(docs, "NetworkPolicy")
    assert len(policies) == 4
    gateway_labels = found["api-gateway"][0]["spec"]["template"]["metadata"]["labels"]
    for program in ("upload-service", "dithering-service", "notification-service"):
        labels = found[program][0]["spec"]["template"]["metadata"]["labels"]
        [policy] = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], labels)]
        [http_rule] = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "http"]
        [peer] = http_rule["from"]
        assert selects(peer["podSelector"]["matchLabels"], gateway_labels)
        assert not selects(peer["podSelector"]["matchLabels"], labels)
