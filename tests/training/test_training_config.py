"""TrainingConfig: YAML round trip, overrides, and refusals that name the field."""

import pytest
from gato.training.config import TrainingConfig
from gato.training.run_training import build_model_config


def test_yaml_round_trip_keeps_every_field(tmp_path):
    config = TrainingConfig(
        preset="gato-79m", max_steps=7, task_weights={"cartpole": 2.0}, model_overrides={"hidden_size": 96}
    )
    path = tmp_path / "run.yaml"
    config.to_yaml(path)
    assert TrainingConfig.from_yaml(path) == config


def test_overrides_replace_only_given_fields():
    config = TrainingConfig(max_steps=10, batch_size=4).with_overrides(max_steps=20, batch_size=None)
    assert (config.max_steps, config.batch_size) == (20, 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_steps", 0),
        ("batch_size", -1),
        ("prompt_probability", 1.5),
        ("learning_rate", 0.0),
        ("mixed_precision", "fp8"),
        ("adam_beta2", 1.0),
    ],
)
def test_bad_value_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})


def test_an_unknown_preset_or_model_field_is_refused_with_the_close_name():
    with pytest.raises(ValueError, match=r"preset must be one of gato-79m, .*got 'gato-huge'"):
        TrainingConfig(preset="gato-huge").check_model_settings()
    # A config keeps any keyword: without the check, the typo trains the preset's size and is saved beside it.
    with pytest.raises(
        ValueError, match=r"model_overrides: GatoConfig has no field 'hidden_sise' \(did you mean 'hidden_size'\?\)"
    ):
        TrainingConfig(model_overrides={"hidden_size": 64, "hidden_sise": 64}).check_model_settings()
    # Fields, settable properties and the keywords transformers keeps privately are all taken.
    overrides = {"hidden_size": 64, "rope_theta": 500.0, "output_attentions": True, "attn_implementation": "eager"}
    TrainingConfig(model_overrides=overrides).check_model_settings()
    # gato train refuses it where it builds the model, before any step.
    with pytest.raises(ValueError, match="model_overrides: GatoConfig has no field 'hidden_sise'"):
        build_model_config(TrainingConfig(model_overrides={"hidden_sise": 64}))


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

    config = TrainingConfig.from_yaml(
        Path(__file__).resolve().parents[2] / "training" / "recipes" / "cpu_multitask.yaml"
    )
    config.validate()
    generated = {task.name for task in resolve_tasks("default")} | {"captions", "text"}
    assert set(config.task_weights) == generated
    assert GatoConfig.from_preset(config.preset, **config.model_overrides).num_hidden_layers == 3


def test_each_dagger_rounds_recipe_is_the_last_plus_the_splits_the_script_collects_for_it():
    """cpu_multitask_dagger.yaml = cpu_multitask.yaml + weights for the `<task>_dagger` splits that
    scripts/cpu_multitask.sh collects with `--dagger-model`, and cpu_multitask_dagger2.yaml = that + weights for
    the `--dagger-round 2` splits and more steps; everything else the same."""
    import re
    from dataclasses import replace
    from pathlib import Path

    from gato.episodes.dagger import dagger_split

    root = Path(__file__).resolve().parents[2]
    recipes = [
        TrainingConfig.from_yaml(root / "training" / "recipes" / name)
        for name in ("cpu_multitask.yaml", "cpu_multitask_dagger.yaml", "cpu_multitask_dagger2.yaml")
    ]
    script = (root / "scripts" / "cpu_multitask.sh").read_text()
    calls = re.findall(
        r"--tasks (\S+) --episodes-per-task \d+ \\\n\s+--dagger-model \S+ --expert-mix \S+( --dagger-round \d+)?",
        script,
    )
    rounds = [(name, int(flag.split()[-1]) if flag else 1) for name, flag in calls]
    collected = [{dagger_split(name, n) for name, r in rounds if r == n} for n in (1, 2)]
    assert collected == [
        {"babyai_pickup_loc_dagger", "atari_breakout_dagger"},
        {"babyai_pickup_loc_dagger2", "atari_breakout_dagger2"},
    ]
    for before, after, new_splits in zip(recipes, recipes[1:], collected):
        after.validate()
        assert set(after.task_weights) == set(before.task_weights) | new_splits
        assert all(after.task_weights[name] == weight for name, weight in before.task_weights.items())
        assert replace(after, task_weights={}, max_steps=1) == replace(before, task_weights={}, max_steps=1)
    # Round 3's steps keep round 2's sources sampled as often as round 2 sampled them (to 250 steps).
    second, third = recipes[1:]
    kept = third.max_steps * sum(second.task_weights.values()) / sum(third.task_weights.values())
    assert abs(kept - second.max_steps) < 250 and recipes[0].max_steps == second.max_steps
