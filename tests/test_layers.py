"""The real tree passes scripts/check_layers.py: tdn < pipelines < app < cli, imports point down, no circles."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_layers.py"


def test_the_project_imports_only_downwards_without_circles():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "layers point down, no circles" in done.stdout
