"""The inference form of a model: rewrites that make it fast without changing what it computes.

:func:`prepare_for_inference` (applied by :func:`tdn.load_model`) is the one step that turns a
model as defined in :mod:`tdn.model` (and as trained and saved) into the form that runs:

1. eval mode, no gradients;
2. on CPUs with oneDNN, each L-TDM as :class:`FusedGateLongTermTDM`;
3. every BatchNorm folded into the convolution before it (:func:`fold_batchnorm`, the one
   folding mechanism: the benchmark folds torchvision's ResNet with it too);
4. the device, the precision and the channels_last layout.

A prepared model has no BatchNorm left, so it is not saved (:func:`tdn.checkpoint.save_model`
refuses it): save the model as trained.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from tdn.model import LongTermTDM

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # tdn.registry.PRECISIONS


def conv_bn_pairs(root: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """``(parent, conv name, bn name)`` for every ``BatchNorm2d`` registered right after the
    ``Conv2d`` whose output it normalises (as TDN and torchvision's ResNets declare them)."""
    pairs = []
    for parent in root.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels:
                pairs.append((parent, conv_name, bn_name))
    return pairs


@torch.no_grad()
def fold_batchnorm(root: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm of :func:`conv_bn_pairs` into its convolution (which gains a bias);
    the BatchNorm becomes ``nn.Identity``. Returns ``root``."""
    if root.training:
        raise RuntimeError("fold_batchnorm() needs eval mode: the running statistics are folded")
    for parent, conv_name, bn_name in conv_bn_pairs(root):
        setattr(parent, conv_name, fuse_conv_bn_eval(getattr(parent, conv_name), getattr(parent, bn_name)))
        setattr(parent, bn_name, nn.Identity())
    return root


def _sigmoid_conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``sigmoid(conv(x))`` with ``conv``'s geometry and the given weight and bias, as one oneDNN op."""
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, conv.padding, conv.stride, conv.dilation,
                                                   conv.groups, "sigmoid", [], "")


class FusedGateLongTermTDM(LongTermTDM):
    """L-TDM whose gate sum runs as two oneDNN convolutions with the sigmoid fused (CPU inference,
    BatchNorm folded).

    The 1/3 goes into the expand weight; the backward half uses the weight and bias negated,
    ``sigmoid(-z) = 1 - sigmoid(z)``, so one subtraction gives ``s_f + s_b - 1``. That saves three
    passes over the module's largest tensors. Off the CPU, or traced for export, it computes the
    plain equation of :class:`~tdn.model.LongTermTDM`, so an exported model runs anywhere.
    """

    @classmethod
    def from_module(cls, module: LongTermTDM) -> FusedGateLongTermTDM:
        channels, reduced = module.reduce.in_channels, module.reduce.out_channels
        fused = cls(channels, module.num_segments, channels // reduced)
        fused.load_state_dict(module.state_dict())
        return fused.train(module.training)

    def _gate_sum(self, total: torch.Tensor) -> torch.Tensor:
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if total.device.type != "cpu" or exporting or not isinstance(self.expand_bn, nn.Identity):
            return super()._gate_sum(total)
        expand, half = self.expand, total.shape[0] // 2
        weight, bias = expand.weight / 3.0, expand.bias
        # (2*N*T, r, H, W) -> forward and backward halves, each (N*T, C, H, W)
        return _sigmoid_conv(total[:half], expand, weight, bias).sub_(
            _sigmoid_conv(total[half:], expand, -weight, -bias))


def _fuse_gates(root: nn.Module) -> None:
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is LongTermTDM:
                setattr(parent, name, FusedGateLongTermTDM.from_module(child))


@torch.no_grad()
def prepare_for_inference(model: nn.Module, *, device: torch.device, precision: str, rewrite: bool = True
                          ) -> nn.Module:
    """The steps of the module docstring, in place; returns ``model``. ``rewrite=False`` skips steps 2
    and 3: the model as defined, in eval mode (to save it, or to check the rewrites against it)."""
    model.eval()
    if rewrite:
        if device.type == "cpu" and torch.backends.mkldnn.is_available():
            _fuse_gates(model)
        fold_batchnorm(model)
    model.to(device=device, dtype=DTYPES[precision], memory_format=torch.channels_last)
    return model.requires_grad_(False)
