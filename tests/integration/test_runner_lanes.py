"""The test lanes are declared where the tests are: tests/runner.py finds
@timing / @exclusive on integration tests (without importing them) and the
'timing' / 'exclusive' suites of the C tests."""
import importlib.util
import json
import os
import subprocess

import valet

HERE = os.path.dirname(os.path.abspath(__file__))


def runner():
    spec = importlib.util.spec_from_file_location("valet_runner", os.path.join(HERE, "..", "runner.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(text):
    path = os.path.join(valet.tmpdir(), "test_sample.py")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_decorators_put_tests_in_their_lanes():
    r = runner()
    path = write("import lanes\nfrom lanes import exclusive, timing\n\n"
                 "@timing\ndef test_a():\n    pass\n\n"
                 "@lanes.exclusive\ndef test_b():\n    pass\n\n"
                 "def test_c():\n    pass\n")
    assert r.lanes_of(path) == {"test_a": "timing", "test_b": "exclusive"}


def test_a_misplaced_or_double_lane_is_an_error():
    r = runner()
    for text in ("from lanes import timing\n\n@timing\ndef helper():\n    pass\n",
                 "from lanes import exclusive, timing\n\n@timing\n@exclusive\ndef test_x():\n    pass\n",
                 "from lanes import timing\n\nclass T:\n    @timing\n    def test_y(self):\n        pass\n"):
        try:
            r.lanes_of(write(text))
        except ValueError:
            continue
        raise AssertionError(f"accepted: {text!r}")


def test_the_tree_declares_its_timing_tests():
    r = runner()
    found = {}
    for f in sorted(os.listdir(HERE)):
        if f.startswith("test_") and f.endswith(".py"):
            for name, lane in r.lanes_of(os.path.join(HERE, f)).items():
                found[f"{f[:-3]}/{name}"] = lane
    # The ones tests/runner.py once listed by hand, among others.
    assert found.get("test_server/test_deadline_exceeded_and_process_reaped") == "timing", found
    assert found.get("test_vsh_terminal/test_interactive_session_in_tmux") == "timing", found
    assert found.get("test_interop_tcp/test_tcp_two_thousand_sequential_calls_none_stalls") == "exclusive", found
    assert sum(1 for v in found.values() if v == "timing") >= 11, found
    out = subprocess.run(["meson", "introspect", valet.BUILD, "--tests"], capture_output=True, text=True, check=True)
    lanes = {t["name"]: r.c_lane(t) for t in json.loads(out.stdout)}
    assert lanes["test-loop"] == "timing", lanes
    assert lanes["test-buf"] is None, lanes
