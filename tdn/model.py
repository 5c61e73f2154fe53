"""TDN: Temporal Difference Networks (Wang, Tong, Ji, Wu, CVPR 2021, arXiv 2012.10071).

A ResNet whose stages see a video as T segments. Each segment is a centre frame with its
L-1 neighbours (L = 5):

* the short-term module (S-TDM) stacks the L-1 RGB differences around the centre, runs them
  through a low-resolution stem and ResNet stage 1 of its own, and adds the result to the
  RGB stream after the stem and after stage 1 (``x = a*x + b*diff``);
* the long-term module (L-TDM) in every block of stages 2-4 (the paper's stages 3-5) gates
  features with bidirectional, multi-scale differences between adjacent segments
  (``F + F * G``), followed by a depthwise temporal convolution over T (kernel 3, initialised
  as a temporal shift).

Block naming follows torchvision (``layer1.0.conv1``) so that ImageNet ResNet files map by
name; the official TDN names are converted by :func:`tdn.checkpoint.remap_official`.

The network is split where the streaming cache needs it: :meth:`TDN.forward_segments` is
everything that sees one segment at a time (stem, stage 1, S-TDM), :meth:`TDN.forward_temporal`
is the rest (stages 2-4 with L-TDM and the temporal conv, head, average consensus).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tdn.meta import ModelMeta

# arch -> (block type, blocks per stage)
ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}

# variant -> which temporal parts it has: (S-TDM, L-TDM, temporal conv)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "tdn": (True, True, True),
    "tsn": (False, False, False),
    "stdm": (True, False, False),
    "ltdm": (False, True, False),
    "tsm": (False, False, True),
}


def official_fusion_weights(num_segments: int) -> tuple[float, float]:
    """(RGB, difference) weights of the S-TDM fusion as the official release sets them."""
    return (0.5, 0.5) if num_segments == 8 else (0.75, 0.25)


@dataclass(frozen=True)
class TDNConfig:
    """Everything that defines a TDN network; stored in this project's checkpoints."""

    arch: str = "resnet50"
    layers: tuple[int, int, int, int] | None = None  # blocks per stage; None: the arch's standard counts
    num_segments: int = 8
    num_classes: int = 400
    variant: str = "tdn"
    segment_length: int = 5  # L: frames per segment, the centre at index L // 2
    fusion: tuple[float, float] | None = None  # (rgb, diff) weights; None: official rule for T
    dropout: float = 0.5
    ltdm_reduction: int = 16
    shift_fold_div: int = 8  # temporal conv starts as a shift of 1/8 of channels each way

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")
        if self.num_segments < 1 or self.num_classes < 1:
            raise ValueError(f"num_segments and num_classes must be >= 1, got {self.num_segments}, {self.num_classes}")
        if self.segment_length < 2:
            raise ValueError(f"segment_length must be >= 2 (differences need two frames), got {self.segment_length}")
        if self.layers is None:
            object.__setattr__(self, "layers", ARCHS[self.arch][1])
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if self.fusion is None:
            object.__setattr__(self, "fusion", official_fusion_weights(self.num_segments))
        object.__setattr__(self, "fusion", tuple(float(w) for w in self.fusion))
        if len(self.fusion) != 2 or self.fusion[0] <= 0 or self.fusion[1] < 0:
            raise ValueError(f"fusion must be (rgb_weight > 0, diff_weight >= 0), got {self.fusion}")

    @property
    def block(self) -> str:
        return ARCHS[self.arch][0]

    @property
    def has_stdm(self) -> bool:
        return VARIANTS[self.variant][0]

    @property
    def has_ltdm(self) -> bool:
        return VARIANTS[self.variant][1]

    @property
    def has_temporal_conv(self) -> bool:
        return VARIANTS[self.variant][2]

    def to_dict(self) -> dict:
        return asdict(self)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


