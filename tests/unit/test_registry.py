"""tdn.registry names exactly what the modules that give the names a meaning define, and the config
reads it (tests/integration/test_cli_processes.py checks that it does so without torch)."""
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



def test_engine_names_match_what_runs_them():
    from tdn.engines import RUNNERS, SUPPORTED

    assert tuple(SUPPORTED) == registry.ENGINES
    assert set(RUNNERS) == set(registry.ENGINES) - {"torch"} == set(registry.ENGINE_PACKAGES)
