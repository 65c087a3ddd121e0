"""What a newcomer trips on: machine output that parses, models given as files, several inputs, options
checked before the work, memory sizes with units, typos refused, readable numbers and formulas."""

import csv
import io
import json

import pytest

from convcost.cli import main
from convcost.errors import ConvcostError

TINY = "import torch.nn as nn\n\ndef tiny():\n    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())\n"
TWO = ("import torch.nn as nn\n\nclass Two(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
       "        self.a, self.b = nn.Conv2d(3, 8, 3), nn.Conv2d(5, 8, 3)\n\n"
       "    def forward(self, x, y):\n        return self.a(x) + self.b(y)\n")
# oracle: Conv2d(3, 8, 3) on 32x32: 8 x 30 x 30 outputs, 3 x 9 taps each
TINY_MACS = 8 * 30 * 30 * 3 * 9
TINY_PARAMS = 8 * 3 * 9 + 8


@pytest.fixture
def models(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "mymodels.py").write_text(TINY)
    (tmp_path / "two.py").write_text(TWO)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nets.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_json_is_the_only_thing_on_stdout_and_carries_every_number(models, capsys):
    status, out, err = _run(capsys, "profile", "mymodels:tiny", "--input", "1,3,32,32", "--format", "json",
                            "--training", "--memory", "1GiB", "--optimizer", "sgd", "--convention", "fvcore")
    assert status == 0, err
    data = json.loads(out)  # nothing but the JSON
    assert data["total"]["macs"] == TINY_MACS and data["total"]["params"] == TINY_PARAMS
    assert data["headline"] == {"convention": "fvcore", "value": data["headline"]["value"]}
    memory = data["step_memory"]["bytes"]
    assert data["step_memory"]["optimizer"] == "sgd" and memory == data["training"]["memory_bytes_float32"]["sgd"]
    batch = data["max_batch"]["batch"]
    assert data["max_batch"]["memory_bytes"] == 2**30 and batch > 0
    # the step's memory is linear in the batch: the answer is the largest N under the budget
    status, out, _ = _run(capsys, "profile", "mymodels:tiny", "--input", f"{batch},3,32,32", "--format", "json",
                          "--training", "--optimizer", "sgd")
    assert json.loads(out)["step_memory"]["bytes"] <= 2**30
    status, out, _ = _run(capsys, "profile", "mymodels:tiny", "--input", f"{batch + 1},3,32,32", "--format", "json",
                          "--training", "--optimizer", "sgd")
    assert json.loads(out)["step_memory"]["bytes"] > 2**30


def test_csv_parses_and_carries_the_step_columns_and_facts(models, capsys):
    status, out, err = _run(capsys, "profile", "mymodels:tiny", "--input", "1,3,32,32", "--format", "csv",
                            "--training", "--memory", "10KiB", "--convention", "torch")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    total = next(r for r in rows if r["path"] == "total")
    assert int(total["macs"]) == TINY_MACS and int(total["backward_macs"]) > 0
    facts = {r["path"]: int(r["value"]) for r in rows if r["value"]}
    assert facts["headline[torch]"] == 2 * TINY_MACS  # FlopCounterMode: 2 x MACs
    assert facts["max_batch[10KiB, adam, float32]"] == 0
    assert facts["step_memory_bytes[batch 1, adam, float32]"] > 10 * 1024


def test_markdown_keeps_the_headline_and_formulas_as_code(models, capsys):
    status, out, _ = _run(capsys, "profile", "mymodels:tiny", "--input", "1,3,32,32", "--format", "md",
                          "--convention", "torch")
    assert status == 0 and f"torch headline: {2 * TINY_MACS:,}" in out
    assert "| `macs = C*K**2*O" in out  # a formula is code: its * is not emphasis


@pytest.mark.parametrize("name", ["./mymodels.py:tiny", "mymodels.py:tiny", "sub/nets.py:tiny", "sub/nets:tiny",
                                  "mymodels:tiny"])