class TemporalConv(nn.Module):
    """Depthwise convolution over the segment axis, kernel 3, zero padding.

    ``out[t] = w0 * x[t-1] + w1 * x[t] + w2 * x[t+1]`` per channel. The ``(N*T, C, H, W)``
    input is viewed (not copied) as an image ``(N, C, T, H*W)`` and convolved by a depthwise
    ``(3, 1)`` kernel: for channels_last input that view is channels_last memory too, so no
    tensor is permuted and the fast depthwise 2D convolution does the work. The weight has
    ``nn.Conv1d``'s shape ``(C, 1, 3)``; it starts as a temporal shift: ``C/fold_div``
    channels read the next segment, as many the previous one, the rest stay in place.
    """

    def __init__(self, channels: int, num_segments: int, fold_div: int = 8):
        super().__init__()
        self.num_segments = num_segments
        fold = channels // fold_div
        weight = torch.zeros(channels, 1, 3)
        weight[:fold, 0, 2] = 1.0  # these channels take x[t+1]
        weight[fold : 2 * fold, 0, 0] = 1.0  # these take x[t-1]
        weight[2 * fold :, 0, 1] = 1.0  # the rest are unchanged
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return self._forward_by_shifts(x)
        c, h, w = x.shape[1:]
        # -1, not a batch size read from the shape: an export traces the latter as a constant
        x = x.view(-1, self.num_segments, c, h * w)  # (N*T, C, H, W) -> (N, T, C, H*W)
        x = x.permute(0, 2, 1, 3)  # (N, T, C, H*W) -> (N, C, T, H*W), a view
        kernel = self.weight.view(c, 1, 3, 1)  # (C, 1, 3) -> (C, 1, 3, 1)
        out = F.conv2d(x, kernel, padding=(1, 0), groups=c)
        return out.permute(0, 2, 1, 3).reshape(-1, c, h, w)  # (N, C, T, H*W) -> (N*T, C, H, W), a view if channels_last

    def _forward_by_shifts(self, x: torch.Tensor) -> torch.Tensor:
        """The same sum from the neighbours along the ``N*T`` axis, set to zero across window edges: what
        ONNX runtimes run fastest (their own layouts turn the view above into two transposes, a fifth
        of TDN-R50's window under OpenVINO; BENCHMARKS.md). Slower than :meth:`forward` in PyTorch."""
        c, t = x.shape[1], self.num_segments
        # Each sample's segment index (N*T, 1, 1, 1), derived from x's values (times 0): the tracer bakes
        # anything built from x's shape into a constant for the traced batch size.
        segment = ((x[:, :1, :1, :1] * 0).view(-1, t) + torch.arange(t, dtype=x.dtype, device=x.device)).view(-1, 1, 1, 1)
        # where, not a product with a 0/1 mask: an inf in one window must not become NaN in the next
        previous = torch.where(segment > 0, torch.roll(x, 1, 0), 0.0)  # x[t-1], zero for t = 0
        following = torch.where(segment < t - 1, torch.roll(x, -1, 0), 0.0)  # x[t+1], zero for t = T-1
        w = self.weight.view(c, 3, 1, 1)  # (C, 1, 3) -> (C, 3, 1, 1)
        return previous * w[:, 0] + x * w[:, 1] + following * w[:, 2]


