"""Ship the generalist: a trained, evaluated run folder → the Hub-ready folder kept in the repository (issue #18 §2).

    gato eval --model RUN --tasks generalist --episodes 50 --output-dir RUN     # results, plot and card first
    python scripts/ship_generalist.py RUN --out models/gato-generalist [--repo-id ORG/NAME] [--task cartpole]
        [--seed 0] [--max-steps 100]

A checkpoint of a run still training (``RUN/checkpoints/checkpoint-N``) ships too. Evaluate it into a folder of its
own — not into the checkpoint, which would then no longer resume (its ``checkpoint.json`` lists every file it holds)
— and name that folder::

    gato eval --model RUN/checkpoints/checkpoint-N --tasks generalist --episodes 50 --output-dir evals/checkpoint-N
    python scripts/ship_generalist.py RUN/checkpoints/checkpoint-N --eval-dir evals/checkpoint-N --out OUT

The checkpoint is first written, in a temporary folder, as the model folder ``gato train`` writes at its end
(:func:`model_folder_from_checkpoint`: ``save_pretrained`` of its weights and processor, so a config with
``auto_map`` and the code files; its task specs and training records; the reports of ``--eval-dir``); its optimizer,
scheduler and RNG states stay behind, and the checkpoint itself is only read.

What it does, refusing (exit status 2, one line naming the path, task or size) at the first problem; ``OUT`` is built
and checked in a sibling folder and replaced only when every check passed, so a failed ship leaves it as it was:

1. checks the run's ``task_specs.json`` against the suite (``gato.suite.registry``): every task the model was trained
   on must be a suite task whose spec makes the same tokens (:func:`task_spec_mismatches`); ``--task`` must be one
   of them;
2. checks the size: the files ``gato push`` would send (a dry run) must fit in 50 MB (:data:`MAX_FOLDER_BYTES`: the
   folder lives in git, which keeps every version); above that nothing is written and the size is named;
3. exports the run as ``gato push RUN --repo-id ORG/NAME --local-dir OUT`` does (``gato.hub_cards.push_run``): the
   weights as trained (float32 safetensors), config with ``auto_map``, processor and tokenizer, remote code,
   ``task_specs.json``, the card rebuilt with the repo id (default :data:`DEFAULT_REPO_ID`), results and plot; never
   checkpoints, logs or data. ``OUT`` must be new, empty or an earlier export (then its files are replaced);
4. rewrites ``OUT/manifest.json``, when there is one, as the model manifest (``write_model_manifest``: weights,
   configs, processor, code, training records), so that editing the card or the results later does not make the
   folder fail its integrity check;
5. records the regression rollout ``OUT/regression_rollout.json``: one greedy episode of ``--task`` (default
   ``cartpole``, cheap) capped at ``--max-steps``, in float32 on one torch thread, prompted as ``gato eval`` prompts
   (an expert demonstration seeded by ``--seed``, the prompt length the model was trained with): the task, seed,
   step cap, prompt length, every action and the total return (:func:`greedy_rollout`);
6. checks that ``OUT`` loads offline with ``AutoModelForCausalLM.from_pretrained``, ``AutoProcessor.from_pretrained``,
   ``pipeline("image-to-text", model=OUT)`` (a caption of a small image) and ``gato.pipelines.load_agent(OUT, task)``
   (one action in the task's environment) (:func:`check_loaders`), that its specs match the suite, that the rollout
   replays to the recorded actions and return (:func:`check_regression_rollout`), and that the whole folder is
   still ≤ 50 MB.

``tests/test_shipped_generalist.py`` runs the same checks on ``models/gato-generalist`` (and, on a tiny folder this
script ships, each check's failing case), so a change of the suite's specs, the tokenization or the model code that
would change what the shipped weights do fails the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the folder must load from disk alone

ROLLOUT_FILE = "regression_rollout.json"
MAX_FOLDER_BYTES = 50 * 10**6
DEFAULT_REPO_ID = "gato/gato-generalist"
DEFAULT_TASK = "cartpole"
DEFAULT_MAX_STEPS = 100


def folder_bytes(folder: str | Path) -> int:
    """The bytes of every file under ``folder`` except hidden ones (what the repository holds of it)."""
    root = Path(folder)
    return sum(
        path.stat().st_size
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def check_size(size: int, where: str, limit: int = MAX_FOLDER_BYTES) -> None:
    if size > limit:
        raise ValueError(
            f"{where}: {size / 1e6:.1f} MB ({size:,} bytes), above the {limit / 1e6:.0f} MB a folder kept in the "
            "repository may take; ship a smaller model"
        )


def task_spec_mismatches(folder: str | Path, suite_specs: dict[str, Any] | None = None) -> list[str]:
    """One line per difference between the folder's ``task_specs.json`` and the suite's specs, each naming the task
    and the field (``cartpole: observation 'state': continuous (4,), μ-law → continuous (5,), μ-law``); empty when
    every stored task is a suite task with the same spec. ``suite_specs`` (``{name: TaskSpec}``) defaults to the
    suite's (``gato.suite.registry.list_tasks``)."""
    from gato.suite.registry import list_tasks
    from gato.suite.task_spec import TASK_SPECS_FILE, load_task_specs, spec_differences

    stored = load_task_specs(folder)
    if not stored:
        return [f"{Path(folder) / TASK_SPECS_FILE}: missing or empty (expected the specs the model was trained on)"]
    suite = suite_specs if suite_specs is not None else {task.name: task.spec for task in list_tasks()}
    lines = []
    for name, spec in sorted(stored.items()):
        current = suite.get(name)
        if current is None:
            lines.append(f"{name}: not a task of the suite (the shipped model plays suite tasks)")
            continue
        differences = spec_differences(spec, current)
        if not differences and spec != current:  # a setting that makes the same tokens (e.g. the domain)
            before, after = spec.to_dict(), current.to_dict()
            differences = [
                f"{key}: {before[key]!r} → {after[key]!r}"
                for key in before
                if key != "extra" and before[key] != after[key]
            ]
        lines += [f"{name}: {difference}" for difference in differences]
    return lines


