"""The command line and the import contract."""

import json
import subprocess
import sys

from convcost.cli import main


def test_import_does_not_import_torch():
    code = "import sys, convcost; assert 'torch' not in sys.modules, 'convcost imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "SeparableConv" in out and "InceptionBlock" in out


def test_cost_json(capsys):
    assert main(["cost", "SeparableConv", "C=10", "O=32", "K=3", "H=128", "W=128", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 452 and data["macs"] == 6_509_160 and data["output_shape"] == [1, 32, 126, 126]


def test_cost_symbolic_text(capsys):
    assert main(["cost", "SeparableConv", "C=64", "O=128", "K=3"]) == 0
    out = capsys.readouterr().out
    assert "8,960" in out and "8768*(H - 2)*(W - 2)" in out


def test_cli_never_evaluates_text(capsys):
    assert main(["cost", "StandardConv", "C=__import__('os')"]) == 2
    assert "give an integer, a symbol name" in capsys.readouterr().err


def test_cli_errors_are_one_line(capsys):
    assert main(["cost", "GroupedConv", "C=6", "O=9", "G=4", "K=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "C=6 is not divisible by G=4" in err


def test_unknown_variant_suggests(capsys):
    assert main(["cost", "Separable"]) == 2
    assert "did you mean SeparableConv" in capsys.readouterr().err


def test_tour_runs(capsys):
    assert main(["tour"]) == 0
    out = capsys.readouterr().out
    assert "1,893,040,128 MACs" in out and "105,744 params" in out
