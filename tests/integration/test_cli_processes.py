"""The ``tdn`` command as its own process: what a shell sees (exit code, stderr) and what it imports."""
from __future__ import annotations

import subprocess
import sys

from tdn.config import REPO_ROOT


def test_help_imports_neither_torch_nor_gradio_and_info_no_gradio():
    code = ("import sys\nfrom cli.main import build_parser, main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'gradio' not in sys.modules\n"
            "build_parser('info')\nassert 'gradio' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_cli_reports_a_bad_override_and_exits_2():
    proc = subprocess.run([sys.executable, "-m", "cli", "info", "--set", "model.precision=fp64"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "'model.precision' must be one of auto, fp32, bf16, fp16" in proc.stderr


def test_config_and_registry_import_without_torch():
    code = "import sys, tdn.config; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
