"""The names settings and commands choose from, importable without torch.

:mod:`tdn.config` (read before torch is imported) and the command line take their choices from
here; the modules that give the names a meaning are tested to define exactly these
(``tests/test_registry.py``): :data:`tdn.model.ARCHS` and ``MODELS``, :data:`tdn.model.VARIANTS`,
:data:`tdn.inference.DTYPES`, :data:`tdn.sampling.VIEWS`.
"""
from __future__ import annotations

AUTO = "auto"  # device, precision, backend: chosen from the machine at run time
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")
VARIANTS = ("tdn", "tsn", "stdm", "ltdm", "tsm")
PRECISIONS = ("fp32", "bf16", "fp16")  # compute precisions
CPU_PRECISIONS = ("fp32", "bf16")  # fp16 needs CUDA
PRECISION_CHOICES = (AUTO, *PRECISIONS)  # auto: fp16 on CUDA, bf16 on CPU
DEVICES = (AUTO, "cpu", "cuda")  # auto: cuda if present
# inference engines (tdn.engines); auto: the fastest measured for the device (tdn/engine_choice.yaml)
ENGINES = ("torch", "onnxruntime", "openvino", "tensorrt")
ENGINE_CHOICES = (AUTO, *ENGINES)
# engine -> the Python package it needs (the pyproject extra of the same name installs it)
ENGINE_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "onnxruntime"}
BACKENDS = (AUTO, "dali", "cpu")  # preprocessing; auto: dali on a CUDA machine
VIEWS = ("1x1", "10x3")  # test views: temporal clips x spatial crops
DATA_FORMATS = ("video", "frames")  # TDN list files: one video per row, or a folder of frames
