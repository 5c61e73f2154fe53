"""`tdn bench model` runs end to end on a small model and reports what it measured (no timing asserted);
the record helpers the benchmark scripts share."""
import json

import torch

from tdn.bench import _by_round, bench_model, emit_record, machine
from cli.main import main


def test_bench_model_reports_medians_and_their_ratio():
    report = bench_model("resnet18", num_segments=8, size=64, precisions=("fp32", "bf16"), runs=2, warmup=1)
    assert (report["arch"], report["num_segments"], report["size"], report["batch"]) == ("resnet18", 8, 64, 1)
    for precision in ("fp32", "bf16"):
        r = report["results"][precision]
        assert r["tdn_ms"] > 0 and r["tsn_ms"] > 0
        assert abs(r["ratio"] - r["tdn_ms"] / r["tsn_ms"]) < 0.01 * r["ratio"] + 1e-3  # rounded to 0.1 ms


def test_bench_model_round_by_round_ratios_and_peak_share():
    report = bench_model("resnet18", num_segments=8, size=64, precisions=("fp32",), runs=3, warmup=1, peak=True)
    r = report["results"]["fp32"]
    torch_engine = r["engines"]["torch"]
    by_round = torch_engine["vs_tsn_torch_by_round"]
    assert by_round["q1"] <= by_round["median"] <= by_round["q3"]
    assert r["matmul_peak_tflops"] > 0
    share = torch_engine["peak_share_by_round"]
    assert 0 < share["q1"] <= share["median"] <= share["q3"]


def test_by_round_is_median_and_quartiles():
    assert _by_round([1.0, 2.0, 3.0, 4.0, 5.0]) == {"median": 3.0, "q1": 2.0, "q3": 4.0}
    assert _by_round([1.25]) == {"median": 1.25, "q1": 1.25, "q3": 1.25}


def test_bench_cli_json(capsys):
    assert main(["bench", "model", "--arch", "resnet18", "--size", "64", "--runs", "1", "--precisions", "fp32",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"fp32"} and report["runs"] == 1


def test_bench_cli_text_names_the_peak_and_the_round_by_round_ratio(capsys):
    assert main(["bench", "model", "--arch", "resnet18", "--size", "64", "--runs", "2", "--precisions", "fp32",
                 "--peak"]) == 0
    out = capsys.readouterr().out
    assert "fp32 matrix-multiply peak:" in out
    assert "TSN-torch (round by round" in out and "of the matmul peak (round by round" in out


def test_emit_record_prints_and_writes_the_same_json(tmp_path, capsys):
    record = {"benchmark": "x", "machine": machine(), "ms": [1.5, 2.0]}
    out = tmp_path / "new_dir" / "x.json"
    emit_record(record, str(out))
    assert json.loads(capsys.readouterr().out) == record == json.loads(out.read_text())
    assert f"torch {torch.__version__}" in record["machine"] and "cores" in record["machine"]
