"""Every variant's cost written by hand in plain Python: the benchmark's baseline and an independent oracle.

``cost()`` is timed against these functions (the same counts, computed with bare
ints and no checks), and tests/test_plain_formulas.py asserts that both agree on
every metric, so the baseline is known to compute the same thing. Nothing here
imports convcost: each count is the textbook rule, written out again on purpose.

Each function takes a variant's fields (and its input size N, H, W) and returns
``(counts, output_shape)``, counts in the order params, macs, bias_ops, norm_ops,
act_ops, pool_ops, elementwise_ops, activation_elements, memory_access.
"""

from __future__ import annotations

from math import prod


def _axes(value, n):
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def _add(*parts):
    return [sum(xs) for xs in zip(*parts)]


def conv(shape, C, O, K, S=1, P=0, D=1, G=1, bias=True):
    n, _, *spatial = shape
    ks, ss, ds = _axes(K, len(spatial)), _axes(S, len(spatial)), _axes(D, len(spatial))
    ps = (0,) * len(spatial) if P == "valid" else _axes(P, len(spatial))
    if P == "same":
        out = list(spatial)
    else:
        out = [(x + 2 * p - d * (k - 1) - 1) // s + 1 for x, k, s, p, d in zip(spatial, ks, ss, ps, ds)]
    positions = n * O * prod(out)
    per = C // G * prod(ks)
    params = O * per + (O if bias else 0)
    return [params, positions * per, positions if bias else 0, 0, 0, 0, 0, positions,
            prod(shape) + positions + params], (n, O, *out)


def conv_transpose(shape, C, O, K, S=1, P=0, output_padding=0, D=1, G=1, bias=True):
    n, _, h, w = shape
    out = [(x - 1) * S - 2 * P + D * (K - 1) + output_padding + 1 for x in (h, w)]
    params = C * (O // G) * K * K + (O if bias else 0)
    outputs = n * O * prod(out)
    return [params, prod(shape) * (O // G) * K * K, outputs if bias else 0, 0, 0, 0, 0, outputs,
            prod(shape) + outputs + params], (n, O, *out)


def batch_norm(shape):
    e = prod(shape)
    return [2 * shape[1], 0, 0, e, 0, 0, 0, e, 2 * e + 2 * shape[1]], shape


def activation(shape):
    e = prod(shape)
    return [0, 0, 0, 0, e, 0, 0, e, 2 * e], shape


def moved(shape, out):
    return [0, 0, 0, 0, 0, 0, 0, prod(out), prod(shape) + prod(out)], out


def sequence(shape, *steps):
    """Apply ``steps`` (functions of a shape) one after the other; counts add."""
    total = [0] * 9
    for step in steps:
        counts, shape = step(shape)
        total = _add(total, counts)
    return total, shape


def concat(shapes):
    out = (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:])
    return [0, 0, 0, 0, 0, 0, 0, prod(out), sum(prod(s) for s in shapes) + prod(out)], out


# -- the variants, on the tour's configurations ----------------------------------------------------


def standard_conv(C, O, K, S=1, P=0, D=1, G=1, N=1, H=1, W=1):
    return conv((N, C, H, W), C, O, K, S, P, D, G)


def pointwise_conv(C, O, N=1, H=1, W=1):
    return conv((N, C, H, W), C, O, 1)


def depthwise_conv(C, K, M=1, N=1, H=1, W=1):
    return conv((N, C, H, W), C, C * M, K, G=C)


def separable_conv(C, O, K, N=1, H=1, W=1):
    return sequence((N, C, H, W), lambda s: conv(s, C, C, K, G=C), lambda s: conv(s, C, O, 1))


def grouped_conv(C, O, K, G, P=0, N=1, H=1, W=1):
    return conv((N, C, H, W), C, O, K, P=P, G=G)


def shuffle_grouped_conv(C, O, K, G, N=1, H=1, W=1):
    return sequence((N, C, H, W), lambda s: conv(s, C, O, K, G=G), lambda s: moved(s, s))


def dilated_conv(C, O, K, D, N=1, H=1, W=1):
    return conv((N, C, H, W), C, O, K, D=D)


def asymmetric_conv(C, O, K, N=1, H=1, W=1):
    return sequence((N, C, H, W), lambda s: conv(s, C, O, (K, 1)), lambda s: conv(s, O, O, (1, K)))


def factorized_conv(C, O, K, P, N=1, H=1, W=1):
    assert K == 5 and P == "same"  # the tour's case: two 3x3 convolutions with padding 1
    return sequence((N, C, H, W), lambda s: conv(s, C, O, 3, P=1), lambda s: conv(s, O, O, 3, P=1))


def transposed_conv(C, O, K, S, N=1, H=1, W=1):
    return conv_transpose((N, C, H, W), C, O, K, S)


def conv3d(C, O, K, S, P, N=1, T=1, H=1, W=1):
    return conv((N, C, T, H, W), C, O, K, S, P)


def space_to_depth(C, r, N=1, H=1, W=1):
    return moved((N, C, H, W), (N, C * r * r, H // r, W // r))


def depth_to_space(C, r, N=1, H=1, W=1):
    return moved((N, C, H, W), (N, C // (r * r), H * r, W * r))


def fire_module(C, s, e, bn, N=1, H=1, W=1):
    def unit(c_in, c_out, k, p):
        steps = [lambda x: conv(x, c_in, c_out, k, P=p)] + ([batch_norm] if bn else []) + [activation]
        return lambda x: sequence(x, *steps)

    squeezed, x = unit(C, s, 1, 0)((N, C, H, W))
    a, out_a = unit(s, e, 1, 0)(x)
    b, out_b = unit(s, e, 3, 1)(x)
    merged, out = concat([out_a, out_b])
    return _add(squeezed, a, b, merged), out


def squeeze_excitation(C, r, N=1, H=1, W=1):
    shape = (N, C, H, W)
    pooled = (N, C, 1, 1)
    pool = [0, 0, 0, 0, 0, prod(shape), 0, prod(pooled), prod(shape) + prod(pooled)]
    gate, gate_out = sequence(pooled, lambda s: conv(s, C, C // r, 1), activation,
                              lambda s: conv(s, C // r, C, 1), activation)
    scale = [0, 0, 0, 0, 0, 0, prod(shape), prod(shape), prod(shape) + prod(gate_out) + prod(shape)]
    return _add(pool, gate, scale), shape


def mobilenet_v1_block(C, O, S, N=1, H=1, W=1):
    return sequence((N, C, H, W), lambda s: conv(s, C, C, 3, S, 1, G=C, bias=False), batch_norm, activation,
                    lambda s: conv(s, C, O, 1, bias=False), batch_norm, activation)


def inverted_residual(C, O, t, S, N=1, H=1, W=1):
    assert S != 1 or C != O  # the tour's case: no residual addition
    hidden = C * t
    return sequence((N, C, H, W), lambda s: conv(s, C, hidden, 1, bias=False), batch_norm, activation,
                    lambda s: conv(s, hidden, hidden, 3, S, 1, G=hidden, bias=False), batch_norm, activation,
                    lambda s: conv(s, hidden, O, 1, bias=False), batch_norm)


def inception_block(C, O, form, N=1, H=1, W=1):
    assert form == "3x3"  # the tour's case: the 5x5 branch as two 3x3
    shape = (N, C, H, W)
    one, out1 = conv(shape, C, O, 1)

    def branch(n3x3):
        steps = [lambda s: conv(s, C, O, 1), activation]
        for _ in range(n3x3):
            steps += [lambda s: conv(s, O, O, 3, P=1), activation]
        return sequence(shape, *steps)

    two, out2 = branch(1)
    three, out3 = branch(2)
    merged, out = concat([out1, out2, out3])
    return _add(one, two, three, merged), out


PLAIN = {
    "StandardConv": standard_conv, "PointwiseConv": pointwise_conv, "DepthwiseConv": depthwise_conv,
    "SeparableConv": separable_conv, "GroupedConv": grouped_conv, "ShuffleGroupedConv": shuffle_grouped_conv,
    "DilatedConv": dilated_conv, "AsymmetricConv": asymmetric_conv, "FactorizedConv": factorized_conv,
    "TransposedConv": transposed_conv, "Conv3d": conv3d, "SpaceToDepth": space_to_depth,
    "DepthToSpace": depth_to_space, "FireModule": fire_module, "SqueezeExcitation": squeeze_excitation,
    "MobileNetV1Block": mobilenet_v1_block, "InvertedResidual": inverted_residual, "InceptionBlock": inception_block,
}
