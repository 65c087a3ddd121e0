"""A detection model's training step (issue 26, item 3): ``profile(model, images, targets=..., training=True)``.

The oracle is PyTorch's step on the same images and targets: torchvision's detection models take a list of
images and a list of target dicts in training mode and return their losses; the step is the sum of those
losses, backward. ``FlopCounterMode`` counts the backward (torch 2.13's grouped weight-gradient overcount
divided out, as :func:`convcost.torch.measure_training.grouped_correction` does), saved-tensor hooks count what the
forward keeps, each storage once, parameters and buffers left out, int64 storages apart. The forward samples
proposals and anchors at random, so each reading is seeded the same. torchvision's C++ ops do not load against
this torch: ``nms`` is :func:`greedy_nms` here and ``roi_align`` its own Python function, run eagerly (torchvision
compiles it with ``torch.compile`` on first use, and what a compiled graph keeps for backward is the compiler's
choice, not the model's). The six models run on small images with fewer proposals and RoIs; their tests are
marked slow (tens of seconds each on a busy machine). A toy model (no torchvision) checks the same reading quickly:
its shapes follow the target boxes' values, what it cannot count is listed, and bad targets get one error.
"""

import importlib.util
import inspect
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.autograd.graph import saved_tensors_hooks  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import grouped_correction  # noqa: E402
from convcost.torch.runtime.private import import_torchvision  # noqa: E402


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
            extent = boxes[:, None, 2:] - boxes[:, None, :2]
            inside = boxes[:, None, :2] + torch.rand(2, keypoints, 2, generator=g) * extent
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


#: small inputs where the model takes a size (SSDlite resizes to its own 320), fewer proposals and RoIs in the
#: R-CNNs, and what each model's targets hold
SMALL = dict(min_size=64, max_size=64)
RCNN = dict(SMALL, rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50, box_batch_size_per_image=32)
MODELS = {"fasterrcnn_mobilenet_v3_large_fpn": (RCNN, {}),
          "retinanet_resnet50_fpn": (SMALL, {}),
          "fcos_resnet50_fpn": (SMALL, {}),
          "ssdlite320_mobilenet_v3_large": ({}, {}),
          "maskrcnn_resnet50_fpn": (RCNN, {"masks": True}),
          "keypointrcnn_resnet50_fpn": (dict(RCNN, num_keypoints=3), {"keypoints": 3})}


@pytest.mark.slow  # torchvision's detection models: seconds each, tens on a busy machine
def test_the_measured_step_is_the_same_on_the_same_images_and_targets():
    """The oracle itself: seeded, two readings of a step agree, and it does work."""
    model = build(next(iter(MODELS)))
    images, targets = images_and_targets()
    first = measure_detection_step(model, images, targets)
    assert first == measure_detection_step(model, images, targets)
    assert first["backward_macs"] > 0 and first["saved_elements"] > 0


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_model_is_left_as_it_was_after_a_detection_step():
    """Its state, its modes and its next real forward, in training mode (seeded) and in eval mode; and the
    random state."""
    import copy

    model = build("fasterrcnn_mobilenet_v3_large_fpn")
    model.eval()
    before = copy.deepcopy(model)
    images, targets = images_and_targets()
    torch.manual_seed(1)
    profile(model, (images,), targets=targets, training=True)
    after_profile = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after_profile, torch.rand(3))  # profile drew nothing from the caller's random state
    assert not model.training and all(not m.training for m in model.modules())
    state, kept = model.state_dict(), before.state_dict()
    assert state.keys() == kept.keys() and all(torch.equal(state[k], kept[k]) for k in state)
    with torch.no_grad():
        for m in (model, before):
            m.train()
        torch.manual_seed(0)
        losses = model([i.clone() for i in images], [dict(t) for t in targets])
        torch.manual_seed(0)
        assert losses == before([i.clone() for i in images], [dict(t) for t in targets])
        for m in (model, before):
            m.eval()
        found, want = model(images), before(images)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(found, want) for k in a)


