"""config.yaml -> typed settings -> CLI overrides; bad keys and values are named."""
import pytest

from tdn.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, parse_override


def test_shipped_config_equals_the_typed_defaults():
    assert load_config(DEFAULT_CONFIG_PATH).to_dict() == Config().to_dict()


def test_overrides_win_and_are_typed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_segments: 16\npipeline:\n  max_wait_ms: 5\n")
    cfg = load_config(path, dict([parse_override("model.num_segments=4"), parse_override("app.auth=u:p")]))
    assert cfg.model.num_segments == 4 and cfg.app.auth == "u:p"
    assert cfg.pipeline.max_wait_ms == 5.0 and isinstance(cfg.pipeline.max_wait_ms, float)


@pytest.mark.parametrize("text,message", [
    ("model:\n  segments: 8\n", "unknown config key 'model.segments'; allowed in 'model': weights,"),
    ("modle:\n  arch: resnet50\n", "unknown config section 'modle'; allowed: model, pipeline, app, train, cluster"),
    ("cluster:\n  port: 0\n", "'cluster.port' must satisfy 1 <= port <= 65535"),
    ("cluster:\n  health_timeout_s: 0\n", "'cluster.health_timeout_s' must satisfy 0 < health_timeout_s <= 600"),
    ("cluster:\n  cels: 2\n", "unknown config key 'cluster.cels'; allowed in 'cluster': address,"),
    ("model:\n  arch: resnet3\n", "'model.arch' must be one of resnet18, resnet34, resnet50, resnet101"),
    ("model:\n  num_segments: eight\n", "'model.num_segments' must be an integer"),
    ("pipeline:\n  cache_segments: 1\n", "'pipeline.cache_segments' must be true or false"),
    ("model:\n  arch: null\n", "'model.arch' may not be null"),
    ("model: [1, 2]\n", "section 'model' must be a mapping"),
    ("model: {arch: [\n", "not valid YAML"),
])
def test_bad_config_names_the_key_and_what_is_allowed(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("nope.yaml")

