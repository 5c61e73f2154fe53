"""Ray is an optional extra: the single-box modules never import it (checked in a fresh interpreter,
since this test session may have imported Ray for the cluster tests)."""
from __future__ import annotations

import subprocess
import sys

from tdn.config import REPO_ROOT

SINGLE_BOX_MODULES = ["tdn", "tdn.api", "tdn.config", "pipelines.service", "pipelines.sources", "pipelines.engine",
                      "pipelines.events", "pipelines.sinks", "pipelines.clip", "app.ui", "app.sessions", "cli.main",
                      "cli.stream", "cli.app", "cli.predict", "cli.cluster"]


def test_single_box_modules_do_not_import_ray():
    code = (f"import importlib, sys\nfor name in {SINGLE_BOX_MODULES!r}:\n    importlib.import_module(name)\n"
            "print('ray' in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))[:5])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False"), result.stdout


def test_cluster_client_commands_name_an_unreachable_front_end():
    from loopback import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-m", "cli", "cluster", "status", "--url", url], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result
    assert f"tdn cluster: error: cannot reach the cluster front end at {url}/cameras" in result.stderr
    assert "Traceback" not in result.stderr
