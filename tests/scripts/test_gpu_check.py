"""scripts/gpu_check.sh --dry-run: every step of the GPU check starts on a CPU (CI runs this),
and the report turns the steps' output into markdown and JSON."""

import json
import subprocess

from tests.helpers import REPO, SCRIPTS, load_script

gpu_check = load_script("gpu_check")


def test_dry_run_starts_every_step(tmp_path):
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1500,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert proc.returncode == 0, (status, proc.stdout[-3000:], proc.stderr[-3000:])
    assert list(status) == [
        "1_gpu_tests",
        "2_training",
        "3_md_step",
        "4_bench_model",
        "5_bench_inference",
        "6_bench_conv",
        "7_compile",
    ]
    assert set(status.values()) == {"ok"} and summary["dry_run"] is True
    md = json.loads((tmp_path / "md_step.json").read_text())
    assert md["rows"][0]["backend"] == "torch" and md["rows"][0]["ef_ms"] > 0
    text = (tmp_path / "summary.md").read_text()
    assert "## GPU check" in text and "| torch |" in text


def test_report_parses_tables_tests_and_loss_curves(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"device": "NVIDIA H200", "dry_run": False}))
    log = (
        "### Convolution\n\n| contender | l_max | forward (ms) |\n|---|---|---|\n"
        "| gaunt-grid | 1 | 0.25 |\n| e3nn | 1 | 1.50 |\n\nstep, torch loss, triton loss: "
        "(0, 1.5, 1.5) (10, 0.75, 0.7500001)\n"
    )
    (tmp_path / "x.log").write_text(log)
    (tmp_path / "step_x.json").write_text(
        json.dumps({"name": "x", "status": "failed (exit 1)", "seconds": 3.0, "command": "cmd"})
    )
    (tmp_path / "x.xml").write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure/>'
        '</testcase><testcase classname="t" name="c"><skipped/></testcase></testsuite>'
        "</testsuites>"
    )
    assert gpu_check.main(["report", str(tmp_path)]) == 0
    step = json.loads((tmp_path / "summary.json").read_text())["steps"][0]
    assert step["tables"][0]["rows"][1] == {
        "contender": "e3nn",
        "l_max": "1",
        "forward (ms)": "1.50",
    }
    assert step["tables"][0]["title"] == "Convolution"
    assert step["losses"] == [[0, 1.5, 1.5], [10, 0.75, 0.7500001]]
    assert step["pytest"]["passed"] == 1 and step["pytest"]["failed_tests"] == ["t::b"]
    text = (tmp_path / "summary.md").read_text()
    assert "NVIDIA H200" in text and "| x | failed (exit 1) | 3 |" in text
    assert "| 10 | 0.75 | 0.75 | 1.33e-07 |" in text
    # a pytest step killed before its XML: the -v lines so far
    (tmp_path / "x.xml").unlink()
    (tmp_path / "x.log").write_text("tests/k.py::a PASSED [ 50%]\ntests/k.py::b FAILED [100%]\n")
    gpu_check.main(["report", str(tmp_path)])
    step = json.loads((tmp_path / "summary.json").read_text())["steps"][0]
    assert step["pytest"]["passed"] == 1 and step["pytest"]["failed_tests"] == ["tests/k.py::b"]