def test_a_model_is_named_by_module_or_by_file(models, capsys, name):
    status, out, err = _run(capsys, "profile", name, "--input", "1,3,32,32", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["total"]["macs"] == TINY_MACS


def test_a_missing_file_or_factory_says_how_to_name_a_model(models, capsys):
    status, _, err = _run(capsys, "profile", "nosuch.py:tiny", "--input", "1,3,8,8")
    assert status == 2 and "no file 'nosuch.py'" in err and "path/to/file.py:factory" in err
    status, _, err = _run(capsys, "profile", "mymodels.py:tinyy", "--input", "1,3,8,8")
    assert status == 2 and "did you mean 'tiny'?" in err


def test_several_inputs(models, capsys):
    status, out, err = _run(capsys, "profile", "two.py:Two", "--input", "1,3,8,8", "--input", "1,5,8,8",
                            "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    assert data["input_shapes"] == [[1, 3, 8, 8], [1, 5, 8, 8]]
    assert data["total"]["macs"] == 8 * 6 * 6 * (3 + 5) * 9


@pytest.mark.parametrize("argv, words", [
    (["--training", "--optimizer", "adm"], "did you mean 'adam'?"),
    (["--training", "--dtype", "fp8"], "unknown dtype 'fp8' for --dtype"),
    (["--dtype", "fp16"], "add --training"),
    (["--optimizer", "sgd"], "add --training"),
    (["--memory", "1GiB"], "--memory needs --training"),
    (["--training", "--memory", "24"], "give a unit"),
    (["--training", "--memory", "24 parsecs"], "is not a size"),
    (["--depth", "0"], "positive number of module tree levels"),
    (["--convention", "fvcor"], "did you mean 'fvcore'?"),
])
def test_options_are_checked_before_the_model_is_read(models, capsys, argv, words):
    (models / "mymodels.py").write_text("raise SystemExit('the model was read')\n")
    status, out, err = _run(capsys, "profile", "mymodels:tiny", "--input", "1,3,8,8", *argv)
    assert status == 2 and out == "" and words in err and err.count("\n") == 1


def test_dtype_aliases_and_a_batch_too_large_for_the_budget(models, capsys):
    status, out, err = _run(capsys, "profile", "mymodels:tiny", "--input", "1,3,32,32", "--training",
                            "--dtype", "fp16", "--memory", "1k")
    assert status == 0, err
    assert "Step memory with adam, float16 parameters:" in out
    assert "(adam, float16): 0; a batch of 1 needs" in out


@pytest.mark.parametrize("text, size", [("24G", 24 * 2**30), ("24g", 24 * 2**30), ("24gb", 24 * 10**9),
                                        ("24GB", 24 * 10**9), ("24GiB", 24 * 2**30), ("24gib", 24 * 2**30),
                                        ("1.5 MiB", 3 * 2**19), ("512b", 512)])
def test_memory_units_in_any_case(text, size):
    from convcost.training import parse_memory

    assert parse_memory(text) == size


def test_plot_options_are_checked_first(capsys, tmp_path):
    status, out, err = _run(capsys, "breakeven", "StandardConv", "AsymmetricConv", "--plot", str(tmp_path / "x.jpg"))
    assert status == 2 and out == "" and ".pdf" in err
    status, out, err = _run(capsys, "breakeven", "StandardConv", "AsymmetricConv", "--y", "C")
    assert status == 2 and out == "" and "--plot" in err


def test_pdf_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "where.pdf"
    status, _, err = _run(capsys, "breakeven", "StandardConv", "AsymmetricConv", "--metric", "params",
                          "--plot", str(path))
    assert status == 0, err
    assert path.read_bytes().startswith(b"%PDF")


def test_cost_training_options_need_training(capsys):
    status, out, err = _run(capsys, "cost", "StandardConv", "--dtype", "fp16")
    assert status == 2 and out == "" and "add --training" in err
    status, out, err = _run(capsys, "cost", "StandardConv", "C=3", "O=8", "K=3", "H=6", "W=6", "--training",
                            "--dtype", "bf16")
    assert status == 0 and "training_memory[adam, bfloat16]" in out


def test_options_before_the_command(capsys):
    status, out, err = _run(capsys, "--json", "cost", "StandardConv", "C=3", "O=8", "K=3")
    assert status == 0, err
    assert json.loads(out)["params"] == 8 * 3 * 9 + 8


def test_training_columns_per_row_and_the_gap_explained(capsys):
    torch = pytest.importorskip("torch")
    from convcost.torch import profile

    net = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, groups=8), torch.nn.ReLU())
    report = profile(net, (1, 8, 10, 10), training=True)
    table = report.table()
    assert "Backward MACs" in table.splitlines()[1] and "Saved" in table.splitlines()[1]
    # FlopCounterMode counts the depthwise weight gradient as a dense one: G = 8 times its products
    words = " ".join(table.split())
    assert "FlopCounterMode's convention 36,864 (8x; FlopCounterMode counts each grouped convolution's weight " \
           "gradient as a dense one" in words
    assert max(map(len, table.splitlines())) <= 120
    step = report.to_csv().splitlines()[0].split(",")
    assert step[-2:] == ["backward_macs", "saved_elements"]


