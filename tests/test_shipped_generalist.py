"""The generalist shipped in the repository (`models/gato-generalist`, issue #18 §2): it loads offline with the four
loaders, its `task_specs.json` matches the suite, and its recorded greedy rollout replays exactly.

The checks are functions of a folder (`scripts/ship_generalist.py`), run on the shipped folder and, each with its failing
case, on a tiny folder that the script ships from a tiny run: a changed suite spec fails naming the task and the field,
changed weights fail the rollout replay, and a folder above the size limit is refused. The README's example plays."""

import ast
import json
import re
import runpy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHIPPED = ROOT / "models" / "gato-generalist"
SHIP = runpy.run_path(str(ROOT / "scripts" / "ship_generalist.py"))
ROLLOUT_STEPS = 30


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, save_tiny_checkpoint):
    """A run folder as `gato train` + `gato eval` leave it, with an untrained gato-tiny trained on two suite tasks."""
    from gato.episodes.manifest import write_model_manifest
    from gato.suite.registry import get_task
    from gato.suite.task_spec import save_task_specs

    path = tmp_path_factory.mktemp("run") / "run"
    save_tiny_checkpoint(path, 128)
    save_task_specs([get_task("cartpole").spec, get_task("pendulum").spec], path)
    (path / "eval_results.json").write_text(
        json.dumps(
            {
                "model": "somewhere/checkpoints/checkpoint-1",
                "episodes_per_task": 1,
                "tasks": [],
                "domains": {},
                "summary": {},
                "captions": None,
                "text": None,
            }
        )
    )
    write_model_manifest(path)
    (path / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (path / "checkpoints" / "checkpoint-1" / "model.safetensors").write_text("x")
    return path


@pytest.fixture(scope="module")
def tiny_shipped(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "gato-generalist"
    threads = torch.get_num_threads()
    try:
        SHIP["main"](
            [str(tiny_run), "--out", str(out), "--repo-id", "someone/tiny", "--max-steps", str(ROLLOUT_STEPS)]
        )
    finally:
        torch.set_num_threads(threads)
    return out


def copy_of(folder, tmp_path):
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "copy"))


# --- the shipped folder --------------------------------------------------------------------


def test_shipped_generalist_loads_with_the_four_loaders():
    SHIP["check_loaders"](SHIPPED)


def test_shipped_generalist_task_specs_match_the_suite():
    SHIP["check_task_specs"](SHIPPED)


def test_shipped_generalist_replays_its_recorded_greedy_rollout():
    SHIP["check_regression_rollout"](SHIPPED)