def check_task_specs(folder: str | Path, suite_specs: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` listing :func:`task_spec_mismatches` (trained spec → suite spec) when there are any."""
    lines = task_spec_mismatches(folder, suite_specs)
    if lines:
        raise ValueError(f"{folder}: task_specs.json differs from the suite: " + "; ".join(lines))


def greedy_rollout(
    folder: str | Path, task: str, seed: int, max_steps: int, prompt_tokens: int | None = None
) -> dict[str, Any]:
    """One greedy episode of ``task`` by the model in ``folder``, capped at ``max_steps``, in float32 on one torch
    thread: ``{"task", "seed", "max_steps", "prompt_tokens", "dtype", "threads", "steps", "actions", "return"}``.

    The environment is reset with ``seed`` and the agent is prompted as ``gato eval`` prompts it (an expert
    demonstration seeded by ``seed``) with ``prompt_tokens`` tokens (default: the length the model was trained with).
    """
    import numpy as np
    import torch
    from gato.evaluation.rollout import default_prompt_tokens
    from gato.evaluation.run_evaluation import load_model_and_processor

    from gato.pipelines import load_agent

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, processor = load_model_and_processor(str(folder))
        if prompt_tokens is None:
            prompt_tokens = default_prompt_tokens(processor, folder)
        agent = load_agent(model, task, processor=processor, seed=seed, dtype="float32", prompt_tokens=prompt_tokens)
        env = agent.make_env(seed)
        observation, _ = env.reset(seed=seed)
        actions, total = [], 0.0
        for _ in range(max_steps):
            action = agent(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            actions.append(np.asarray(action).tolist())
            total += float(reward)
            if terminated or truncated:
                break
        env.close()
    finally:
        torch.set_num_threads(threads)
    return {
        "task": task,
        "seed": seed,
        "max_steps": max_steps,
        "prompt_tokens": prompt_tokens,
        "dtype": "float32",
        "threads": 1,
        "steps": len(actions),
        "actions": actions,
        "return": total,
    }


def read_rollout(folder: str | Path) -> dict[str, Any]:
    """The recorded rollout of ``folder``, its fields checked (a ``ValueError`` names the file and the field)."""
    path = Path(folder) / ROLLOUT_FILE
    if not path.is_file():
        raise ValueError(f"{path}: missing (expected the greedy rollout scripts/ship_generalist.py records)")
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    expected = {"task": str, "seed": int, "max_steps": int, "prompt_tokens": int, "actions": list, "return": float}
    for name, kind in expected.items():
        value = record.get(name) if isinstance(record, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is float and not math.isfinite(value)):
            raise ValueError(f"{path}: field {name!r} must be a {kind.__name__}, got {value!r}")
    return record


def check_regression_rollout(folder: str | Path) -> dict[str, Any]:
    """Replay the recorded greedy rollout and raise ``ValueError`` unless it gives exactly the recorded actions, steps
    and return (naming the first step whose action differs); returns the replay."""
    recorded = read_rollout(folder)
    replay = greedy_rollout(
        folder, recorded["task"], recorded["seed"], recorded["max_steps"], recorded["prompt_tokens"]
    )
    what = (
        f"{folder}: the greedy {recorded['task']} rollout (seed {recorded['seed']}) no longer matches {ROLLOUT_FILE}"
    )
    for step, (action, before) in enumerate(zip(replay["actions"], recorded["actions"])):
        if action != before:
            raise ValueError(f"{what}: step {step} acts {action}, recorded {before}")
    if replay["steps"] != len(recorded["actions"]) or replay["return"] != recorded["return"]:
        raise ValueError(
            f"{what}: {replay['steps']} steps for a return of {replay['return']!r}, recorded "
            f"{len(recorded['actions'])} steps for {recorded['return']!r}"
        )
    return replay


def check_loaders(folder: str | Path, task: str | None = None) -> None:
    """Load ``folder`` offline with the four loaders a user calls and use each once (``load_agent`` acts in ``task``,
    default: the recorded rollout's); a ``ValueError`` names the loader that failed and how."""
    import numpy as np
    from PIL import Image
    from transformers import AutoModelForCausalLM, AutoProcessor, pipeline

    import gato
    from gato.pipelines import load_agent

    path = str(folder)
    task = task or read_rollout(folder)["task"]
    model = AutoModelForCausalLM.from_pretrained(path)
    if not isinstance(model, gato.GatoForCausalLM):
        raise ValueError(f"{path}: AutoModelForCausalLM.from_pretrained gave a {type(model).__name__}, not Gato")
    processor = AutoProcessor.from_pretrained(path)
    if not isinstance(processor, gato.GatoProcessor):
        raise ValueError(f"{path}: AutoProcessor.from_pretrained gave a {type(processor).__name__}, not Gato's")
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[8:40, 8:40] = (255, 0, 0)
    captions = pipeline("image-to-text", model=path)(Image.fromarray(pixels), max_new_tokens=4)
    if not (len(captions) == 1 and isinstance(captions[0].get("generated_text"), str)):
        raise ValueError(f"{path}: pipeline('image-to-text') gave {captions!r}, expected one generated_text")
    agent = load_agent(path, task)
    env = agent.make_env(0)
    observation, _ = env.reset(seed=0)
    action = agent(observation)
    if not env.action_space.contains(action):
        raise ValueError(f"{path}: load_agent(..., {task!r}) gave {action!r}, outside {env.action_space}")
    env.close()


def model_folder_from_checkpoint(checkpoint: str | Path, out: str | Path, eval_dir: str | Path | None = None) -> Path:
    """Write the training checkpoint ``checkpoint`` into ``out`` as the model folder ``gato train`` leaves at its end:
    the model and processor through ``save_pretrained`` (config with ``auto_map``, weights, code files), its task specs
    and training records, the evaluation reports of ``eval_dir`` (``gato eval --output-dir``) when given, and the
    model manifest. The optimizer, scheduler and RNG states are not copied; ``checkpoint`` is only read, after every
    file its ``checkpoint.json`` lists is checked against the sha256 recorded there (a changed file is named, never
    shipped)."""

    from gato.episodes.manifest import write_model_manifest
    from gato.evaluation.report import CHART_FILE, PROFILE_FILE, RESULTS_FILE, TABLE_FILE, check_results
    from gato.suite.task_spec import TASK_SPECS_FILE
    from gato.training.checkpoints import MANIFEST_FILE as CHECKPOINT_RECORD
    from gato.training.checkpoints import MODEL_FILE, verify_checkpoint
    from gato.training.run_training import TRAIN_RESULTS_FILE, TRAINING_CONFIG_FILE
    from transformers import AutoModelForCausalLM, AutoProcessor

    import gato  # noqa: F401  (registers the Auto classes)

    source, target = Path(checkpoint), Path(out)
    if eval_dir is not None and not (Path(eval_dir) / RESULTS_FILE).is_file():
        raise ValueError(f"eval_dir: {eval_dir} has no {RESULTS_FILE} (expected a `gato eval --output-dir` folder)")
    if eval_dir is not None:  # the card's scores must be this checkpoint's, not another step's
        results_path = Path(eval_dir) / RESULTS_FILE
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"eval_dir: {results_path} is not valid JSON ({error})") from None
        evaluated = results.get("model") if isinstance(results, dict) else None
        if not isinstance(evaluated, str) or Path(evaluated).name != Path(checkpoint).name:
            raise ValueError(
                f"eval_dir: {Path(eval_dir) / RESULTS_FILE} evaluated {evaluated!r}, not {Path(checkpoint).name} "
                f"(evaluate this checkpoint: gato eval --model {checkpoint})"
            )
        check_results(results, f"eval_dir: {results_path}")
    # What `--resume` checks before it reads a checkpoint: every listed file present with its sha256, nothing else.
    listed = verify_checkpoint(source, processes=1)["files"]
    if MODEL_FILE not in listed:
        raise ValueError(f"{source}: {CHECKPOINT_RECORD} lists no {MODEL_FILE} (a DeepSpeed checkpoint?)")
    model = AutoModelForCausalLM.from_pretrained(str(source))
    processor = AutoProcessor.from_pretrained(str(source))
    model.save_pretrained(target)
    processor.save_pretrained(target)
    for name in (TASK_SPECS_FILE, TRAINING_CONFIG_FILE, TRAIN_RESULTS_FILE):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    for name in (RESULTS_FILE, TABLE_FILE, CHART_FILE, PROFILE_FILE) if eval_dir is not None else ():
        if (Path(eval_dir) / name).is_file():
            shutil.copyfile(Path(eval_dir) / name, target / name)
    write_model_manifest(target)
    return target


def ship(
    run_dir: str | Path,
    out: str | Path,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    task: str = DEFAULT_TASK,
    seed: int = 0,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_bytes: int = MAX_FOLDER_BYTES,
    eval_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Steps 1–6 of the module docstring (from a checkpoint, its model folder first); returns the recorded rollout.
    Raises ``ValueError`` at the first problem."""
    import tempfile

    from gato.training.checkpoints import is_checkpoint

    if not Path(run_dir).is_dir():
        raise ValueError(
            f"run_dir: {run_dir} is not a folder (expected a `gato train` folder or one of its checkpoints)"
        )
    if not is_checkpoint(run_dir):
        if eval_dir is not None:
            raise ValueError(
                f"eval_dir: only for a checkpoint; {run_dir} is a run folder, which holds its own results "
                f"(gato eval --model {run_dir} --output-dir {run_dir})"
            )
        return _ship_folder(run_dir, out, repo_id, task, seed, max_steps, max_bytes)
    with tempfile.TemporaryDirectory(prefix="ship-generalist-") as staging:
        check_task_specs(run_dir)  # before anything is written
        folder = model_folder_from_checkpoint(run_dir, Path(staging) / Path(run_dir).name, eval_dir)
        return _ship_folder(folder, out, repo_id, task, seed, max_steps, max_bytes)


def _ship_folder(
    run_dir: str | Path, out: str | Path, repo_id: str, task: str, seed: int, max_steps: int, max_bytes: int
) -> dict[str, Any]:
    from gato.episodes.manifest import MANIFEST_FILE, write_model_manifest
    from gato.hub_cards import push_run
    from gato.suite.task_spec import load_task_specs

    check_task_specs(run_dir)
    trained = sorted(load_task_specs(run_dir))
    if task not in trained:
        raise ValueError(f"task: {task!r} is not a task the model was trained on ({', '.join(trained)})")
    planned = push_run(run_dir, repo_id, dry_run=True)
    check_size(planned.total_bytes, f"{run_dir}: the files to ship", max_bytes)
    # Built and checked beside OUT, then swapped in: a failed check leaves an earlier shipped folder as it was.
    out = Path(out)
    staging = out.with_name(f".{out.name}.shipping")
    shutil.rmtree(staging, ignore_errors=True)  # left by a ship that was killed
    if out.exists():
        shutil.copytree(out, staging)
    try:
        stale = [name for name in push_run(run_dir, repo_id, local_dir=staging).kept if name != ROLLOUT_FILE]
        if stale:  # an earlier export's files that this run does not have: kept (never deleted), but said
            print(
                f"ship_generalist: kept from the earlier {out}, not part of this run: {', '.join(stale)}",
                file=sys.stderr,
            )
        if (staging / MANIFEST_FILE).exists():
            write_model_manifest(staging)
        record = greedy_rollout(staging, task, seed, max_steps)
        # One line per field: the actions stay one line, so a re-shipped folder's diff is short.
        lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items()]
        (staging / ROLLOUT_FILE).write_text("{\n" + ",\n".join(lines) + "\n}\n")
        check_loaders(staging, task)
        check_task_specs(staging)
        check_regression_rollout(staging)
        check_size(folder_bytes(staging), str(out), max_bytes)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replaced = out.with_name(f".{out.name}.replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if out.exists():
        os.replace(out, replaced)
    os.replace(staging, out)
    shutil.rmtree(replaced, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a trained (and evaluated) `gato train` folder")
    parser.add_argument("--out", required=True, help="the folder to write, e.g. models/gato-generalist")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID, help="the Hub id the card's snippets name")
    parser.add_argument("--task", default=DEFAULT_TASK, help="the regression rollout's task (a cheap one)")
    parser.add_argument("--seed", type=int, default=0, help="the rollout's reset and prompt seed")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="the rollout's step cap")
    parser.add_argument(
        "--eval-dir", help="RUN_DIR a checkpoint: the folder `gato eval --output-dir` wrote its results into"
    )
    parser.add_argument("--verbose", action="store_true", help="keep the libraries' banners and progress bars")
    args = parser.parse_args(argv)
    from gato.quiet import quiet_libraries

    quiet_libraries(verbose=args.verbose)
    if args.max_steps < 1:
        parser.error(f"--max-steps: expected ≥ 1, got {args.max_steps}")
    try:
        record = ship(
            args.run_dir,
            args.out,
            repo_id=args.repo_id,
            task=args.task,
            seed=args.seed,
            max_steps=args.max_steps,
            eval_dir=args.eval_dir,
        )
    except (ValueError, KeyError) as error:
        print(f"ship_generalist: {error.args[0] if len(error.args) == 1 else error}", file=sys.stderr)
        return 2
    print(
        f"shipped {args.run_dir} → {args.out} ({folder_bytes(args.out) / 1e6:.1f} MB); {ROLLOUT_FILE}: "
        f"{record['task']} seed {record['seed']}, {record['steps']} steps, return {record['return']}; loads with "
        "AutoModelForCausalLM, AutoProcessor, pipeline('image-to-text') and load_agent; task specs match the suite"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
