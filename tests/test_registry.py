"""tdn.registry names exactly what the modules that give the names a meaning define, and the config
reads it without importing torch."""
import subprocess
import sys

from tdn import registry
from tdn.inference import DTYPES
from tdn.model import ARCHS, MODELS, VARIANTS
from tdn.sampling import VIEWS


def test_the_light_names_match_the_heavy_registries():
    assert tuple(ARCHS) == tuple(MODELS) == registry.ARCHS
    assert tuple(VARIANTS) == registry.VARIANTS
    assert tuple(DTYPES) == registry.PRECISIONS
    assert set(registry.CPU_PRECISIONS) < set(registry.PRECISIONS)
    assert tuple(VIEWS) == registry.VIEWS


def test_config_and_registry_import_without_torch():
    code = "import sys, tdn.config; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