def test_shipped_generalist_plays_the_readme_example(capsys):
    """The README's five lines run as written and the agent plays acrobot far above a random policy (-500)."""
    code = re.search(r"## Play with the shipped generalist\n.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    threads = torch.get_num_threads()
    try:
        exec(compile(code, "README generalist example", "exec"), {})
    finally:
        torch.set_num_threads(threads)  # the example sets one thread for the whole process
    returns = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(returns) == 3 and min(returns) > -150, returns


def test_shipped_generalist_carries_its_whole_transfer_study_and_its_card_shows_it():
    """Every held-out task of the suite, every arm and K filled, none of them a pretraining task; plot and card."""
    from gato.evaluation.transfer_report import KINDS, PLOT_FILE, STUDY_DIR, read_results
    from gato.suite.registry import HELD_OUT_TASKS
    from gato.suite.task_spec import load_task_specs

    study = read_results(SHIPPED / STUDY_DIR)
    assert study is not None and set(study["tasks"]) == set(HELD_OUT_TASKS)
    assert not set(HELD_OUT_TASKS) & set(load_task_specs(SHIPPED))  # never pretrained on
    for task, entry in study["tasks"].items():
        assert entry["prompt_only"]["normalized_score"] is not None, task
        for kind in KINDS:
            assert sorted(int(k) for k in entry[kind]) == study["settings"]["episodes"], (task, kind)
    assert (SHIPPED / STUDY_DIR / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (SHIPPED / "README.md").read_text()
    assert "## Transfer to held-out tasks" in card and f"]({STUDY_DIR}/{PLOT_FILE})" in card
    assert f"](models/gato-generalist/{STUDY_DIR}/{PLOT_FILE})" in README.read_text()


def test_shipped_generalist_fits_in_the_repository():
    SHIP["check_size"](SHIP["folder_bytes"](SHIPPED), str(SHIPPED))


# --- the checks, on a tiny folder the script ships ---------------------------------------------------------------


def test_the_script_ships_a_folder_that_passes_every_check(tiny_run, tiny_shipped):
    from gato.episodes.manifest import read_manifest, verify_manifest
    from gato.hub_cards import upload_plan

    files = set(upload_plan(tiny_shipped))
    assert {"model.safetensors", "config.json", "task_specs.json", "README.md", "regression_rollout.json"} <= files
    assert not any(name.startswith("checkpoints/") for name in files)
    assert "someone/tiny" in (tiny_shipped / "README.md").read_text()
    verify_manifest(tiny_shipped)
    assert "README.md" not in read_manifest(tiny_shipped)  # the model manifest: the card may be edited later
    record = json.loads((tiny_shipped / "regression_rollout.json").read_text())
    assert record["task"] == "cartpole" and record["seed"] == 0 and record["max_steps"] == ROLLOUT_STEPS
    assert record["dtype"] == "float32" and record["threads"] == 1 and record["prompt_tokens"] == 32
    assert 1 <= record["steps"] == len(record["actions"]) <= ROLLOUT_STEPS
    assert record["return"] == float(record["steps"])  # cartpole pays 1 a step
    assert set(action for action in record["actions"]) <= {0, 1}
    SHIP["check_loaders"](tiny_shipped)
    SHIP["check_task_specs"](tiny_shipped)
    replay = SHIP["check_regression_rollout"](tiny_shipped)
    assert replay["actions"] == record["actions"] and replay["return"] == record["return"]
    assert SHIP["folder_bytes"](tiny_shipped) < SHIP["MAX_FOLDER_BYTES"]


def test_shipping_again_replaces_the_folder_and_names_what_it_kept(tiny_run, tiny_shipped, tmp_path, capsys):
    folder = copy_of(tiny_shipped, tmp_path)
    (folder / "performance_profile.png").write_bytes(b"\x89PNG")  # of an earlier run, not of this one
    (folder / "eval_results.json").write_text("stale")
    SHIP["ship"](tiny_run, folder, max_steps=ROLLOUT_STEPS)
    assert f"kept from the earlier {folder}, not part of this run: performance_profile.png" in capsys.readouterr().err
    assert (folder / "eval_results.json").read_text() == (tiny_run / "eval_results.json").read_text()
    assert (folder / "regression_rollout.json").read_text() == (tiny_shipped / "regression_rollout.json").read_text()


def test_a_ship_whose_checks_fail_leaves_the_earlier_folder_as_it_was(tiny_run, tiny_shipped, tmp_path, monkeypatch):
    import shutil

    from gato.episodes.manifest import file_sha256

    shipped = tmp_path / "shipped"
    folder = Path(shutil.copytree(tiny_shipped, shipped / "gato-generalist"))
    before = {path.name: file_sha256(path) for path in folder.iterdir()}
    run = Path(shutil.copytree(tiny_run, tmp_path / "newer-run"))
    (run / "eval_results.md").write_text("# a newer evaluation\n")  # what the failed ship would have written

    def broken_loaders(path, task):
        raise ValueError(f"{path}: does not load")

    monkeypatch.setitem(SHIP["_ship_folder"].__globals__, "check_loaders", broken_loaders)
    with pytest.raises(ValueError, match="does not load"):
        SHIP["ship"](run, folder, max_steps=ROLLOUT_STEPS)
    assert {path.name: file_sha256(path) for path in folder.iterdir()} == before
    assert [path.name for path in shipped.iterdir()] == ["gato-generalist"]  # no staging folder left


def test_a_changed_suite_spec_fails_naming_the_task_and_the_field(tiny_shipped):
    from gato.suite.registry import list_tasks

    suite = {task.name: task.spec for task in list_tasks()}
    state = suite["pendulum"].observations[0]
    changed = replace(state, shape=(state.shape[0] + 1,))
    suite["pendulum"] = replace(suite["pendulum"], observations=(changed, *suite["pendulum"].observations[1:]))
    with pytest.raises(
        ValueError, match=rf"task_specs.json differs from the suite: pendulum: observation '{state.name}'"
    ):
        SHIP["check_task_specs"](tiny_shipped, suite)
    suite["cartpole"] = replace(suite["cartpole"], domain="elsewhere")  # same tokens, another spec
    lines = SHIP["task_spec_mismatches"](tiny_shipped, suite)
    assert lines[0] == "cartpole: domain: 'classic_control' → 'elsewhere'" and lines[1].startswith("pendulum: ")


def test_a_task_the_suite_lacks_or_a_missing_spec_file_fails(tiny_shipped, tmp_path):
    from gato.suite.registry import list_tasks

    suite = {task.name: task.spec for task in list_tasks() if task.name != "pendulum"}
    assert SHIP["task_spec_mismatches"](tiny_shipped, suite) == [
        "pendulum: not a task of the suite (the shipped model plays suite tasks)"
    ]
    folder = copy_of(tiny_shipped, tmp_path)
    (folder / "task_specs.json").unlink()
    with pytest.raises(ValueError, match="task_specs.json: missing or empty"):
        SHIP["check_task_specs"](folder)


def test_changed_weights_fail_the_rollout_replay(tiny_shipped, tmp_path):
    """The final layer norm negated: every logit changes sign, so the first greedy action flips (2 actions)."""
    from gato.episodes.manifest import write_model_manifest
    from safetensors.torch import load_file, save_file

    folder = copy_of(tiny_shipped, tmp_path)
    weights = load_file(folder / "model.safetensors")
    for name in ("model.norm.weight", "model.norm.bias"):
        weights[name] = -weights[name]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    write_model_manifest(folder)  # a re-shipped folder with other weights, not a damaged one
    recorded = json.loads((folder / "regression_rollout.json").read_text())["actions"]
    with pytest.raises(ValueError, match=rf"no longer matches regression_rollout.json: step 0 acts {1 - recorded[0]}"):
        SHIP["check_regression_rollout"](folder)


def test_a_changed_record_or_a_missing_one_fails_the_rollout_check(tiny_shipped, tmp_path):
    folder = copy_of(tiny_shipped, tmp_path)
    path = folder / "regression_rollout.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "return": record["return"] + 1}))
    with pytest.raises(ValueError, match=rf"{record['steps']} steps for a return of {record['return']!r}, recorded"):
        SHIP["check_regression_rollout"](folder)
    path.write_text(json.dumps({**record, "seed": "zero"}))
    with pytest.raises(ValueError, match="field 'seed' must be a int"):
        SHIP["check_regression_rollout"](folder)
    path.unlink()
    with pytest.raises(ValueError, match="regression_rollout.json: missing"):
        SHIP["check_regression_rollout"](folder)


def test_a_run_above_the_size_limit_is_refused_naming_its_size_and_nothing_is_written(tiny_run, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"the files to ship: \d+\.\d MB \([\d,]+ bytes\), above the 1 MB"):
        SHIP["ship"](tiny_run, out, max_bytes=10**6)
    assert not out.exists()


def test_a_run_whose_specs_differ_from_the_suite_is_not_shipped(tiny_run, tmp_path, capsys):
    import shutil

    from gato.suite.registry import get_task
    from gato.suite.task_spec import ActionSpec, save_task_specs

    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    spec = get_task("cartpole").spec
    save_task_specs([replace(spec, action=ActionSpec("discrete", size=1, num_values=3))], run)
    out = tmp_path / "out"
    assert SHIP["main"]([str(run), "--out", str(out)]) == 2
    assert "cartpole: action: discrete ×1, 3 values → discrete ×1, 2 values" in capsys.readouterr().err
    assert not out.exists()


def test_a_rollout_task_the_model_was_not_trained_on_is_refused_before_anything_is_written(tiny_run, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match=r"task: 'acrobot' is not a task the model was trained on \(cartpole, pendulum\)"
    ):
        SHIP["ship"](tiny_run, out, task="acrobot")
    assert not out.exists()


# --- shipping a checkpoint of a run still training ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """`checkpoints/checkpoint-1` of a 1-step `gato train` of gato-tiny on two cartpole episodes."""
    from gato.episodes.generate import generate
    from gato.training.config import TrainingConfig
    from gato.training.run_training import run_training

    root = tmp_path_factory.mktemp("training")
    generate("cartpole", episodes_per_task=2, out=root / "data", seed=0, captions=0, progress=False)
    config = TrainingConfig(
        data=str(root / "data"),
        output_dir=str(root / "run"),
        max_steps=1,
        batch_size=2,
        max_length=128,
        warmup_steps=0,
        eval_batches=1,
        num_workers=0,
        save_steps=1,
        report_to="none",
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        run_training(config)
    finally:
        torch.set_num_threads(threads)
    return root / "run" / "checkpoints" / "checkpoint-1"


@pytest.fixture
def eval_dir(tmp_path):
    path = tmp_path / "evals"
    path.mkdir()
    (path / "eval_results.json").write_text(
        json.dumps(
            {
                "model": "somewhere/checkpoints/checkpoint-1",
                "episodes_per_task": 1,
                "tasks": [],
                "domains": {},
                "summary": {},
                "captions": None,
                "text": None,
            }
        )
    )
    (path / "normalized_scores.png").write_bytes(b"\x89PNG")
    return path


def test_a_checkpoint_ships_as_the_model_folder_its_training_states_left_behind(tiny_checkpoint, eval_dir, tmp_path):
    from gato.episodes.manifest import file_sha256
    from safetensors.torch import load_file

    before = {path.name: file_sha256(path) for path in tiny_checkpoint.iterdir()}
    assert {"optimizer.safetensors", "scheduler.json", "checkpoint.json"} <= set(before)
    out = tmp_path / "shipped"
    record = SHIP["ship"](tiny_checkpoint, out, eval_dir=eval_dir, max_steps=ROLLOUT_STEPS)
    assert {path.name: file_sha256(path) for path in tiny_checkpoint.iterdir()} == before  # only read
    names = {path.name for path in out.iterdir()}
    assert {"configuration_gato.py", "modeling_gato.py", "normalized_scores.png", "eval_results.json"} <= names
    assert not names & {"optimizer.safetensors", "scheduler.json", "checkpoint.json", "rng_state_0.safetensors"}
    assert "AutoModelForCausalLM" in json.loads((out / "config.json").read_text())["auto_map"]
    trained, shipped = load_file(tiny_checkpoint / "model.safetensors"), load_file(out / "model.safetensors")
    shipped.setdefault("lm_head.weight", shipped["model.embed_tokens.weight"])  # tied: either name is saved
    trained.setdefault("lm_head.weight", trained.get("model.embed_tokens.weight"))
    for name, tensor in trained.items():
        assert torch.equal(shipped[name], tensor), name
    assert json.loads((out / "regression_rollout.json").read_text()) == record
    SHIP["check_regression_rollout"](out)


def test_a_changed_checkpoint_is_not_shipped(tiny_checkpoint, eval_dir, tmp_path):
    import shutil

    checkpoint = Path(shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint-1"))
    with (checkpoint / "model.safetensors").open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"checkpoint-1/model.safetensors: its sha256 differs from checkpoint.json"):
        SHIP["ship"](checkpoint, out, eval_dir=eval_dir)
    assert not out.exists()


def test_a_missing_run_or_a_misplaced_eval_dir_is_refused(tiny_run, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert SHIP["main"]([str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert f"run_dir: {tmp_path / 'nothing'} is not a folder" in capsys.readouterr().err
    assert SHIP["main"]([str(tiny_run), "--out", str(out), "--eval-dir", str(tmp_path)]) == 2
    assert "eval_dir: only for a checkpoint" in capsys.readouterr().err
    assert SHIP["main"]([str(tiny_checkpoint), "--out", str(out), "--eval-dir", str(tmp_path)]) == 2
    assert f"eval_dir: {tmp_path} has no eval_results.json" in capsys.readouterr().err
    (tmp_path / "eval_results.json").write_text(json.dumps({"model": "run/checkpoints/checkpoint-6000"}))
    assert SHIP["main"]([str(tiny_checkpoint), "--out", str(out), "--eval-dir", str(tmp_path)]) == 2
    assert "evaluated 'run/checkpoints/checkpoint-6000', not checkpoint-1" in capsys.readouterr().err
    # This checkpoint's results, but not what `gato eval` writes: the field is named, no bare KeyError.
    (tmp_path / "eval_results.json").write_text(json.dumps({"model": "run/checkpoints/checkpoint-1", "tasks": []}))
    assert SHIP["main"]([str(tiny_checkpoint), "--out", str(out), "--eval-dir", str(tmp_path)]) == 2
    assert f"eval_dir: {tmp_path / 'eval_results.json'}: no 'episodes_per_task' field" in capsys.readouterr().err
    (tmp_path / "eval_results.json").write_text('{"model": "run/checkpoints/checkpoint-1",')
    assert SHIP["main"]([str(tiny_checkpoint), "--out", str(out), "--eval-dir", str(tmp_path)]) == 2
    assert f"eval_dir: {tmp_path / 'eval_results.json'} is not valid JSON" in capsys.readouterr().err
    assert not out.exists()
