"""What ``torch.autocast`` does on the CPU in the running release: which operators it casts, and to what.

Autocast registers a kernel under the ``AutocastCPU`` dispatch key for a few operators and lets every other
one fall through (it then runs in the dtype of its inputs, by PyTorch's type promotion). Each registered
operator has one cast policy, read from ``aten/src/ATen/autocast_mode.cpp`` (``TORCH_LIBRARY_IMPL(aten,
AutocastCPU, m)``):

- ``lower``: its floating inputs are cast to the autocast dtype (bfloat16 on the CPU by default) and it
  computes in it: convolutions, linear, the matrix products, attention, ``prelu``;
- ``fp32``: its floating inputs are cast to float32 (losses, 3-D pools, reflection and replication pads,
  linear algebra, FFTs);
- ``promote``: its inputs are cast to the widest floating dtype among them (``cat``, ``stack``).

A cast makes a new tensor (a new storage) unless the input already has that dtype; a float32 leaf that
needs a gradient (a parameter) is cast once per autocast region and the copy reused (autocast's cache).
Batch norm, layer norm, softmax, GELU and the other activations are not on the CPU's lists: they run in
whatever dtype they are given. The lists are one release's (:data:`LISTS`); a test compares them with the
operators the running release registers (``torch._C._dispatch_get_registrations_for_dispatch_key``).

>>> policy("conv2d"), policy("cross_entropy_loss"), policy("cat"), policy("softmax")
('lower', 'fp32', 'promote', None)
"""

from __future__ import annotations

import torch

from convcost.torch.runtime import release

_LOWER = ("conv1d conv1d.padding conv2d conv2d.padding conv3d conv3d.padding bmm mm linalg_vecdot baddbmm addmm "
          "_addmm_activation addbmm linear _convolution.deprecated matmul conv_tbc mkldnn_rnn_layer conv_transpose1d "
          "conv_transpose2d.input conv_transpose3d.input prelu scaled_dot_product_attention "
          "_native_multi_head_attention")
_FP32 = ("avg_pool3d binary_cross_entropy grid_sampler polar prod prod.dim_int quantile quantile.scalar nanquantile "
         "nanquantile.scalar stft stft.center cdist grid_sampler_2d _grid_sampler_2d_cpu_fallback grid_sampler_3d "
         "trace view_as_complex cholesky cholesky_inverse cholesky_solve inverse lu_solve orgqr ormqr pinverse "
         "max_pool3d max_unpool2d max_unpool3d adaptive_avg_pool3d reflection_pad1d reflection_pad2d "
         "replication_pad1d replication_pad2d replication_pad3d mse_loss cosine_embedding_loss nll_loss nll_loss2d "
         "hinge_embedding_loss poisson_nll_loss smooth_l1_loss cross_entropy_loss l1_loss huber_loss "
         "margin_ranking_loss soft_margin_loss triplet_margin_loss multi_margin_loss ctc_loss.IntList "
         "ctc_loss.Tensor kl_div multilabel_margin_loss binary_cross_entropy_with_logits fft_fft fft_ifft fft_fft2 "
         "fft_ifft2 fft_fftn fft_ifftn fft_rfft fft_irfft fft_rfft2 fft_irfft2 fft_rfftn fft_irfftn fft_hfft "
         "fft_ihfft linalg_cond linalg_cond.p_str linalg_matrix_rank linalg_matrix_rank.tol_tensor "
         "linalg_matrix_rank.atol_rtol_tensor linalg_matrix_rank.atol_rtol_float linalg_solve linalg_cholesky "
         "linalg_svdvals linalg_eigvals linalg_eigvalsh linalg_inv linalg_householder_product linalg_tensorinv "
         "linalg_tensorsolve fake_quantize_per_tensor_affine geqrf _lu_with_info qr svd triangular_solve "
         "fractional_max_pool2d fractional_max_pool3d adaptive_max_pool3d multilabel_margin_loss_forward linalg_qr "
         "linalg_cholesky_ex linalg_svd linalg_eig linalg_eigh linalg_lstsq linalg_inv_ex")
_PROMOTE = "stack cat index_copy"

#: the CPU lists of each release they are proven for: ``{release: {operator (aten name.overload): policy}}``
#: (2.13; another release takes the newest proven one's until its own are read and tested)
LISTS = {(2, 13): {**dict.fromkeys(_LOWER.split(), "lower"), **dict.fromkeys(_FP32.split(), "fp32"),
                   **dict.fromkeys(_PROMOTE.split(), "promote")}}


def policy(op: str | None):
    """The cast policy of the aten operator ``op`` (``"conv2d"``, ``"linear"``; without ``aten::``) under the
    CPU's autocast in the running release (the newest proven one's lists past them): ``"lower"``, ``"fp32"``,
    ``"promote"``, or None for an operator autocast lets through."""
    if op is None:
        return None
    lists = LISTS.get(release()) or LISTS[max(LISTS)]
    return lists.get(op) or lists.get(op.split(".")[0])


def call_policy(name: str):
    """The cast policy of the Python function or method called ``name`` (``cross_entropy``, ``prod``,
    ``fft_rfft``), by the aten operator it calls: the names differ by a ``_loss`` suffix at most (and
    ``grid_sample``); None for one autocast lets through.

    >>> call_policy("cross_entropy"), call_policy("mse_loss"), call_policy("exp")
    ('fp32', 'fp32', None)
    """
    return policy(name) or policy(f"{name}_loss") or (policy("grid_sampler") if name == "grid_sample" else None)


def registered() -> set:
    """The operators the running release registers an ``AutocastCPU`` kernel for (what :data:`LISTS` must
    name), without their ``aten::`` prefix."""
    found = torch._C._dispatch_get_registrations_for_dispatch_key("AutocastCPU")
    return {name.removeprefix("aten::") for name in found}


def state(device: str = "cpu"):
    """The autocast dtype in force for ``device`` where ``profile`` runs, or None when autocast is off there."""
    if device != "cpu" or not torch.is_autocast_enabled(device):
        return None
    return torch.get_autocast_dtype(device)
