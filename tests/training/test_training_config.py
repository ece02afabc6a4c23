"""TrainingConfig: YAML round trip, overrides, and refusals that name the field."""

import pytest

from gato.training.config import TrainingConfig


def test_yaml_round_trip_keeps_every_field(tmp_path):
    config = TrainingConfig(preset="gato-79m", max_steps=7, task_weights={"cartpole": 2.0}, model_overrides={"hidden_size": 96})
    path = tmp_path / "run.yaml"
    config.to_yaml(path)
    assert TrainingConfig.from_yaml(path) == config


def test_overrides_replace_only_given_fields():
    config = TrainingConfig(max_steps=10, batch_size=4).with_overrides(max_steps=20, batch_size=None)
    assert (config.max_steps, config.batch_size) == (20, 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_steps", 0), ("batch_size", -1), ("prompt_probability", 1.5), ("learning_rate", 0.0), ("mixed_precision", "fp8"), ("adam_beta2", 1.0)],
)
def test_bad_value_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})


def test_wrong_type_from_yaml_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("max_steps: ten\n")
    with pytest.raises(ValueError, match="max_steps"):
        TrainingConfig.from_yaml(path)


def test_unknown_field_is_refused_and_known_ones_listed():
    with pytest.raises(ValueError, match="unknown training config field.*max_stepz"):
        TrainingConfig.from_dict({"max_stepz": 3})


def test_shipped_cpu_multitask_recipe_is_valid_and_weights_only_default_suite_data():
    """The published run's recipe (scripts/cpu_multitask.sh) loads, validates, and weights only datasets that the
    script generates: a typo in a task name would otherwise only surface after data generation."""
    from pathlib import Path

    from gato.modeling_gato import GatoConfig
    from gato.suite.registry import resolve_tasks

    config = TrainingConfig.from_yaml(Path(__file__).resolve().parents[2] / "training" / "recipes" / "cpu_multitask.yaml")
    config.validate()
    generated = {task.name for task in resolve_tasks("default")} | {"captions", "text"}
    assert set(config.task_weights) == generated
    assert GatoConfig.from_preset(config.preset, **config.model_overrides).num_hidden_layers == 3


def test_second_round_recipe_is_the_first_plus_the_dagger_splits_the_script_collects():
    """cpu_multitask_dagger.yaml = cpu_multitask.yaml + weights for the `<task>_dagger` splits that
    scripts/cpu_multitask.sh collects with `--dagger-model`; everything else the same."""
    import re
    from dataclasses import replace
    from pathlib import Path

    from gato.evaluation.dagger import dagger_split

    root = Path(__file__).resolve().parents[2]
    first = TrainingConfig.from_yaml(root / "training" / "recipes" / "cpu_multitask.yaml")
    second = TrainingConfig.from_yaml(root / "training" / "recipes" / "cpu_multitask_dagger.yaml")
    second.validate()
    script = (root / "scripts" / "cpu_multitask.sh").read_text()
    collected = {dagger_split(name) for name in re.findall(r"--tasks (\S+) --episodes-per-task \d+ \\\n\s+--dagger-model", script)}
    assert collected == {"babyai_pickup_loc_dagger", "atari_breakout_dagger"}
    assert set(second.task_weights) == set(first.task_weights) | collected
    assert all(second.task_weights[name] == weight for name, weight in first.task_weights.items())
    assert replace(second, task_weights={}) == replace(first, task_weights={})
