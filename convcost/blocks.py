"""Named blocks of efficient CNNs, each a composition of primitives.

>>> from convcost import cost
>>> cost(MobileNetV1Block, C=64, O=128, S=2, N=3, H=224, W=224).params
9152
>>> cost(InvertedResidual, C=64, O=128, t=2, S=2, N=3, H=224, W=224).macs
1893040128
>>> cost(FireModule, C=256, s=48, e=192, bn=True).params
105744
>>> cost(SqueezeExcitation, C=64, r=16, H=56, W=56).macs
512
>>> [cost(InceptionBlock, C=3, O=32, form=f, H=32, W=32).params for f in ("5x5", "3x3", "asymmetric")]
[35264, 28128, 19008]
"""

from __future__ import annotations

from convcost.arith import both, div, divides, eq, floordiv, ne
from convcost.compose import Parallel, Residual, Sequential, When
from convcost.errors import require
from convcost.primitives import Activation, AdaptiveAvgPool, BatchNorm, Conv, Identity
from convcost.spec import choice, flag, size, spec
from convcost.symbols import C, O, e, r, s, t
from convcost.variants import Variant


def _conv_bn_act(c_in, c_out, kernel, stride=1, pad=0, groups=1, act="relu"):
    """Conv (no bias) + BatchNorm (+ activation), the unit of MobileNet blocks."""
    parts = {
        "conv": Conv(C=c_in, O=c_out, K=kernel, S=stride, P=pad, G=groups, bias=False),
        "bn": BatchNorm(C=c_out),
    }
    if act is not None:
        parts["act"] = Activation(kind=act)
    return Sequential(**parts)


def _same_pad(kernel):
    """Padding that keeps the size at stride 1 for an odd kernel: (K-1)/2."""
    return floordiv(kernel - 1, 2)


@spec
class MobileNetV1Block(Variant):
    """MobileNet V1: depthwise 3x3 + BN + ReLU, then pointwise 1x1 + BN + ReLU (no biases)."""

    C: object = size(C)
    O: object = size(O)
    S: object = size(1)
    K: object = size(3)

    def layers(self):
        return Sequential(
            depthwise=_conv_bn_act(self.C, self.C, self.K, self.S, _same_pad(self.K), groups=self.C),
            pointwise=_conv_bn_act(self.C, self.O, 1),
        )


@spec
class InvertedResidual(Variant):
    """MobileNet V2: 1x1 expansion by t (dropped when t = 1), depthwise KxK, linear 1x1 projection.

    BN after every convolution, ReLU6 after the first two; the input is added
    back when the stride is 1 and C = O.
    """

    C: object = size(C)
    O: object = size(O)
    t: object = size(t)
    S: object = size(1)
    K: object = size(3)

    def layers(self):
        hidden = self.C * self.t
        body = Sequential(
            expand=When(ne(self.t, 1), _conv_bn_act(self.C, hidden, 1, act="relu6")),
            depthwise=_conv_bn_act(hidden, hidden, self.K, self.S, _same_pad(self.K), groups=hidden, act="relu6"),
            project=_conv_bn_act(hidden, self.O, 1, act=None),
        )
        return Residual(body, when=both(eq(self.S, 1), eq(self.C, self.O)))


@spec
class FireModule(Variant):
    """SqueezeNet's Fire module: squeeze 1x1 to s channels, expand to e (1x1) + e (3x3), concatenated.

    ``bn=True`` adds batch norm after each convolution, as seed 003 builds it.
    """

    C: object = size(C)
    s: object = size(s)
    e: object = size(e)
    bn: bool = flag(False)

    def _unit(self, c_in, c_out, kernel, pad):
        parts = {"conv": Conv(C=c_in, O=c_out, K=kernel, P=pad)}
        if self.bn:
            parts["bn"] = BatchNorm(C=c_out)
        parts["act"] = Activation(kind="relu")
        return Sequential(**parts)

    def layers(self):
        return Sequential(
            squeeze=self._unit(self.C, self.s, 1, 0),
            expand=Parallel(expand1x1=self._unit(self.s, self.e, 1, 0), expand3x3=self._unit(self.s, self.e, 3, 1)),
        )


@spec
class SqueezeExcitation(Variant):
    """Squeeze-and-excitation: global average pool, FC to C/r + ReLU, FC to C + sigmoid, scale the input.

    The two fully connected layers are 1x1 convolutions on the pooled
    ``(N, C, 1, 1)`` tensor, as torchvision builds them: the same parameters
    and multiply-accumulates as ``nn.Linear`` on the pooled vector.
    """

    C: object = size(C)
    r: object = size(r)

    def validate(self):
        require(divides(self.r, self.C), self, f"C={self.C} is not divisible by the reduction r={self.r}")

    def layers(self):
        hidden = div(self.C, self.r)
        gate = Sequential(
            squeeze=AdaptiveAvgPool(output_size=1),
            fc1=Conv(C=self.C, O=hidden, K=1),
            relu=Activation(kind="relu"),
            fc2=Conv(C=hidden, O=self.C, K=1),
            sigmoid=Activation(kind="sigmoid"),
        )
        return Parallel(identity=Identity(), gate=gate, merge="mul")


@spec
class InceptionBlock(Variant):
    """Seed 000's Inception block: 1x1 | 1x1 then 3x3 | 1x1 then 5x5, concatenated (3O channels).

    ``form`` rewrites the 5x5 branch: ``"5x5"`` as is; ``"3x3"`` as two 3x3;
    ``"asymmetric"`` turns every 3x3 of the block into 3x1 then 1x3. ReLU follows
    each convolution of the second and third branches.
    """

    C: object = size(C)
    O: object = size(O)
    form: str = choice("5x5", ("5x5", "3x3", "asymmetric"))

    def _branch(self, *kernels):
        parts = {"reduce": Conv(C=self.C, O=self.O, K=1), "reduce_act": Activation(kind="relu")}
        for i, kernel in enumerate(kernels, start=1):
            kh, kw = kernel
            parts[f"conv{i}"] = Conv(C=self.O, O=self.O, K=kernel, P=((kh - 1) // 2, (kw - 1) // 2))
            parts[f"act{i}"] = Activation(kind="relu")
        return Sequential(**parts)

    def layers(self):
        three = [(3, 1), (1, 3)] if self.form == "asymmetric" else [(3, 3)]
        five = {"5x5": [(5, 5)], "3x3": [(3, 3), (3, 3)], "asymmetric": three * 2}[self.form]
        return Parallel(
            branch1=Sequential(conv=Conv(C=self.C, O=self.O, K=1)),
            branch2=self._branch(*three),
            branch3=self._branch(*five),
        )
