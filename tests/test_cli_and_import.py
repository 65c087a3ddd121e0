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


# -- a newcomer's first hour: the CLI as the README and --help present it -----------------------------
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEPARABLE_64_128_3 = 64 * 9 + 64 + 64 * 128 + 128  # depthwise weights + bias, pointwise weights + bias
STANDARD_64_128_3 = 64 * 128 * 9 + 128


def _env() -> dict:
    """This checkout first on the path (the tests' convcost), and nothing else of the caller's."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_options_may_follow_the_fields(capsys):
    assert main(["cost", "SeparableConv", "--json", "C=64", "O=128", "K=3"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == SEPARABLE_64_128_3
    assert main(["compare", "--metric", "params", "StandardConv", "SeparableConv", "C=64", "--json", "O=128",
                 "K=3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["value_a"], data["value_b"]) == (STANDARD_64_128_3, SEPARABLE_64_128_3)


def test_python_dash_m_convcost_and_version():
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    run = subprocess.run([sys.executable, "-m", "convcost", "--version"], capture_output=True, text=True,
                         env=_env(), cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == f"convcost {version}"
    run = subprocess.run([sys.executable, "-m", "convcost", "cost", "SeparableConv", "C=64", "O=128", "K=3"],
                         capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert run.returncode == 0 and f"params              = {SEPARABLE_64_128_3:,}" in run.stdout


def test_console_script_entry_point_is_main():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'convcost = "convcost.cli:main"' in pyproject
    import convcost.cli

    assert convcost.cli.main is main


def test_a_closed_pipe_is_no_traceback():
    # convcost tour | head: the reader leaves early; here before convcost has even started writing
    child = subprocess.Popen([sys.executable, "-m", "convcost", "tour"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    child.stdout.close()
    err = child.stderr.read().decode()
    child.wait(timeout=120)
    assert child.returncode == 1 and err == ""


def test_profile_finds_a_module_in_the_current_folder(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "mymodels.py").write_text(
        "import torch.nn as nn\n\ndef small():\n    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())\n"
    )
    # run as the console script runs: a script outside the current folder, so sys.path[0] is not it
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "convcost").write_text("import sys\nfrom convcost.cli import main\nsys.exit(main())\n")
    run = subprocess.run(
        [sys.executable, str(bin_dir / "convcost"), "profile", "mymodels:small", "--input", "1,3,32,32",
         "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, env=_env(),
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["total"]["macs"] == 8 * 30 * 30 * 3 * 9  # outputs x taps


def test_profile_of_a_missing_module_says_where_it_looked(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "nosuchmodels:small", "--input", "1,3,8,8"]) == 2
    err = capsys.readouterr().err
    assert "cannot import 'nosuchmodels'" in err and str(tmp_path) in err and err.count("\n") == 1
    assert str(tmp_path) not in sys.path  # the current folder was on the path for the import only


def _without(package: str, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing ``package`` fails, as when it is not installed."""
    prelude = f"import sys; sys.modules[{package!r}] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=_env(),
                          cwd=ROOT)


def test_profile_without_torch_names_the_extra():
    run = _without("torch", "from convcost.cli import main; sys.exit(main(['profile', 'x:y', '--input', '1,3,8,8']))")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == ("convcost: error: convcost profile needs torch, which is not installed: "
                                  "pip install 'convcost[torch]'")


def test_import_convcost_torch_without_torch_is_one_import_error():
    run = _without("torch", "import convcost.torch")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == ("convcost.extras.MissingExtra: convcost.torch needs torch, "
                                                   "which is not installed: pip install 'convcost[torch]'")


def test_testing_without_hypothesis_names_the_extra():
    run = _without("hypothesis", "import convcost.testing")
    assert run.stderr.strip().splitlines()[-1].endswith("pip install 'convcost[testing]'")


