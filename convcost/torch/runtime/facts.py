"""Every fact of a torch release or a device that convcost's counts rest on, with where it comes from.

A forward count is release-free: it is arithmetic on shapes. What a training step keeps for its backward,
which kernel runs and what ``FlopCounterMode`` counts are facts of one release on one device, read from
PyTorch's source and proven by a test that runs the release. Each :class:`Fact` names its upstream source,
the convcost code that replays it (dotted names), the releases it is proven for, the devices, and the test
that proves it; the oracle suites run those tests on every release in :data:`convcost.torch.runtime.PROVEN`.
A new release is one pass through this list: run the tests, then widen ``releases`` or fix the replay.

>>> from convcost.torch.runtime.facts import FACTS, fact
>>> fact("grouped weight-gradient overcount").source
'torch/utils/flop_counter.py conv_backward_flop; fixed upstream by pytorch PR 183405'
>>> len({f.name for f in FACTS}) == len(FACTS)
True
"""

from __future__ import annotations

import dataclasses

#: what every fact below is proven on, until a release changes one of them
_ALL = ((2, 13), (2, 14), (2, 15))
_CPU = ("cpu",)


@dataclasses.dataclass(frozen=True)
class Fact:
    """One release- or device-specific fact: ``replay`` are dotted names of the code that relies on it,
    ``test`` is ``tests/<file>.py::<test>``, ``releases`` the ``(major, minor)`` it is proven for."""

    name: str
    what: str
    source: str
    replay: tuple
    test: str
    releases: tuple = _ALL
    devices: tuple = _CPU


