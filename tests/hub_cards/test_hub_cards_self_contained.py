"""A model card is complete and self-contained: it cites no file the folder lacks, its reproduce block starts with the
commands that make the data, and it shows the interval statistics and the performance profile of the evaluation."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from gato.evaluation.scores import domain_summaries, score_summary
from gato.evaluation.statistics import score_statistics
from gato.hub_cards import build_model_card
from gato.hub_cards.model_card import data_commands
from gato.training.config import TrainingConfig

FILE_NAME = re.compile(r"[\w./-]+\.(?:json|ya?ml|png|md|py|txt|safetensors)\b")


def _task(name, domain, returns):
    mean = float(np.mean(returns))
    return {
        "task": name,
        "domain": domain,
        "episodes": len(returns),
        "num_envs": 1,
        "returns": returns,
        "lengths": [5] * len(returns),
        "mean_return": mean,
        "std_return": float(np.std(returns)),
        "mean_length": 5.0,
        "expert_return": 10.0,
        "random_return": 0.0,
        "normalized_score": mean / 10,
        "success_rate": None,
        "prompt_tokens": 0,
        "seconds": 1.0,
        "actions_per_second": 5.0,
        "reprefills": 0,
        "seeds": list(range(len(returns))),
    }


def _results(tasks):
    return {
        "schema_version": 1,
        "model": "run",
        "model_type": "gato",
        "num_parameters": 1000,
        "created": "2026-12-03",
        "gato_version": "0.1.0",
        "device": "cpu",
        "processes": 1,
        "platform": "linux",
        "episodes_per_task": 4,
        "settings": {"tasks": "cartpole,pendulum", "episodes": 4, "seed": 0},
        "tasks": tasks,
        "domains": domain_summaries(tasks),
        "summary": score_summary([t["normalized_score"] for t in tasks]),
        "statistics": score_statistics(tasks, reps=100, seed=0),
        "captions": None,
        "captions_test": None,
        "text": None,
    }


@pytest.fixture(scope="module")
def run_with_data(tmp_path_factory, save_tiny_checkpoint):
    from gato.episodes.generate import generate

    root = tmp_path_factory.mktemp("card")
    data = root / "data"
    generate(
        "cartpole",
        episodes_per_task=2,
        out=data,
        seed=3,
        progress=False,
        command="gato data generate --tasks cartpole --episodes-per-task 2 --out data --seed 3",
    )
    run = root / "run"
    run.mkdir()
    save_tiny_checkpoint(run, 64)
    TrainingConfig(data=str(data), output_dir=str(run), max_steps=2, max_length=64).to_yaml(
        run / "training_config.yaml"
    )
    tasks = [
        _task("cartpole", "classic_control", [2.0, 4.0, 6.0, 8.0]),
        _task("pendulum", "classic_control", [5.0] * 4),
    ]
    (run / "eval_results.json").write_text(json.dumps(_results(tasks)))
    (run / "performance_profile.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return run


def test_the_card_cites_no_file_the_folder_does_not_hold(run_with_data):
    text = build_model_card(run_with_data).text
    assert "GATO_SPEC" not in text and "docs/" not in text
    cited = set(FILE_NAME.findall(text)) - {"README.md"}  # the card itself
    missing = sorted(name for name in cited if not (run_with_data / name).exists() and not name.startswith("scene."))
    assert not missing, f"the card cites files the folder lacks: {missing}"


def test_the_reproduce_block_makes_the_data_then_trains_then_evaluates(run_with_data):
    text = build_model_card(run_with_data).text
    block = re.search(r"To reproduce.*?```bash\n(.*?)```", text, flags=re.S).group(1).splitlines()
    assert block[0] == "gato data generate --tasks cartpole --episodes-per-task 2 --out data --seed 3"
    assert block[1].startswith("gato train --config training_config.yaml") and block[2].startswith("gato eval")


def test_a_folder_written_by_several_calls_lists_each_call_once(tmp_path):
    from gato.episodes.generate import generate

    first = "gato data generate --tasks cartpole,acrobot --episodes-per-task 2 --out data --workers 1"
    generate("cartpole,acrobot", episodes_per_task=2, out=tmp_path, progress=False, command=first)
    # A later call into the same folder (acrobot already finished: skipped) rewrites the folder's own card with its
    # line; acrobot's split card keeps the line that recorded it.
    generate("acrobot", episodes_per_task=2, out=tmp_path, progress=False, command=first.replace("1", "2"))
    assert data_commands(tmp_path.parent, {"data": str(tmp_path)}) == [first]


def test_without_data_cards_the_data_line_comes_from_the_main_job_or_says_what_is_missing(tmp_path):
    job = {"config": {"tasks": "default", "episodes_per_task": 20, "seed": 1, "captions": 200, "text": True}}
    assert data_commands(tmp_path, {"data": "nowhere"}, job) == [
        "gato data generate --tasks default --episodes-per-task 20 --out nowhere --seed 1 --captions 200 --text"
    ]
    (tmp_path / "task_specs.json").write_text(json.dumps({}))
    line = data_commands(tmp_path, {"data": "nowhere"}, None)[0]
    assert line.startswith("gato data generate --tasks default --episodes-per-task N --out nowhere")
    assert "# N: the episodes per task" in line


def test_the_card_shows_interval_statistics_and_the_performance_profile(run_with_data):
    card = build_model_card(run_with_data)
    assert "| domain | tasks | episodes | IQM | median | mean | optimality gap |" in card.text
    assert "| all | 2 | 8 |" in card.text and "stratified-bootstrap" in card.text
    assert "![Performance profile: fraction of episodes above each score](performance_profile.png)" in card.text
    metrics = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert metrics[("gato-suite", "iqm_expert_normalized_score")] == pytest.approx(0.5)
    assert metrics[("gato-suite", "iqm_expert_normalized_score_ci_low")] <= 0.5


def test_the_acting_snippet_names_a_task_the_model_plays(run_with_data, tmp_path, save_tiny_checkpoint):
    assert "load_agent(" in build_model_card(run_with_data).text
    assert f"load_agent('{run_with_data}', \"cartpole\")" in build_model_card(run_with_data).text  # first evaluated
    from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec, save_task_specs

    save_tiny_checkpoint(tmp_path, 64)
    save_task_specs(
        [
            TaskSpec(
                "my_lake",
                (ObservationField("observation", "discrete", (), num_values=16),),
                ActionSpec("discrete", num_values=4),
            )
        ],
        tmp_path,
    )
    assert f"load_agent('{tmp_path}', \"my_lake\")" in build_model_card(tmp_path).text  # learnt, not evaluated
