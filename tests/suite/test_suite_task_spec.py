"""A model folder's ``task_specs.json``: round trip, and readable differences between a trained and a current spec."""

import json
from dataclasses import replace

from gato.suite.task_spec import (
    TASK_SPECS_FILE,
    ActionSpec,
    ObservationField,
    TaskSpec,
    load_task_specs,
    save_task_specs,
    spec_differences,
)

# BabyAI as it was tokenized before one-token-per-cell (147 values of up to 1024) and as the suite has it now.
OLD_GRID = TaskSpec(
    "babyai",
    (ObservationField("mission", "text"), ObservationField("grid", "discrete", shape=(7, 7, 3))),
    ActionSpec("discrete", 1, num_values=7),
    domain="babyai",
)
NEW_GRID = replace(
    OLD_GRID,
    observations=(
        ObservationField("mission", "text"),
        ObservationField("grid", "discrete", shape=(7, 7), num_values=198),
    ),
)
TORQUE = TaskSpec(
    "pendulum",
    (ObservationField("state", "continuous", shape=(3,)),),
    ActionSpec("continuous", 1, low=-2.0, high=2.0),
    domain="classic_control",
)


def test_specs_round_trip_through_the_folder(tmp_path):
    path = save_task_specs([NEW_GRID, TORQUE], tmp_path)
    assert path == tmp_path / TASK_SPECS_FILE and set(json.loads(path.read_text())) == {"babyai", "pendulum"}
    assert load_task_specs(tmp_path) == {"babyai": NEW_GRID, "pendulum": TORQUE}


def test_a_folder_without_the_file_has_no_specs(tmp_path):
    assert load_task_specs(tmp_path) == {}


def test_differences_name_the_field_and_both_encodings():
    assert spec_differences(OLD_GRID, NEW_GRID) == [
        "observation 'grid': discrete (7, 7, 3), 1024 values → discrete (7, 7), 198 values"
    ]
    wider = replace(TORQUE, action=ActionSpec("continuous", 1, low=-1.0, high=1.0))
    assert spec_differences(TORQUE, wider) == [
        "action: continuous ×1, no μ-law, clipped to [-2.0, 2.0] → continuous ×1, no μ-law, clipped to [-1.0, 1.0]"
    ]
    renamed = replace(TORQUE, observations=(ObservationField("obs", "continuous", shape=(3,)),))
    assert spec_differences(TORQUE, renamed) == [
        "observation 'obs': absent → continuous (3,), μ-law",
        "observation 'state': continuous (3,), μ-law → absent",
    ]


def test_same_tokens_are_no_difference():
    # The domain only groups results, μ-law means nothing to discrete values, and fields of different kinds are
    # laid out kind by kind whatever their order in the spec: none of these changes a single token.
    assert spec_differences(TORQUE, replace(TORQUE, domain="other")) == []
    grid = ObservationField("grid", "discrete", shape=(7, 7), num_values=198)
    assert (
        spec_differences(
            NEW_GRID,
            replace(NEW_GRID, observations=(ObservationField("mission", "text"), replace(grid, mu_law=False))),
        )
        == []
    )
    assert spec_differences(NEW_GRID, replace(NEW_GRID, observations=NEW_GRID.observations[::-1])) == []
    assert spec_differences(NEW_GRID, TaskSpec.from_json(NEW_GRID.to_json())) == []


def test_a_changed_field_order_is_a_difference():
    two = (ObservationField("a", "continuous", shape=(1,)), ObservationField("b", "continuous", shape=(1,)))
    first = TaskSpec("t", two, ActionSpec("discrete", 1, num_values=2))
    swapped = replace(first, observations=two[::-1])
    assert spec_differences(first, swapped) == ["observation order: ['a', 'b'] → ['b', 'a']"]
