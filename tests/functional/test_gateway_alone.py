"""`api-gateway`, the gateway as a program of its own, in front of the services of a running
ditherd: it reaches them through UPLOAD_SERVICE_HOST/PORT, DITHER_SERVICE_HOST/PORT and
NOTIFY_SERVICE_HOST/PORT, and says so in /health when they are gone. It shares ditherd's data
directory, so it shares the keys (auth.db) and the generated secrets (service token, link key,
pepper)."""

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
        auth = server.auth_headers()
        record = server.upload_ok(imagegen.photo_png(64, 48), "alone.png")
        via = requests.get(f"{base}/api/images/{record['uuid']}", headers=auth, timeout=5)
        assert via.status_code == 200, via.text
        assert via.json()["uuid"] == record["uuid"]
        # The service token it generated from the shared data directory is the services' one,
        # and its links open the files.
        original = requests.get(via.json()["url"].replace(server.base_url, base), timeout=5)
        assert original.status_code == 200, original.text[:300]
        assert requests.get(f"{base}/api/images/{record['uuid']}",
                            timeout=5).status_code == 401
        assert requests.get(base + "/openapi.json", timeout=5).json()["openapi"].startswith("3.")

        server.stop()
        down = requests.get(base + "/health", timeout=10)
        assert down.status_code == 503
        assert down.json()["services"]["upload"]["status"] == "unavailable"
        gone = requests.get(f"{base}/api/images/{record['uuid']}", headers=auth, timeout=10)
        assert gone.status_code == 503
        error = gone.json()["error"]
        assert error["code"] == "unavailable"
        # A 5xx says nothing internal: a generic message and a request id, no upstream address.
        assert isinstance(error.get("request_id"), str) and error["request_id"], error
        for detail in (str(server.upload_port), "127.0.0.1", "errno"):
            assert detail not in error["message"].lower(), error
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, (tmp_path / "gateway.err").read_text()
