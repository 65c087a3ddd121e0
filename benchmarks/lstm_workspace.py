"""oneDNN's LSTM workspace against convcost's closed form, over a broad sweep of sizes.

``python benchmarks/lstm_workspace.py [--random 800] [--seed 1]``: every hidden size 1-300 at inputs on both
sides of 256, steps and batches that carry each region of the workspace across 4096-byte pages, then random
multi-layer and bidirectional LSTMs with sizes drawn around oneDNN's alignments (4H and max(I, H) near
multiples of 16, 64 and 256 floats). Each uint8 buffer autograd saves (one per layer and direction) is held to
4 x :func:`convcost.primitives.recurrent.workspace` bytes. Takes about a minute on one core.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convcost.primitives.recurrent import workspace


def measured(inputs, hidden, steps, batch, layers=1, bidirectional=False) -> list:
    """Bytes of each workspace a training-mode forward saves, in call order."""
    module = nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=bidirectional)
    found = []

    def pack(t):
        if t.dtype == torch.uint8:
            found.append(t.untyped_storage().nbytes())
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        module(torch.randn(steps, batch, inputs, requires_grad=True))
    return found


def predicted(inputs, hidden, steps, batch, layers=1, bidirectional=False) -> list:
    dirs = 2 if bidirectional else 1
    return [4 * workspace(steps, batch, inputs if layer == 0 else dirs * hidden, hidden)
            for layer in range(layers) for _ in range(dirs)]


def systematic():
    for hidden in range(1, 301):
        for inputs, steps, batch in [(1, 1, 1), (hidden, 7, 3), (255 if hidden < 200 else 3, 16, 4), (257, 5, 13),
                                     (256, 1, 64)]:
            yield inputs, hidden, steps, batch
    for hidden in (1, 4, 16, 60, 64, 65, 252, 256):
        for steps in range(1, 40):
            for batch in (1, 3, 16, 17):
                yield 5, hidden, steps, batch


def drawn(rng, count):
    def size():
        r = rng.random()
        if r < 0.3:
            return max(1, rng.choice([16, 64, 128, 256, 512]) // 4 * rng.choice([1, 1, 2, 3, 4])
                       + rng.choice([-16, -15, -4, -1, 0, 1, 4, 15, 16]))
        if r < 0.5:
            return max(1, rng.choice([256, 512, 768]) + rng.choice([-16, -15, -4, -1, 0, 1, 4, 15, 16]))
        return rng.randint(1, 300)

    for _ in range(count):
        hidden = size()
        inputs = size() if rng.random() < 0.6 else rng.randint(1, 40)
        steps, batch = rng.choice([1, 2, 3, rng.randint(1, 64)]), rng.choice([1, 2, rng.randint(1, 64)])
        if steps * batch * hidden * (inputs + hidden) > 3e7:  # keep each forward well under a second
            steps, batch = max(1, steps // 4), max(1, batch // 4)
        yield inputs, hidden, steps, batch, rng.choice([1, 1, 2, 3]), rng.random() < 0.4


def main(argv=None):
    args = argparse.ArgumentParser()
    args.add_argument("--random", type=int, default=800)
    args.add_argument("--seed", type=int, default=1)
    opts = args.parse_args(argv)
    torch.set_num_threads(1)
    began, modules, calls, wrong = time.time(), 0, 0, []
    for case in [*systematic(), *drawn(random.Random(opts.seed), opts.random)]:
        got, want = measured(*case), predicted(*case)
        modules, calls = modules + 1, calls + len(got)
        if got != want:
            wrong.append((case, got, want))
            print("differs:", case, got, want, flush=True)
    print(f"torch {torch.__version__}: {modules} LSTMs, {calls} oneDNN calls, {len(wrong)} workspaces differ "
          f"({time.time() - began:.0f} s)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