class LongTermTDM(nn.Module):
    """Long-term temporal difference module (the official ``mSEModule``).

    On reduced features ``R`` (C/16 channels), differences to the adjacent segment after a
    depthwise 3x3 ``conv_next``: forward ``D_f[t] = conv_next(R)[t+1] - R[t]`` and backward
    ``D_b[t] = conv_next(R)[t-1] - R[t]``, zero where the neighbour is missing. Each ``D`` is
    averaged with two refinements of itself (a 3x3 conv at full resolution, and one after a
    2x2 average pool, upsampled back), expanded to C channels and squashed:
    ``G = sigmoid(expand((D + fine(D) + coarse(D)) / 3)) - 1/2``. Output ``F + F * (G_f + G_b) / 2``.
    """

    def __init__(self, channels: int, num_segments: int, reduction: int = 16):
        super().__init__()
        self.num_segments = num_segments
        r = channels // reduction
        self.reduce = nn.Conv2d(channels, r, 1, bias=False)
        self.reduce_bn = _bn(r)
        self.conv_next = nn.Conv2d(r, r, 3, padding=1, groups=r, bias=False)
        self.scale1_conv = nn.Conv2d(r, r, 3, padding=1, bias=False)
        self.scale1_bn = _bn(r)
        self.scale2_conv = nn.Conv2d(r, r, 3, padding=1, bias=False)
        self.scale2_bn = _bn(r)
        self.expand = nn.Conv2d(r, channels, 1, bias=False)
        self.expand_bn = _bn(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t = self.num_segments
        reduced = self.reduce_bn(self.reduce(x))  # (N*T, r, H, W)
        r = reduced.shape[1]
        shifted = self.conv_next(reduced).view(-1, t, r, h, w)  # (N*T, r, H, W) -> (N, T, r, H, W)
        reduced = reduced.view(-1, t, r, h, w)
        memory_format = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        # Zero where the neighbour is missing: after the last segment, before the first. Built by
        # padding, not by writing into a view of a zeroed buffer: exporters (ONNX) drop such writes.
        forward = F.pad(shifted[:, 1:] - reduced[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))  # (N, T-1, r, H, W) -> (N, T, r, H, W)
        backward = F.pad(shifted[:, :-1] - reduced[:, 1:], (0, 0, 0, 0, 0, 0, 1, 0))
        # 2 x (N, T, r, H, W) -> (2*N, T, r, H, W) -> (2*N*T, r, H, W): the forward half, then the backward half
        diff = torch.cat((forward, backward)).flatten(0, 1).contiguous(memory_format=memory_format)
        coarse = self.scale2_bn(self.scale2_conv(half_resolution(diff)))  # the 2x2 mean
        coarse = F.interpolate(coarse, size=(h, w), mode="nearest")
        fine = self.scale1_bn(self.scale1_conv(diff))
        # F + F * ((s_f - 1/2) + (s_b - 1/2)) / 2  ==  F + F * (s_f + s_b - 1) / 2
        return torch.addcmul(x, x, self._gate_sum((diff + coarse).add_(fine)), value=0.5)

    def _gate_sum(self, total: torch.Tensor) -> torch.Tensor:
        """``s_f + s_b - 1`` ``(N*T, C, H, W)`` with ``s = sigmoid(expand_bn(expand(total / 3)))`` on the
        forward and backward halves of ``total`` (the sum of the three scales, ``(2*N*T, r, H, W)``)."""
        gate_forward, gate_backward = torch.sigmoid(self.expand_bn(self.expand(total / 3.0))).chunk(2)
        return (gate_forward + gate_backward).sub_(1.0)


class TemporalParts(nn.Module):
    """The temporal modules inserted after a block's first convolution (either may be absent)."""

    def __init__(self, channels: int, cfg: TDNConfig):
        super().__init__()
        self.ltdm = LongTermTDM(channels, cfg.num_segments, cfg.ltdm_reduction) if cfg.has_ltdm else None
        self.tconv = TemporalConv(channels, cfg.num_segments, cfg.shift_fold_div) if cfg.has_temporal_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ltdm is not None:
            x = self.ltdm(x)
        if self.tconv is not None:
            x = self.tconv(x)
        return x


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 temporal: TemporalParts | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1)
        self.bn1 = _bn(planes)
        self.temporal = temporal
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1)
        self.bn2 = _bn(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        if self.temporal is not None:
            out = self.temporal(out)
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return F.relu(out, inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 temporal: TemporalParts | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1)
        self.bn1 = _bn(planes)
        self.temporal = temporal
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1)
        self.bn3 = _bn(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        if self.temporal is not None:
            out = self.temporal(out)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return F.relu(out, inplace=True)


class Downsample(nn.Sequential):
    def __init__(self, inplanes: int, outplanes: int, stride: int):
        super().__init__(nn.Conv2d(inplanes, outplanes, 1, stride=stride), _bn(outplanes))


def _make_stage(block: type, inplanes: int, planes: int, blocks: int, stride: int,
                cfg: TDNConfig | None) -> tuple[nn.Sequential, int]:
    """A ResNet stage; with ``cfg`` given, every block gets the variant's temporal parts."""
    outplanes = planes * block.expansion
    downsample = Downsample(inplanes, outplanes, stride) if stride != 1 or inplanes != outplanes else None
    temporal = (lambda: TemporalParts(planes, cfg)) if cfg is not None and (cfg.has_ltdm or cfg.has_temporal_conv) else (lambda: None)
    layers = [block(inplanes, planes, stride, downsample, temporal())]
    layers += [block(outplanes, planes, temporal=temporal()) for _ in range(1, blocks)]
    return nn.Sequential(*layers), outplanes


class ShortTermTDM(nn.Module):
    """Short-term temporal difference module: the RGB differences around each segment's centre.

    The L-1 differences of consecutive frames are stacked on the channel axis
    (``3*(L-1)`` channels), average-pooled by 2, and run through a stem (7x7/2 conv, BN,
    ReLU, 3x3/2 max-pool) and a ResNet stage 1 of their own; both outputs are fused into
    the RGB stream by the parent (:meth:`TDN.forward_segments`).
    """

    def __init__(self, block: type, blocks: int, segment_length: int):
        super().__init__()
        self.conv = nn.Conv2d(3 * (segment_length - 1), 64, 7, stride=2, padding=3, bias=False)
        self.bn = _bn(64)
        self.layer1, _ = _make_stage(block, 64, 64, blocks, 1, None)
        self.register_buffer("pooled_differences", pooled_differences_kernel(segment_length), persistent=False)

    def stem(self, segments: torch.Tensor) -> torch.Tensor:
        # The differences and the 2x2 mean are both linear: one 2x2/2 convolution of the stacked frames,
        # in float32 (frames differ by little); faster than a resize and a subtraction in PyTorch and
        # under OpenVINO, where those cost layout reorders (BENCHMARKS.md, "Inference engines").
        frames = segments.flatten(1, 2).float()  # (M, L, 3, H, W) -> (M, 3*L, H, W)
        diffs = F.conv2d(frames, self.pooled_differences.float(), stride=2)  # -> (M, 3*(L-1), H/2, W/2)
        memory_format = torch.channels_last if self.conv.weight.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        x = diffs.to(self.conv.weight.dtype, memory_format=memory_format)
        x = F.relu(self.bn(self.conv(x)), inplace=True)
        return F.max_pool2d(x, 3, stride=2, padding=1)


def pooled_differences_kernel(segment_length: int) -> torch.Tensor:
    """The ``(3*(L-1), 3*L, 2, 2)`` kernel of a stride-2 convolution that maps L stacked RGB frames to
    the 2x2 means of their L-1 consecutive differences: channel ``3*k + c`` is frame k+1 minus frame k
    in colour c."""
    kernel = torch.zeros(3 * (segment_length - 1), 3 * segment_length, 2, 2)
    for k in range(segment_length - 1):
        for c in range(3):
            kernel[3 * k + c, 3 * (k + 1) + c] = 0.25
            kernel[3 * k + c, 3 * k + c] = -0.25
    return kernel


def half_resolution(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(x, 2)`` of an ``(N, C, H, W)`` tensor, computed as bilinear resampling by 1/2.

    At a factor of exactly 1/2 (no corner alignment, no antialias) each output sample sits at
    the centre of a 2x2 input block and weights its four pixels by 1/4: the same mean, with
    the same floor for odd sizes, but several times faster than ``avg_pool2d`` on CPU.
    """
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


def fuse_upsampled(rgb: torch.Tensor, diff: torch.Tensor, weights: tuple[float, float]) -> torch.Tensor:
    """``a * rgb + b * nearest_upsample(diff)`` with ``diff`` resized to ``rgb``'s ``(h, w)``.

    When ``rgb`` is exactly twice ``diff``'s size (every supported input size), the nearest
    2x upsampling is a broadcast over 2x2 blocks, so the upsampled copy is never materialised
    and the weighted sum is one ``lerp`` pass. An ONNX export gets the plain products and sum
    instead: its ``lerp`` is a ``Where`` of two branches over 6-D blocks, which cost OpenVINO a third
    of TDN-R50's window (the plain form costs eager PyTorch 11 % there: BENCHMARKS.md).
    """
    a, b = weights
    if torch.onnx.is_in_onnx_export():
        return rgb * a + F.interpolate(diff, size=rgb.shape[-2:], mode="nearest") * b
    h, w = rgb.shape[-2:]
    if (h, w) == (2 * diff.shape[2], 2 * diff.shape[3]):
        blocks = rgb.unflatten(3, (w // 2, 2)).unflatten(2, (h // 2, 2))  # (N, C, h, w) -> (N, C, h/2, 2, w/2, 2)
        out = torch.lerp(blocks, diff[:, :, :, None, :, None], b / (a + b)).flatten(4, 5).flatten(2, 3)
    else:
        out = torch.lerp(rgb, F.interpolate(diff, size=(h, w), mode="nearest"), b / (a + b))
    return out if a + b == 1 else out.mul_(a + b)


class TDN(nn.Module):
    """TDN-ResNet. Input ``(N, T, L, 3, H, W)`` normalised RGB, output logits ``(N, classes)``.

    Inputs are cast to the parameters' dtype (a bf16 or fp16 inference model computes in it
    throughout; train in fp32 under ``torch.autocast``); logits are float32 whatever it is.
    ``meta``: what the weights need besides themselves (labels, input size, normalisation),
    declared with them when a file is loaded; defaults for a new model.
    """

    engine = "torch"  # what runs it (tdn.engines.EngineModel runs the same interface elsewhere)

    def __init__(self, cfg: TDNConfig, *, meta: ModelMeta | None = None):
        super().__init__()
        self.cfg = cfg
        self.engine_choice = "torch"  # why this engine (tdn.load_model records it)
        self.meta = meta if meta is not None else ModelMeta()
        block = BasicBlock if cfg.block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = _bn(64)
        self.stdm = ShortTermTDM(block, cfg.layers[0], cfg.segment_length) if cfg.has_stdm else None
        self.layer1, width = _make_stage(block, 64, 64, cfg.layers[0], 1, None)
        self.layer2, width = _make_stage(block, width, 128, cfg.layers[1], 2, cfg)
        self.layer3, width = _make_stage(block, width, 256, cfg.layers[2], 2, cfg)
        self.layer4, width = _make_stage(block, width, 512, cfg.layers[3], 2, cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(width, cfg.num_classes)
        self.num_features = width
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)

    # -- precision and layout ------------------------------------------------------------
    @property
    def precision(self) -> str:
        """Compute precision, set by the parameters' dtype ("fp32", "bf16" or "fp16")."""
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.fc.weight.dtype]

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.fc.weight.device, self.fc.weight.dtype, non_blocking=True)

    @property
    def channels_last(self) -> bool:
        return self.conv1.weight.is_contiguous(memory_format=torch.channels_last)

    # -- the per-segment part ------------------------------------------------------------
    def forward_segments(self, segments: torch.Tensor) -> torch.Tensor:
        """Stem, stage 1 and S-TDM for independent segments: ``(M, L, 3, H, W)`` -> features
        ``(M, C, H/4, W/4)`` (C = 64 * expansion)."""
        return self._segments(segments, with_response=False)[0]

    def forward_segments_with_response(self, segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward_segments` and the S-TDM response per segment, ``(M, H/4, W/4)`` float32: the
        mean magnitude of the difference features fused after stage 1 (None without S-TDM)."""
        return self._segments(segments, with_response=True)

    def _segments(self, segments: torch.Tensor, *, with_response: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        segments = segments.to(self.fc.weight.device, torch.float32, non_blocking=True)  # differences in float32
        length = segments.shape[1]
        if length != self.cfg.segment_length:
            raise ValueError(f"expected {self.cfg.segment_length} frames per segment, got {length} "
                             f"(shape {tuple(segments.shape)})")
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        centre = segments[:, length // 2].to(self.fc.weight.dtype, memory_format=memory_format)  # -> (M, 3, H, W)
        x = F.relu(self.bn1(self.conv1(centre)), inplace=True)
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        response = None
        if self.stdm is None:
            x = self.layer1(x)
        else:
            diff = self.stdm.stem(segments)
            x = fuse_upsampled(x, diff, self.cfg.fusion)
            diff = self.stdm.layer1(diff)
            x = fuse_upsampled(self.layer1(x), diff, self.cfg.fusion)
            if with_response:
                response = diff.float().abs().mean(1, keepdim=True)  # (M, C, h', w') -> (M, 1, h', w')
                response = F.interpolate(response, size=x.shape[-2:], mode="nearest")[:, 0]  # -> (M, h, w)
        return x, response

    # -- the cross-segment part ----------------------------------------------------------
    def forward_temporal(self, features: torch.Tensor) -> torch.Tensor:
        """Stages 2-4 (L-TDM, temporal conv), head and average consensus.

        ``features`` ``(N, T, C, h, w)`` from :meth:`forward_segments` -> logits ``(N, classes)`` float32.
        """
        t = features.shape[1]
        if t != self.cfg.num_segments and (self.cfg.has_ltdm or self.cfg.has_temporal_conv):
            raise ValueError(f"this model was built for T={self.cfg.num_segments} segments, got {t}")
        x = self._prepare(features.flatten(0, 1))  # (N, T, C, h, w) -> (N*T, C, h, w)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.layer4(self.layer3(self.layer2(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N*T, C', h', w') -> (N*T, C')
        logits = self.fc(self.dropout(x))
        return logits.float().view(-1, t, logits.shape[1]).mean(1)  # (N*T, K) -> (N, T, K) -> (N, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 6 or x.shape[3] != 3:
            raise ValueError(f"expected input (N, T, L, 3, H, W), got shape {tuple(x.shape)}")
        features = self.forward_segments(x.flatten(0, 1))  # (N, T, L, 3, H, W) -> (N*T, L, 3, H, W)
        return self.forward_temporal(features.unflatten(0, (-1, x.shape[1])))  # (N*T, C, h, w) -> (N, T, C, h, w)


MODELS: dict[str, Callable[..., TDN]] = {}  # arch -> keyword-only builder


def register_model(arch: str) -> Callable[[Callable[..., TDN]], Callable[..., TDN]]:
    """Register a builder under ``arch`` (its ``ARCHS`` name) for :func:`create_model` and the CLI's choices."""
    def register(builder: Callable[..., TDN]) -> Callable[..., TDN]:
        MODELS[arch] = builder
        return builder
    return register


def create_model(arch: str = "resnet50", **kwargs) -> TDN:
    """A randomly initialised TDN in train mode from the builder registered as ``arch``; keyword
    arguments (``num_segments``, ``num_classes``, ``variant``, other :class:`TDNConfig` fields,
    ``meta``) go to it."""
    if arch not in MODELS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(MODELS)}")
    return MODELS[arch](**kwargs)


def _build(arch: str, *, num_segments: int = 8, num_classes: int = 400, variant: str = "tdn",
           meta: ModelMeta | None = None, **config) -> TDN:
    return TDN(TDNConfig(arch=arch, num_segments=num_segments, num_classes=num_classes, variant=variant, **config),
               meta=meta)


@register_model("resnet18")
def tdn_resnet18(**kwargs) -> TDN:
    """TDN-ResNet-18; keyword arguments as for :func:`create_model`."""
    return _build("resnet18", **kwargs)


@register_model("resnet34")
def tdn_resnet34(**kwargs) -> TDN:
    """TDN-ResNet-34; keyword arguments as for :func:`create_model`."""
    return _build("resnet34", **kwargs)


@register_model("resnet50")
def tdn_resnet50(**kwargs) -> TDN:
    """TDN-ResNet-50; keyword arguments as for :func:`create_model`."""
    return _build("resnet50", **kwargs)


@register_model("resnet101")
def tdn_resnet101(**kwargs) -> TDN:
    """TDN-ResNet-101; keyword arguments as for :func:`create_model`."""
    return _build("resnet101", **kwargs)
