"""A reading that runs the forward on real tensors leaves the model's values and torch's random state as they
were: batch norm's running statistics in training mode, a step counter, dropout's draws. Found by the zoo's
left-as-it-was check: torchvision's inception_v3 at 96x96, whose training step PyTorch refuses (its auxiliary
head pools a 4x4 map with a 5x5 window), had its batch norm statistics moved by the run that quotes PyTorch's
refusal."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from convcost.errors import ConvcostError  # noqa: E402
from convcost.torch import profile  # noqa: E402


class AuxHead(nn.Module):
    """Training mode only: a 5x5 average pool, which PyTorch refuses on a map smaller than 5x5."""

    def forward(self, x):
        return nn.functional.avg_pool2d(x, 5) if self.training else x


class Counter(nn.Module):
    """Reads its input's values (a forward that must run on real tensors) and counts its calls in a buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        if type(x) is not torch.Tensor:  # no stand-in will do: the reading runs on real tensors
            raise TypeError("real tensors only")
        self.calls += 1
        return x * (x.sum().item() != 0.5)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_refused_training_step_leaves_batch_norm_statistics_as_they_were():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), AuxHead()).eval()
    state, rng = _state(model), torch.get_rng_state()
    with pytest.raises(ConvcostError, match="PyTorch rejects"):
        profile(model, (2, 3, 6, 6), training=True)
    assert _same(_state(model), state)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training


@pytest.mark.parametrize("training", [False, True])
def test_a_forward_read_on_real_tensors_leaves_buffers_and_random_state(training):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), Counter()).eval()
    state, rng = _state(model), torch.get_rng_state()
    report = profile(model, (2, 3, 8, 8), training=training)
    assert "tensors" in report.traced_with  # the reading that runs the forward on real tensors
    assert _same(_state(model), state)
    assert int(model[3].calls) == 0
    assert torch.equal(torch.get_rng_state(), rng)