class Toy(torch.nn.Module):
    """A model whose training forward takes targets: the mean square of its features inside each first box,
    and, with ``unread``, a call whose backward convcost cannot count."""

    def __init__(self, unread=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.unread = unread

    def forward(self, images, targets):
        features = self.conv(torch.stack(images))
        if self.unread:
            features = torch.linalg.matrix_exp(features)  # square matrices (8 x 8): no rule
        boxes = [t["boxes"][0].int().tolist() for t in targets]
        return {"boxes": sum(f[:, y1:y2, x1:x2].square().mean() for f, (x1, y1, x2, y2) in zip(features, boxes))}


def toy_data():
    images = [torch.rand(3, 8, 8), torch.rand(3, 8, 8)]
    targets = [{"boxes": torch.tensor([[1.0, 2.0, 5.0, 6.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[0.0, 0.0, 3.0, 8.0]]), "labels": torch.tensor([2])}]
    return images, targets


def test_a_toy_step_with_targets_agrees_with_the_measured_one():
    """No torchvision: a forward whose shapes follow the target boxes' values."""
    model = Toy()
    images, targets = toy_data()
    report = profile(model, (images,), targets=targets, training=True)
    step = report.training
    assert step.complete and any("targets given" in n for n in report.notes)
    assert dict(backward_macs=step.backward_macs, saved_elements=step.saved_elements,
                saved_indices=step.saved_indices) == measure_detection_step(model, images, targets)
    assert means(report) == [(4, 4, 4), (4, 8, 3)]  # the boxes' sizes
    wider = [dict(t, boxes=torch.tensor([[0.0, 0.0, 8.0, 8.0]])) for t in targets]  # other values, other shapes
    assert means(profile(model, (images,), targets=wider, training=True)) == [(4, 8, 8)] * 2


class Counted(torch.nn.Module):
    """RetinaNet's classification loss, small: each image's loss divided by ``max(1, n)``, ``n`` the count of a
    mask's set elements (an int64 tensor, kept by the division), in a step that prices storages by their dtypes (a
    float64 factor beside the float32 model)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, images, targets):
        features = self.conv(torch.stack(images)) * images[0].double().sum()
        return {"loss": sum(f.square().sum() / max(1, (t["boxes"][0] >= 0).sum())
                            for f, t in zip(features, targets))}


def test_a_loss_divided_by_a_count_keeps_the_count_in_a_step_with_targets():
    """Call by call on the images and targets: each image's count of four is an int64 index the step keeps."""
    model = Counted()
    images, targets = toy_data()
    step = profile(model, (images,), targets=targets, training=True).training
    want = measure_detection_step(model, images, targets)
    assert step.complete and want["saved_indices"] == 2
    assert dict(backward_macs=step.backward_macs, saved_elements=step.saved_elements,
                saved_indices=step.saved_indices) == want


class Picked(torch.nn.Module):
    """What a detection forward does on data, small: pixels picked by a mask the values decide, assigned into a
    tensor of zeros made in the forward (once with nothing to assign), a sort, two losses."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, images, targets):
        pixels = self.conv(torch.stack(images)).permute(0, 2, 3, 1).reshape(-1, 4)
        boxes = torch.cat([t["boxes"] for t in targets])
        inside = pixels.sum(1) > boxes[:, 0].mean() / 100
        picked = pixels[inside]
        rows = torch.zeros(len(pixels), 4)
        rows[torch.where(inside)[0]] = picked
        rows[torch.where(inside & ~inside)[0]] = picked[:0]
        scores, _ = self.fc(rows).sum(1).sort(descending=True)
        return {"top": scores[:5].sum(), "picked": picked.square().mean()}


def test_masks_assignments_sorts_and_empty_tensors_in_a_step_with_targets():
    """The fc's input needs a gradient through the assignment; the sort keeps its indices, the assignment its
    index, the mask itself; the empty assignment does no work."""
    model = Picked()
    images, targets = toy_data()
    report = profile(model, (images,), targets=targets, training=True)
    step = report.training
    assert step.complete and any("1 calls on empty tensors" in n for n in report.notes)
    want = measure_detection_step(model, images, targets)
    assert want["saved_indices"] > 2 * 8 * 8  # the sort's 128 and the assignment's index
    assert dict(backward_macs=step.backward_macs, saved_elements=step.saved_elements,
                saved_indices=step.saved_indices) == want


def means(report):
    return [row.input_shapes[0] for row in report.rows if row.op.endswith("mean")]


def test_what_a_step_with_targets_cannot_count_is_listed():
    step = profile(Toy(unread=True), (toy_data()[0],), targets=toy_data()[1], training=True).training
    assert not step.complete
    assert [op for op, *_ in step.untracked] == ["torch.linalg_matrix_exp"]


@pytest.mark.parametrize(("change", "says"), [
    (dict(training=False), "training=True"),
    (dict(targets={"boxes": torch.zeros(1, 4)}), "list of dicts"),
    (dict(targets=[{"boxes": torch.zeros(1, 4)}]), "1 targets for 2 images"),
    (dict(targets=[{"boxes": torch.zeros(4)}, {"boxes": torch.zeros(1, 4)}]), "targets[0]['boxes'] has shape (4,)"),
    (dict(targets=[{"boxes": torch.zeros(1, 4, dtype=torch.long)}] * 2), "floating (k, 4)"),
    (dict(targets=[{"boxes": torch.zeros(2, 4), "labels": torch.ones(3, dtype=torch.long)}] * 2),
     "targets[0]['labels'] has shape (3,): 2 boxes"),
    (dict(targets=[{"boxes": [[0, 0, 1, 1]]}] * 2), "targets[0]['boxes'] is list"),
    (dict(inputs=((3, 8, 8),)), "a tensor or a list of tensors"),
])
def test_targets_that_cannot_be_a_training_steps_get_one_clear_error(change, says):
    from convcost.errors import ConvcostError

    images, targets = toy_data()
    call = dict(inputs=(images,), targets=targets, training=True)
    call.update(change)
    with pytest.raises(ConvcostError, match=r".*".join(map(_escaped, says.split("\n")))):
        profile(Toy(), call.pop("inputs"), **call)


def _escaped(text):
    import re

    return re.escape(text)
