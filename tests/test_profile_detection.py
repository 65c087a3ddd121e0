"""A detection model's training step (issue 26, item 3): ``profile(model, images, targets=..., training=True)``.

The oracle is PyTorch's step on the same images and targets: torchvision's detection models take a list of
images and a list of target dicts in training mode and return their losses; the step is the sum of those
losses, backward. ``FlopCounterMode`` counts the backward (torch 2.13's grouped weight-gradient overcount
divided out, as :func:`convcost.torch.measure_training.grouped_correction` does), saved-tensor hooks count what the
forward keeps, each storage once, parameters and buffers left out, int64 storages apart. The forward samples
proposals and anchors at random, so each reading is seeded the same. torchvision's C++ ops do not load against
this torch: ``nms`` is :func:`greedy_nms` here and ``roi_align`` its own Python function, run eagerly (torchvision
compiles it with ``torch.compile`` on first use, and what a compiled graph keeps for backward is the compiler's
choice, not the model's).
"""

import importlib.util
import inspect
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.autograd.graph import saved_tensors_hooks  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.runtime.private import import_torchvision  # noqa: E402
from convcost.torch.measure_training import grouped_correction  # noqa: E402



def detection_models():
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    import_torchvision()  # its failing fake-op registrations skipped
    import torchvision.models.detection as detection
    import torchvision.ops.boxes as boxes
    from torchvision.extension import _has_ops

    if not _has_ops():  # torchvision's C++ ops do not load against this torch: roi_align goes its Python way
        boxes.nms = greedy_nms  # and nms this one (batched_nms calls the module's nms)
        aligned = sys.modules["torchvision.ops.roi_align"]
        aligned._roi_align = inspect.unwrap(aligned._roi_align)  # eagerly, not through torch.compile
    return detection


def greedy_nms(boxes, scores, iou_threshold):
    """torchvision's ``nms`` in Python: boxes by falling score, each dropping the later ones it overlaps by more
    than ``iou_threshold``."""
    from torchvision.ops.boxes import box_iou

    iou = box_iou(boxes, boxes)
    dropped = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in scores.argsort(descending=True).tolist():
        if not dropped[i]:
            keep.append(i)
            dropped |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def images_and_targets(n=2, size=64, classes=3, masks=False, keypoints=0):
    """``n`` random images and their targets: two boxes each (with masks, or ``keypoints`` per box, where the
    model takes them)."""
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, size, size, generator=g) for _ in range(n)]
    targets = []
    for _ in range(n):
        corner = torch.randint(0, size // 2, (2, 2), generator=g).float()
        boxes = torch.cat([corner, corner + torch.randint(8, size // 2, (2, 2), generator=g)], 1)
        target = {"boxes": boxes, "labels": torch.randint(1, classes, (2,), generator=g)}
        if masks:
            target["masks"] = (torch.rand(2, size, size, generator=g) > 0.5).to(torch.uint8)
        if keypoints:
            inside = boxes[:, None, :2] + torch.rand(2, keypoints, 2, generator=g) * (boxes[:, None, 2:] - boxes[:, None, :2])
            target["keypoints"] = torch.cat([inside, torch.ones(2, keypoints, 1)], 2)
        targets.append(target)
    return images, targets


def measure_detection_step(model, images, targets) -> dict:
    """Backward MACs, saved elements and saved int64 elements of one real training step (losses summed)."""
    owned = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in owned and storage.nbytes():
            seen[storage.data_ptr()] = (storage.nbytes() // t.element_size(), t.dtype == torch.int64)
        return t

    model.train()
    torch.manual_seed(0)
    with saved_tensors_hooks(pack, lambda t: t):
        losses = model([i.clone() for i in images], [dict(t) for t in targets])
    with FlopCounterMode(display=False, custom_mapping=grouped_correction()) as counter:
        sum(losses.values()).backward()
    model.zero_grad(set_to_none=True)
    return {"backward_macs": counter.get_total_flops() // 2,
            "saved_elements": sum(n for n, _ in seen.values()),
            "saved_indices": sum(n for n, index in seen.values() if index)}


def build(name):
    detection = detection_models()
    torch.manual_seed(0)
    return getattr(detection, name)(weights=None, weights_backbone=None, num_classes=3, **MODELS[name][0])


#: small inputs where the model takes a size (SSDlite resizes to its own 320), and what its targets hold
SMALL = dict(min_size=64, max_size=64)
MODELS = {"fasterrcnn_mobilenet_v3_large_fpn": (SMALL, {}),
          "retinanet_resnet50_fpn": (SMALL, {}),
          "fcos_resnet50_fpn": (SMALL, {}),
          "ssdlite320_mobilenet_v3_large": ({}, {}),
          "maskrcnn_resnet50_fpn": (SMALL, {"masks": True}),
          "keypointrcnn_resnet50_fpn": ({**SMALL, "num_keypoints": 3}, {"keypoints": 3})}


def test_the_measured_step_is_the_same_on_the_same_images_and_targets():
    """The oracle itself: seeded, two readings of a step agree, and it does work."""
    model = build(next(iter(MODELS)))
    images, targets = images_and_targets()
    first = measure_detection_step(model, images, targets)
    assert first == measure_detection_step(model, images, targets)
    assert first["backward_macs"] > 0 and first["saved_elements"] > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_a_detection_training_step_agrees_with_the_measured_one(name):
    model = build(name)
    images, targets = images_and_targets(**MODELS[name][1])
    torch.manual_seed(0)
    step = profile(model, (images,), targets=targets, training=True).training
    want = measure_detection_step(model, images, targets)
    assert step.complete, step.untracked
    assert dict(backward_macs=step.backward_macs, saved_elements=step.saved_elements,
                saved_indices=step.saved_indices) == want