def test_a_total_is_not_repeated_in_brackets():
    torch = pytest.importorskip("torch")
    from convcost.torch import profile

    table = profile(torch.nn.Conv2d(3, 8, 3), (1, 3, 32, 32)).table()
    assert f"Total params: {TINY_PARAMS}\n" in table and f"Total mult-adds (MACs): {TINY_MACS:,} (194K)" in table


def test_parse_memory_is_a_convcost_error():
    from convcost.training import parse_memory

    with pytest.raises(ConvcostError, match="any case"):
        parse_memory("24 parsecs")


def test_a_typo_is_refused_with_a_suggestion_unless_declared(capsys):
    status, out, err = _run(capsys, "cost", "StandardConv", "C=64", "O=128", "K=3", "P=sme")
    assert status == 2 and out == "" and "did you mean 'same'?" in err and "--symbol sme" in err
    status, out, err = _run(capsys, "cost", "StandardConv", "C=64", "O=128", "K=3", "H=h", "--symbol", "h")
    assert status == 0 and "h - 2" in out
    status, _, err = _run(capsys, "compare", "StandardConv", "SeparableConv", "C=64", "O=128", "K=kk")
    assert status == 2 and "'kk' is not a symbol of convcost's glossary" in err
    status, _, err = _run(capsys, "derive", "StandardConv", "Cc=64")
    assert status == 2 and "did you mean 'C'?" in err


@pytest.mark.parametrize("dims", ["np.int64(3)", "np.arange(3)", "np.array(2)"])
@pytest.mark.parametrize("layer", ["Permute", "Reduce"])
def test_a_numpy_value_where_a_tuple_of_dims_is_expected(layer, dims):
    np = pytest.importorskip("numpy")
    from convcost import cost, primitives

    with pytest.raises(ConvcostError, match="dims="):  # the value and the rule, not numpy's ValueError
        cost(getattr(primitives, layer), dims=eval(dims, {"np": np}))


def test_numpy_integers_inside_the_tuple_are_ints():
    np = pytest.importorskip("numpy")
    from convcost.primitives import Permute, Reduce

    assert Reduce(dims=(np.int64(1),)).cost((1, 3, 4, 4)).output_shape == (1, 4, 4)
    assert Permute(dims=[0, np.int32(2), 3, 1]).cost((1, 3, 4, 5)).output_shape == (1, 4, 5, 3)


@pytest.mark.parametrize("argv", [["SeparableConv", "C=64", "O=128", "K=3"], ["InvertedResidual"],
                                  ["InvertedResidual", "C=32", "O=32"]])
def test_the_latex_document_fits_the_page(tmp_path, capsys, argv):
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-base)")
    assert main(["derive", *argv, "--format", "tex", "--document"]) == 0
    (tmp_path / "d.tex").write_text(capsys.readouterr().out)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "d.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, [line for line in log.splitlines() if "Overfull" in line]


def test_no_raw_sympy_in_the_cli(capsys):
    status, out, _ = _run(capsys, "cost", "InvertedResidual", "C=32", "O=32")
    assert status == 0 and "Piecewise" not in out and "(1088*t if t != 1 else 0)" in out
    # the oracle: 1x1 expansion 32 -> 32t without bias, and its batch norm (2 x 32t), present only when t != 1
    assert 32 * 32 + 2 * 32 == 1088


def test_derivation_repr_shows_each_value_once():
    from convcost import StandardConv, cost
    from convcost.derivation import derive

    text = repr(derive(cost(StandardConv, C=64, O=128, K=3, H=8, W=8), ("params",)))
    assert text.count("73,856") == 1 and "[substitution, result]" in text
    assert 64 * 128 * 9 + 128 == 73856


