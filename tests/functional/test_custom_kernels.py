"""Custom error-diffusion kernels and threshold matrices (docs/CUSTOM.md): the options `kernel`
and `matrix` through the JSON body, the query string, presets and the command line; records keep
the canonical form; a kernel equal to Floyd-Steinberg's gives Floyd-Steinberg's pixels and a matrix
equal to Bayer 4x4 gives bayer_size=4's; every bad value is a 400 whose message says what is
wrong."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import harness
import imagegen
from harness import assert_error

FS_ROWS = [[0, 0, 7], [3, 5, 1]]
BAYER4 = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]
DITHER_CLI = harness.DITHERD.parents[1] / "cli" / "dither"


@pytest.fixture(scope="module")
def shared(module_start_server):
    return module_start_server(QUOTA_PENDING_DITHERS=0, QUOTA_DITHERS_PER_IMAGE=0)


@pytest.fixture(scope="module")
def target(shared):
    rec = shared.upload_ok(imagegen.photo_png(48, 36, seed=21), "target.png")
    return shared.wait_for(rec["uuid"])


def pixels_of(s, uuid: str, dither: dict) -> bytes:
    done = s.wait_dither(uuid, dither["id"])
    r = s.get(done["url_dither"])
    assert r.status_code == 200, f"GET {done['url_dither']}: {r.status_code}"
    return imagegen.open_image(r.content).convert("RGB").tobytes()


def test_the_options_table_has_kernel_and_matrix_as_json(shared):
    r = shared.get("/api/options")
    assert r.status_code == 200, r.text
    by_name = {o["name"]: o for o in r.json()["options"]}
    for name, algorithm in (("kernel", "custom-kernel"), ("matrix", "custom-matrix")):
        o = by_name[name]
        assert o["type"] == "json" and o["in"] == "query", o
        assert o["applies_when"] == {"option": "algorithm", "values": [algorithm]}, o
        assert "default" not in o, o
    algorithms = [c["value"] for c in by_name["algorithm"]["choices"]]
    assert {"custom-kernel", "custom-matrix"} <= set(algorithms)


def test_a_kernel_reads_the_same_from_body_query_and_text(shared, target):
    uuid = target["uuid"]
    ways = {
        "body, JSON value": {"json_body": {"algorithm": "custom-kernel", "kernel": FS_ROWS}},
        "body, text": {"json_body": {"algorithm": "custom-kernel",
                                     "kernel": " [[0, 0, 7],\n [3, 5, 1]] "}},
        "body, object": {"json_body": {"algorithm": "custom-kernel",
                                       "kernel": {"rows": FS_ROWS, "divisor": 16, "origin": 1}}},
        "query, object": {"params": {"algorithm": "custom-kernel",
                                     "kernel": '{"rows":[[0,0,0,7],[0,3,5,1]],"origin":2}'}},
    }
    records = {}
    for how, request in ways.items():
        d = shared.request_dither_ok(uuid, 2, **request)
        assert d["algorithm"] == "custom-kernel", (how, d)
        assert d["options"]["kernel"] == "[[0,0,7],[3,5,1]]", (how, d["options"])
        records[how] = d
    listed = {d["id"]: d for d in shared.dithers_of(uuid)}
    for how, d in records.items():
        assert listed[d["id"]]["options"]["kernel"] == "[[0,0,7],[3,5,1]]", how
    # Floyd-Steinberg restated: the same pixels as the named algorithm.
    fs = shared.request_dither_ok(uuid, 2, json_body={"algorithm": "floyd-steinberg"})
    expected = pixels_of(shared, uuid, fs)
    for how, d in records.items():
        assert pixels_of(shared, uuid, d) == expected, how


def test_the_canonical_form_names_a_divisor_that_is_not_the_sum(shared, target):
    atkinson = {"rows": [[0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 0, 0]], "divisor": 8, "origin": 1}
    d = shared.request_dither_ok(target["uuid"], 2, json_body={
        "algorithm": "custom-kernel", "kernel": atkinson, "palette": "ega", "serpentine": True})
    canonical = d["options"]["kernel"]
    assert canonical == '{"rows":[[0,0,0,1,1],[0,1,1,1,0],[0,0,1,0,0]],"divisor":8}', canonical
    mine = pixels_of(shared, target["uuid"], d)
    named = shared.request_dither_ok(target["uuid"], 2, json_body={
        "algorithm": "atkinson", "palette": "ega", "serpentine": True})
    assert mine == pixels_of(shared, target["uuid"], named)
    # The canonical text reads back as itself (a stored record is re-read this way).
    again = shared.request_dither_ok(target["uuid"], 2, params={
        "algorithm": "custom-kernel", "kernel": canonical})
    assert again["options"]["kernel"] == canonical


def test_a_matrix_equal_to_bayer_4_gives_its_pixels(shared, target):
    uuid = target["uuid"]
    by_body = shared.request_dither_ok(uuid, 4, json_body={"algorithm": "custom-matrix",
                                                           "matrix": BAYER4})
    by_query = shared.request_dither_ok(uuid, 4, params={"algorithm": "custom-matrix",
                                                         "matrix": json.dumps(BAYER4)})
    text = "[[0,8,2,10],[12,4,14,6],[3,11,1,9],[15,7,13,5]]"
    assert by_body["options"]["matrix"] == by_query["options"]["matrix"] == text
    assert "kernel" not in by_body["options"] and "bayer_size" not in by_body["options"]
    bayer = shared.request_dither_ok(uuid, 4, json_body={"algorithm": "bayer", "bayer_size": 4})
    expected = pixels_of(shared, uuid, bayer)
    assert pixels_of(shared, uuid, by_body) == expected
    assert pixels_of(shared, uuid, by_query) == expected
    # Not square, ranks with gaps: accepted, dithered with the palette's colours only.
    odd = shared.request_dither_ok(uuid, 4, json_body={
        "algorithm": "custom-matrix", "matrix": [[0, 40, 10], [30, 20, 50]], "palette": "ega"})
    assert odd["options"]["matrix"] == "[[0,40,10],[30,20,50]]"
    done = shared.wait_dither(uuid, odd["id"])
    imagegen.assert_palette_image(shared.get(done["url_dither"]).content, "PNG", imagegen.EGA16)


BAD = [
    ({"algorithm": "custom-kernel"}, "algorithm custom-kernel needs the option kernel"),
    ({"algorithm": "custom-matrix"}, "algorithm custom-matrix needs the option matrix"),
    ({"algorithm": "custom-kernel", "kernel": [[0, 0, 7], [3, 5, 1, 0]]},
     "option 'kernel': row 2 has 4 entries, row 1 has 3"),
    ({"algorithm": "custom-kernel", "kernel": {"rows": [[0, 0, 7], [3, 5, 2]], "divisor": 16}},
     "option 'kernel': weights must sum to at most the divisor (17 > 16)"),
    ({"algorithm": "custom-kernel", "kernel": [[0, 1, 7], [3, 5, 1]]},
     "option 'kernel': the first row must be 0 up to the current pixel (origin 1)"),
    ({"algorithm": "custom-kernel", "kernel": [[0, 0, 0, 0, 1, 1, 1]]},
     "option 'kernel': reaches 3 columns right of the current pixel on its own row; at most 2"),
    ({"algorithm": "custom-kernel", "kernel": [[0, 0, 1], [0] * 3, [0] * 3, [0] * 3, [1, 0, 0]]},
     "option 'kernel': reaches 4 rows below the current pixel; at most 3"),
    ({"algorithm": "custom-kernel", "kernel": [[0, 0, 0.5]]},
     "option 'kernel': row 1, entry 3 is not a whole number from 0 to 65536: 0.5"),
    ({"algorithm": "custom-kernel", "kernel": "[[0,0,7],[3,5,1]"},
     "option 'kernel': not valid JSON"),
    ({"algorithm": "custom-kernel", "kernel": 7},
     "option 'kernel': expected a JSON array or object, or its text in a JSON body, got 7"),
    ({"algorithm": "custom-kernel", "kernel": "[[0,0,1]]" + " " * 4096},
     "option 'kernel': the text is 4105 bytes; at most 4096"),
    ({"algorithm": "custom-matrix", "matrix": {"rows": [[0]]}},
     "option 'matrix': not a JSON array of rows"),
    ({"algorithm": "custom-matrix", "matrix": [[0, 4096]]},
     "option 'matrix': row 1, entry 2 is not a whole number from 0 to 4095: 4096"),
    ({"algorithm": "custom-matrix", "matrix": [[0]] * 65},
     "option 'matrix': 65 rows; at most 64"),
    # Checked whatever the algorithm, as bayer_size is, though only custom-kernel uses it.
    ({"algorithm": "atkinson", "kernel": [[1]]},
     "option 'kernel': the first row must be 0 up to the current pixel (origin 0)"),
]


@pytest.mark.parametrize("body,message", BAD, ids=[m[:40] for _, m in BAD])
def test_a_bad_value_is_a_400_that_says_what_is_wrong(shared, target, body, message):
    r = shared.request_dither(target["uuid"], 2, json_body=body)
    err = assert_error(r, 400, {"invalid_argument"}, f"dither {json.dumps(body)[:80]}")
    assert message in err["message"], err
    if not isinstance(body.get("kernel", body.get("matrix", "")), (int, float)):
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        err = assert_error(shared.request_dither(target["uuid"], 2, params=query), 400,
                           {"invalid_argument"}, f"query {str(query)[:80]}")
        assert message in err["message"], err


def test_a_kernel_with_another_algorithm_is_not_kept(shared, target):
    d = shared.request_dither_ok(target["uuid"], 2, json_body={"algorithm": "atkinson",
                                                               "kernel": FS_ROWS,
                                                               "matrix": BAYER4})
    assert "kernel" not in d["options"] and "matrix" not in d["options"], d["options"]


def test_a_preset_keeps_its_kernel(shared, target):
    shiau_fan_2 = {"rows": [[0, 0, 0, 0, 8], [1, 1, 2, 4, 0]], "origin": 3}
    r = shared.post("/api/presets", json={"name": "my-kernel", "options": {
        "algorithm": "custom-kernel", "kernel": shiau_fan_2}})
    assert r.status_code in (200, 201), r.text
    assert r.json()["options"]["kernel"] == "[[0,0,0,0,8,0,0],[1,1,2,4,0,0,0]]", r.json()
    d = shared.request_dither_ok(target["uuid"], 2, params={"preset": "my-kernel"})
    assert d["options"]["kernel"] == "[[0,0,0,0,8,0,0],[1,1,2,4,0,0,0]]"
    named = shared.request_dither_ok(target["uuid"], 2, params={"algorithm": "shiau-fan-2"})
    assert pixels_of(shared, target["uuid"], d) == pixels_of(shared, target["uuid"], named)
    bad = shared.post("/api/presets", json={"name": "bad-kernel", "options": {
        "algorithm": "custom-kernel", "kernel": {"rows": [[0, 0, 9], [9, 0, 0]], "divisor": 10}}})
    err = assert_error(bad, 400, {"invalid_argument"}, "a preset with a bad kernel")
    assert "option 'kernel'" in err["message"], err


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if not DITHER_CLI.is_file() or not os.access(DITHER_CLI, os.X_OK):
        pytest.fail(f"dither not found at {DITHER_CLI}: build it (ninja -C build/release dither)")
    return subprocess.run([str(DITHER_CLI), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=harness.scaled(60))


def test_the_command_line_reads_kernels_and_matrices(tmp_path):
    (tmp_path / "in.png").write_bytes(imagegen.photo_png(40, 30, seed=4))
    ok = [
        (["--algorithm", "floyd-steinberg"], "fs.png"),
        (["--kernel", "[[0,0,7],[3,5,1]]", "--algorithm", "custom-kernel"], "kernel.png"),
        (["--algorithm", "bayer", "--bayer-size", "4"], "bayer.png"),
        (["--algorithm", "custom-matrix", "--matrix", json.dumps(BAYER4)], "matrix.png"),
    ]
    for args, out in ok:
        r = run_cli("in.png", out, *args, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr)

    def pixels(name: str) -> bytes:
        return imagegen.open_image((tmp_path / name).read_bytes()).convert("RGB").tobytes()

    assert pixels("kernel.png") == pixels("fs.png")
    assert pixels("matrix.png") == pixels("bayer.png")
    for args, message in (
            (["--algorithm", "custom-kernel"], "algorithm custom-kernel needs the option kernel"),
            (["--algorithm", "custom-kernel",
              "--kernel", '{"rows":[[0,0,7],[3,5,2]],"divisor":16}'],
             "option 'kernel': weights must sum to at most the divisor (17 > 16)"),
            (["--algorithm", "custom-matrix", "--matrix", "[[0,1],[2]]"],
             "option 'matrix': row 2 has 1 entry, row 1 has 2")):
        r = run_cli("in.png", "bad.png", *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert message in r.stderr, r.stderr
        assert not (tmp_path / "bad.png").exists()