def test_plot_without_matplotlib_names_the_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out.png"
    assert main(["breakeven", "StandardConv", "AsymmetricConv", "--metric", "params", "--plot", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("convcost: error: convcost breakeven --plot needs matplotlib, which is not installed: "
                            "pip install 'convcost[plot]'\n")
    assert captured.out == "" and not out.exists()


def test_a_field_one_side_lacks_is_refused_not_dropped(capsys):
    assert main(["compare", "StandardConv", "DepthwiseConv", "C=64", "O=128", "K=3"]) == 2
    err = capsys.readouterr().err
    assert "O=128 is a field of StandardConv but not of DepthwiseConv" in err and "A.O=128" in err
    assert main(["compare", "StandardConv", "DepthwiseConv", "C=64", "A.O=128", "K=3", "--metric", "params",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["value_a"], data["value_b"]) == (STANDARD_64_128_3, 64 * 9 + 64)
    assert main(["breakeven", "StandardConv", "DepthwiseConv", "O=128", "--solve-for", "K"]) == 2
    assert "not of DepthwiseConv" in capsys.readouterr().err


def test_one_number_format(capsys):
    assert main(["compare", "StandardConv", "SeparableConv", "C=64", "O=128", "K=3", "--metric", "params"]) == 0
    out = capsys.readouterr().out
    assert f"A       = {STANDARD_64_128_3:,}" in out and f"B       = {SEPARABLE_64_128_3:,}" in out
    assert "B/A     = 0.1213 (exactly 70/577)" in out  # 8,960 / 73,856 = 70/577
    assert main(["compare", "StandardConv", "SeparableConv", "C=64", "O=128", "K=3", "--metric", "params",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ratio"] == SEPARABLE_64_128_3 / STANDARD_64_128_3 and data["ratio_exact"] == "70/577"
    assert data["difference"] == STANDARD_64_128_3 - SEPARABLE_64_128_3
    assert data["savings"] == pytest.approx(100 * (1 - 70 / 577)) and data["savings_exact"] == "50700/577"


def test_the_cli_prints_no_raw_sympy(capsys):
    assert main(["cost", "StandardConv", "G=G"]) == 0
    out = capsys.readouterr().out
    assert "valid when C mod G = 0" in out and "valid when O mod G = 0" in out
    assert main(["cost", "StandardConv", "--json", "G=G"]) == 0
    assert "C mod G = 0" in json.loads(capsys.readouterr().out)["conditions"]
    assert main(["compare", "StandardConv", "GroupedConv", "--metric", "params"]) == 0
    assert main(["breakeven", "StandardConv", "AsymmetricConv", "--metric", "params", "--json"]) == 0
    everything = capsys.readouterr().out
    assert main(["cost", "StandardConv", "--general"]) == 0
    general = capsys.readouterr().out
    assert general.splitlines()[0] == "StandardConv(general)" and "valid when C mod G = 0" in general
    for raw in ("Eq(", "Mod(", "Ne(", "S=S", "G=G", "P=P"):
        assert raw not in everything.replace("\\", "") + general, raw


def test_calibrate_command_reports_progress_on_stderr_unless_quiet(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import platformdirs

    from convcost.latency import Machine
    from convcost.torch import calibration

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name, appauthor=None: str(tmp_path / name))

    def measured(device, *, say, **options):  # the command's own behaviour, not the kernels (test_latency times those)
        say(f"measuring {device} with 1 thread: (the kernels, skipped here)")
        return Machine("test machine", peak_flops=1e10, bandwidth=1e9), []

    monkeypatch.setattr(calibration, "measure", measured)
    assert main(["calibrate", "--quick", "--no-cache", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["peak_flops"] > 0
    assert "convcost calibrate: measuring cpu" in captured.err and "done" in captured.err
    assert main(["calibrate", "--quick", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "peak" in captured.out


def test_calibrate_command_prints_the_in_network_per_call_term(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import platformdirs

    from convcost.latency import Machine
    from convcost.torch import calibration

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name, appauthor=None: str(tmp_path / name))
    fitted = Machine("test machine", peak_flops=1e10, bandwidth=1e9,
                     network={"inference": {"linear": 1.1}, "training": {}}, network_call={"inference": 1.7e-5})
    monkeypatch.setattr(calibration, "measure", lambda device, *, say, **options: (fitted, []))
    assert main(["calibrate", "--no-cache", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split() for line in out if "in-network" in line] == [
        ["in-network", "call,", "inference", "=", "17.0", "µs", "per", "row", "of", "a", "network"],
        ["in-network", "call,", "training", "=", "0", "(none", "kept)"]]
    assert main(["calibrate", "--no-cache", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["network_call"] == {"inference": 1.7e-5}