def test_a_symbolic_profile_reads_as_one_ceiling_and_fits_the_width():
    torch = pytest.importorskip("torch")
    import sympy

    from convcost.symbols import H, W
    from convcost.torch import profile

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1),
                        nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.Conv2d(128, 256, 3, 2, 1, bias=False),
                        nn.Conv2d(256, 512, 3, 2, 1, bias=False))
    report = profile(net, (1, 3, H, W))
    table = report.table()
    assert "floor(floor" not in table and "ceiling(H/32)" in table and "Piecewise" not in table
    assert max(map(len, table.splitlines())) <= 120
    assert table.count("Total mult-adds") == 1 and "…v2d" not in table
    # the readable form is the same number as the exact one at every size (the oracle: concrete profiles)
    total = report.total["macs"]
    for h, w in ((32, 32), (33, 47), (224, 225)):
        concrete = profile(net, (1, 3, h, w)).total["macs"]
        assert sympy.sympify(total).subs({H: h, W: w}) == concrete
        from convcost.display import readable
        assert readable(total).subs({H: h, W: w}) == concrete


def test_assert_matches_torch_on_a_users_own_module():
    torch = pytest.importorskip("torch")
    from convcost.testing import assert_matches_torch

    class MyBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pw = torch.nn.Conv2d(16, 32, 1)

        def forward(self, x):
            return torch.relu(self.pw(self.dw(x)))

    measured = assert_matches_torch(MyBlock(), (1, 16, 32, 32))
    assert measured.macs == 32 * 32 * (16 * 9 + 16 * 32)  # per position: depthwise 16 x 9, pointwise 16 x 32
    assert assert_matches_torch(torch.nn.Conv2d(3, 8, 3), (1, 3, 8, 8)).params == 8 * 3 * 9 + 8
    with pytest.raises(ConvcostError, match="give the input shape"):
        assert_matches_torch(MyBlock())
    with pytest.raises(ConvcostError, match="neither a convcost layer"):
        assert_matches_torch("Conv2d")


def test_units_and_separators_everywhere(capsys):
    from convcost import SeparableConv, cost

    status, out, _ = _run(capsys, "cost", "StandardConv", "C=3", "O=8", "K=3", "H=6", "W=6", "--training")
    assert status == 0
    assert "memory_access       = 460 elements" in out and "bytes (" in out
    text = repr(cost(SeparableConv, C=64, O=128, K=3, H=56, W=56))
    assert "params = 8,960" in text and "macs = 25,567,488" in text


def test_breakeven_answers_where_it_can(capsys):
    from convcost import SeparableConv, StandardConv
    from convcost.breakeven import break_even

    be = break_even(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3)
    # oracle: 73,856 - 8,960 by hand
    assert 64 * 128 * 9 + 128 - (64 * 9 + 64 + 64 * 128 + 128) == 64896
    assert "B is cheaper by 64,896" in str(be) and "when True" not in str(be)
    one_left = break_even(StandardConv, SeparableConv, metric="params", C=64, K=3)  # only O is free
    assert one_left.symbol.name == "O"
    status, out, _ = _run(capsys, "breakeven", "StandardConv", "SeparableConv", "C=64", "O=128", "K=3",
                          "--metric", "params", "--json")
    assert status == 0 and "cheaper by 64,896" in json.loads(out)["note"]
    assert "<table>" in be._repr_html_()


@pytest.mark.parametrize("argv, words", [(["--format", "mdd"], "did you mean 'md'?"),
                                         (["--metric", "mac"], "did you mean 'macs'?"),
                                         (["--format", "md", "--document"], "--format tex")])
def test_derive_options_are_checked_first(capsys, argv, words):
    status, out, err = _run(capsys, "derive", "StandardConv", *argv)
    assert status == 2 and out == "" and words in err


def test_list_prints_whole_sentences(capsys):
    status, out, _ = _run(capsys, "list")
    assert status == 0
    entries = " ".join(out.split())
    from convcost.catalog import VARIANTS
    from convcost.cli.cost import summary

    for cls in VARIANTS.values():
        assert summary(cls.__doc__).endswith((".", ")")) and summary(cls.__doc__) in entries


def test_latency_estimates_render_as_html():
    """Latency (one layer) and ModelLatency (a model) show in Jupyter as tables, as Report and Comparison do."""
    from convcost import DepthwiseConv
    from convcost.latency import Machine, predict_latency

    m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.25}, overhead=1e-5)
    html = predict_latency(DepthwiseConv(C=64, K=3, P=1, H=56, W=56), m)._repr_html_()
    assert html.startswith("<table><caption>653 µs (model; roofline 161 µs)") and "depthwise_conv" in html
    assert html.count("<tr>") == 2  # the header and the one kernel