FACTS = (
    Fact("einsum replay",
         "torch.einsum's permutes, diagonals, sums, reshapes (view or copy) and bmm pairs, contracted left to "
         "right: what a step keeps and its backward products",
         "aten/src/ATen/native/Linear.cpp einsum, sumproduct_pair; TensorIterator's layout of a product",
         ("convcost.primitives.einsum_plan.plan", "convcost.torch.bindings.matmul._einsum_layout"),
         "tests/test_profile_training.py::test_einsum_in_a_step"),
    Fact("oneDNN LSTM workspace",
         "a float32 nn.LSTM without projection trains through mkldnn_rnn_layer, whose uint8 workspace the step "
         "keeps; with a projection, cell by cell",
         "aten/src/ATen/native/mkldnn/RNN.cpp (mkldnn_rnn_layer, the workspace oneDNN sizes)",
         ("convcost.primitives.recurrent.workspace", "convcost.primitives.recurrent.good_ld",
          "convcost.primitives.recurrent.LSTM"),
         "tests/test_training_lstm.py::test_the_workspace_is_onednns"),
    Fact("fused attention choice",
         "F.scaled_dot_product_attention runs the CPU's fused flash kernel on operands of one head size with "
         "unit last strides and no dropout, else the math path (other saved tensors, other backward work): "
         "in 2.13 4-D ones of one batch and head count; from 2.14 3-D ones too, and one key and value head for "
         "every query head (matmul.FLASH_RULE, set by runtime.install)",
         "aten/src/ATen/native/transformers/sdp_utils_cpp.cpp (use_flash_attention_cpp); attention.cpp",
         ("convcost.primitives.matmul._flash", "convcost.primitives.matmul.FLASH_RULE",
          "convcost.primitives.matmul.Attention.fused", "convcost.torch.runtime.install",
          "convcost.torch.layouts.last_stride_one", "convcost.torch.runtime.private.attention_math"),
         "tests/test_runtime.py::test_the_fused_attention_choice_is_the_running_releases"),
    Fact("multi_head_attention_forward steps",
         "nn.MultiheadAttention's forward is F.multi_head_attention_forward's Python body: projections, "
         "head reshapes, products, softmax and dropout, each with its own saved tensors",
         "torch/nn/functional.py multi_head_attention_forward",
         ("convcost.primitives.multihead.MultiheadAttention", "convcost.torch.runtime.private.descend"),
         "tests/test_training.py::test_multihead_attention"),
    Fact("output layouts",
         "the strides of a call's output (channels last kept or not, views as PyTorch makes them), read by "
         "running the view calls on meta tensors",
         "aten/src/ATen/native/TensorShape.cpp (computeStride), c10/core/MemoryFormat.h; "
         "torch/_prims_common suggest_memory_format",
         ("convcost.torch.layouts.output_layout", "convcost.torch.layouts.run_view", "convcost.torch.layouts.simulate"),
         "tests/test_profile_training.py::test_a_channels_last_input_is_read_as_one"),
    Fact("in-place clones",
         "an in-place activation whose backward reads its input (silu_, hardswish_, hardsigmoid_, gelu_, "
         "relu6_) makes autograd keep a copy of it",
         "tools/autograd/derivatives.yaml (the formulas of the in-place activations)",
         ("convcost.torch.bindings.activation.ActivationBinding.inplace_clone",),
         "tests/test_profile_training.py::test_a_step_is_what_pytorch_does"),
    Fact("CPU autocast cast policies",
         "under torch.autocast on the CPU, conv, linear, the matrix products, attention and prelu cast their "
         "floating inputs to the autocast dtype; losses, 3-D pools, reflection/replication pads, linear algebra "
         "and FFTs to float32; cat and stack to the widest; every other operator (batch norm, layer norm, "
         "softmax, GELU ...) runs in its inputs' dtype; a float32 parameter's cast is cached for the region",
         "aten/src/ATen/autocast_mode.cpp (TORCH_LIBRARY_IMPL(aten, AutocastCPU, m); cached_cast)",
         ("convcost.torch.runtime.autocast.LISTS", "convcost.torch.runtime.autocast.policy",
          "convcost.torch.precision.Precision.cast", "convcost.torch.precision.Precision.copy"),
         "tests/test_profile_autocast.py::test_the_autocast_lists_are_the_running_releases",
         releases=((2, 13),)),
    Fact("saved dtypes under mixed precision",
         "what a step keeps beside its operands has the parameters' dtype for the norms (float32 statistics "
         "of a bfloat16 input under autocast), float32 for the fused attention's log-sum-exp, the input's for "
         "dropout's noise; a convolution keeps its weight's low-precision copy, a linear layer only for its "
         "input's gradient",
         "aten/src/ATen/native/cpu (batch_norm, layer_norm, group_norm mixed-type kernels); "
         "tools/autograd/derivatives.yaml (convolution, addmm, mm)",
         ("convcost.torch.bindings.norm.BatchNormBinding", "convcost.torch.bindings.conv._kernel_copies",
          "convcost.torch.bindings.linear.LinearBinding", "convcost.torch.bindings.matmul.AttentionBinding"),
         "tests/test_profile_autocast.py::test_the_zoo_sample_under_mixed_precision",
         releases=((2, 13),)),
    Fact("embedding_bag's saved indices on the CPU",
         "F.embedding_bag's CPU kernel keeps offset2bag (indices + 1 elements) in mean and max modes only, and "
         "max_indices of one element per bag in sum and mean modes; its meta kernel, which a call without a row "
         "is run on, keeps offset2bag (indices elements) in every mode and max_indices in max mode only",
         "aten/src/ATen/native/EmbeddingBag.cpp (_embedding_bag_cpu_impl_out, make_offset2bag); "
         "torch/_meta_registrations.py (meta_embedding_bag)",
         ("convcost.torch.runtime.meta_gaps.embedding_bag_gap", "convcost.torch.runtime.meta_gaps.gap"),
         "tests/test_profile_transformers_cases3.py::test_embedding_bag_keeps_what_the_cpu_kernel_keeps",
         releases=((2, 13),)),
    Fact("complex parts read as properties",
         "x.real and x.imag reach a TorchFunctionMode as their property's __get__ (a method-wrapper), not as "
         "torch.real / torch.imag: the call-by-call reading maps them back to those views",
         "torch/csrc/autograd/python_variable.cpp (THPVariable_get_real, THPVariable_get_imag: "
         "handle_torch_function_getter)",
         ("convcost.torch.runtime.private.PROPERTY_READS", "convcost.torch.trace_calls.event_of"),
         "tests/test_profile_transformers_cases2.py::test_fourier_transforms",
         releases=((2, 13),)),
    Fact("grouped weight-gradient overcount",
         "FlopCounterMode counts a grouped convolution's weight gradient G times over",
         "torch/utils/flop_counter.py conv_backward_flop; fixed upstream by pytorch PR 183405",
         ("convcost.torch.conventions.torch_backward_macs", "convcost.torch.measure_training.grouped_correction",
          "convcost.torch.runtime.probe.grouped_overcount"),
         "tests/test_training.py::test_grouped_weight_gradient_correction_by_hand"),
    Fact("fused attention in FlopCounterMode",
         "FlopCounterMode counts nothing for the CPU's fused attention kernel in 2.13 and 2.14 and counts it, "
         "forward and backward, from 2.15: probed, never assumed",
         "torch/utils/flop_counter.py (_scaled_dot_product_flash_attention_for_cpu registered in 2.15)",
         ("convcost.torch.runtime.probe.fused_attention",),
         "tests/test_runtime.py::test_the_fused_attention_probe_matches_flopcountermode"),
    Fact("vmap's batched tensors",
         "inside torch.vmap a function computes on functorch BatchedTensors, which have no storage; "
         "torch._C._functorch.is_batchedtensor (private) tells them apart, and the call-by-call reading lists "
         "the calls on them that may multiply-accumulate or need a gradient, and reads the rest as not there",
         "aten/src/ATen/functorch/BatchedTensorImpl.h; torch/_functorch/vmap.py",
         ("convcost.torch.runtime.private.batched", "convcost.torch.trace_calls.Session.vmapped"),
         "tests/test_profile_transformers_cases5.py::test_a_layer_under_vmap_is_listed"),
    Fact("DisableTorchFunction",
         "torch._C.DisableTorchFunction (private) hides the calls a shape reading makes itself from its "
         "TorchFunctionMode",
         "torch/csrc/utils/disable_torch_function.cpp",
         ("convcost.torch.runtime.private.torch_functions_off", "convcost.torch.layouts.run_view",
          "convcost.torch.layouts.simulate", "convcost.torch.trace_shapes._Session.call",
          "convcost.torch.trace_shapes._Session.module", "convcost.torch.trace_shapes._module_tensor"),
         "tests/test_profile_training.py::test_a_channels_last_input_is_read_as_one"),
    Fact("suggest_memory_format",
         "torch._prims_common.suggest_memory_format (private) gives the memory format a kernel allocates its "
         "output in",
         "torch/_prims_common/__init__.py suggest_memory_format",
         ("convcost.torch.runtime.private.suggest_memory_format", "convcost.torch.layouts.keeps_channels_last"),
         "tests/test_profile_training.py::test_a_channels_last_input_is_read_as_one"),
    Fact("the math path as an op",
         "torch.ops.aten._scaled_dot_product_attention_math (private) runs the math path where the fused "
         "kernel would run, to read what it keeps",
         "aten/src/ATen/native/native_functions.yaml _scaled_dot_product_attention_math",
         ("convcost.torch.runtime.private.attention_math",),
         "tests/test_profile_training.py::test_attention_on_strided_heads_runs_the_math_path"),
    Fact("a module's call swapped",
         "a shape reading routes each of the model's modules through its own instance attribute _call_impl "
         "(Module.__call__ is _wrapped_call_impl, which calls self._call_impl unless _compiled_call_impl is set) "
         "and reads module.weight through the _parameters and _buffers dicts Module.__getattr__ answers from; "
         "a module is swapped when its parent's _modules dict (what Module.__getattr__, ModuleList, Sequential "
         "and named_modules read children from) hands it out; readings are serialised as torch.fx tracing is",
         "torch/nn/modules/module.py Module._wrapped_call_impl, Module._call_impl, Module.__getattr__, "
         "Module.named_modules; torch/nn/modules/container.py (ModuleList, Sequential, ModuleDict)",
         ("convcost.torch.runtime.private.module_calls", "convcost.torch.runtime.private.module_body",
          "convcost.torch.trace_shapes.read_shapes", "convcost.torch.locks.TRACING"),
         "tests/test_profile_first_call.py::test_a_reading_swaps_no_class_attribute"),
    Fact("F.has_torch_function patched",
         "to run multi_head_attention_forward's own body on shapes, its __torch_function__ check is answered "
         "no once by swapping F.has_torch_function",
         "torch/nn/functional.py (has_torch_function imported from torch.overrides)",
         ("convcost.torch.runtime.private.descend",),
         "tests/test_profile_hard.py::test_multihead_attention_is_exact"),
    Fact("custom Function's apply swapped",
         "a custom torch.autograd.Function's apply runs its forward in C++ with grad disabled and makes its outputs "
         "need a gradient there, past every __torch_function__ mode; a training reading swaps the classmethod "
         "Function.apply (for its thread alone) to run the forward and read the node (the shape reading does for "
         "inference too: torch's apply hands its tensors to a C++ function that refuses a stand-in), and tells a "
         "split forward by torch's own _is_setup_context_defined",
         "torch/autograd/function.py Function.apply, _is_setup_context_defined; "
         "torch/csrc/autograd/python_function.cpp THPFunction_apply",
         ("convcost.torch.runtime.private.custom_functions", "convcost.torch.runtime.private.apply_function",
          "convcost.torch.runtime.private.defines_setup_context", "convcost.torch.custom_functions.run_forward"),
         "tests/test_profile_custom_functions.py::test_a_custom_function_is_read_as_pytorch_runs_it"),
    Fact("operators written in Python",
         "x ** y runs Tensor.__pow__'s Python body (torch's wrapper, then handle_torch_function), so a "
         "TorchFunctionMode sees Tensor.pow two frames below the forward's own binary operator; 1 - x, 1 / x, "
         "2 ** x and x // 2 reach it as the tensor's __rsub__, __rdiv__, __rpow__, __floordiv__",
         "torch/_tensor.py Tensor.__pow__, __rsub__, __rdiv__, __rpow__, __floordiv__ "
         "(_handle_torch_function_and_wrap_type_error_to_not_implemented); torch/overrides.py handle_torch_function",
         ("convcost.torch.runtime.private.OPERATOR_FRAMES", "convcost.torch.trace_calls.event_of"),
         "tests/test_profile_transformers_cases6.py::test_one_label_per_operation"),
    Fact("a stand-in's class",
         "torch.is_tensor(x) is Python's isinstance(x, torch.Tensor), which asks x.__class__; torch's C++ asks "
         "the same way (THPVariable_Check is PyObject_IsInstance: the argument parser's number tests, pybind's "
         "tensor caster, Function.apply) and then reads the object as a tensor's memory, so the shape reading's "
         "stand-in names torch.Tensor only while the builtin isinstance called from Python runs",
         "torch/__init__.py is_tensor; torch/csrc/autograd/python_variable.h THPVariable_Check; "
         "torch/csrc/utils/python_arg_parser.cpp FunctionParameter::check",
         ("convcost.torch.tensor_checks.Watch", "convcost.torch.trace_shapes.Shaped"),
         "tests/test_profile_tensor_checks.py::test_torchs_cpp_asks_a_class_as_isinstance_does", releases=((2, 13),)),
)


def fact(name: str) -> Fact:
    """The fact called ``name``."""
    found = [f for f in FACTS if f.name == name]
    if not found:
        from convcost.errors import ConvcostError

        raise ConvcostError(f"no runtime fact is called {name!r}; the facts: {', '.join(f.name for f in FACTS)}")
    return found[0]
