"""`tdn bench model` runs end to end on a small model and reports what it measured (no timing asserted)."""
import json

from tdn.bench import bench_model
from tdn.cli import main


def test_bench_model_reports_medians_and_their_ratio():
    report = bench_model("resnet18", num_segments=8, size=64, precisions=("fp32", "bf16"), runs=2, warmup=1)
    assert (report["arch"], report["num_segments"], report["size"], report["batch"]) == ("resnet18", 8, 64, 1)
    for precision in ("fp32", "bf16"):
        r = report["results"][precision]
        assert r["tdn_ms"] > 0 and r["tsn_ms"] > 0
        assert abs(r["ratio"] - r["tdn_ms"] / r["tsn_ms"]) < 0.01 * r["ratio"] + 1e-3  # rounded to 0.1 ms


def test_bench_cli_json(capsys):
    assert main(["bench", "model", "--arch", "resnet18", "--size", "64", "--runs", "1", "--precisions", "fp32",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"fp32"} and report["runs"] == 1
