"""`api-gateway`, the gateway as a program of its own, in front of the services of a running
ditherd: it reaches them through UPLOAD_SERVICE_HOST/PORT and DITHER_SERVICE_HOST/PORT, and says
so in /health when they are gone."""

from __future__ import annotations

import os
import subprocess

import requests

import harness
import imagegen

GATEWAY = harness.DITHERD.parent / "api-gateway"


def test_gateway_alone_in_front_of_running_services(server, tmp_path):
    port = harness.free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DITHER_", "UPLOAD_"))}
    env.update({
        "DITHER_PORT": str(port),
        "DITHER_DATA_DIR": str(server.data_dir),
        "UPLOAD_SERVICE_PORT": str(server.upload_port),
        "DITHER_SERVICE_PORT": str(server.dither_port),
        "NOTIFY_SERVICE_PORT": str(server.notify_port),
    })
    with open(tmp_path / "gateway.err", "wb") as err:
        proc = subprocess.Popen([str(GATEWAY)], env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return requests.get(base + "/health", timeout=2).ok
            except requests.ConnectionError:
                return False

        harness.wait_until(healthy, 20, "api-gateway did not become healthy")
        record = server.upload_ok(imagegen.photo_png(64, 48), "alone.png")
        via = requests.get(f"{base}/api/images/{record['uuid']}", timeout=5)
        assert via.status_code == 200
        assert via.json()["uuid"] == record["uuid"]
        assert requests.get(base + "/openapi.json", timeout=5).json()["openapi"].startswith("3.")

        server.stop()
        down = requests.get(base + "/health", timeout=10)
        assert down.status_code == 503
        assert down.json()["services"]["upload"]["status"] == "unavailable"
        gone = requests.get(f"{base}/api/images/{record['uuid']}", timeout=10)
        assert gone.status_code == 503
        assert gone.json()["error"]["code"] == "unavailable"
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, (tmp_path / "gateway.err").read_text()
