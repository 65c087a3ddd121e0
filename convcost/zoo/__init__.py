"""The paper zoo: reference architectures defined as convcost compositions (no torchvision needed).

Each builder returns a :class:`ZooModel`: the convcost ``layer`` and the
``input_shape`` its paper feeds it; ``model.cost()`` is its exact cost there.
``MODELS`` maps each name to its builder (default arguments).

>>> from convcost.zoo import MODELS, resnet18
>>> m = resnet18()
>>> m.input_shape, m.cost().params
((1, 3, 224, 224), 11689512)
>>> sorted(MODELS)[:3]
['mnist_net', 'mnist_net_asymmetric', 'mobilenet_v1']
"""

from convcost.zoo.mnist import mnist_net
from convcost.zoo.mobilenet import make_divisible, mobilenet_v1, mobilenet_v2
from convcost.zoo.model import ZooModel
from convcost.zoo.resnet import resnet18, resnet50
from convcost.zoo.shufflenet import shufflenet_v2
from convcost.zoo.squeezenet import squeezenet1_0, squeezenet1_1

#: every reference architecture by name, built with its defaults
MODELS = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "squeezenet1_0": squeezenet1_0,
    "squeezenet1_1": squeezenet1_1,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "shufflenet_v2": shufflenet_v2,
    "mnist_net": mnist_net,
    "mnist_net_asymmetric": lambda: mnist_net(asymmetric=True),
}

__all__ = [
    "MODELS",
    "ZooModel",
    "make_divisible",
    "mnist_net",
    "mobilenet_v1",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "shufflenet_v2",
    "squeezenet1_0",
    "squeezenet1_1",
]
