"""Data plans: one recipe for a collection whose tasks need different amounts and kinds of expert data.

A plan says, per task, how many expert episodes to record and with how much action noise (DART), how many DAgger
episodes a round of DAgger records (and with which expert mix), plus the captions and the text corpus that go with
them. It replaces a shell script of several ``gato data generate`` calls; ``gato data generate --plan FILE`` and
``gato run --data-plan FILE`` take it. As YAML::

    episodes_per_task: 100          # tasks the groups do not name (and groups that give no count of their own)
    captions: 10000                 # captioned scenes (0: none)
    text: true                      # the offline text corpus
    groups:                         # in order; a task named by several groups takes the LAST one (its whole recipe)
      - tasks: babyai_goto_red_ball,babyai_pickup_loc   # as `--tasks` takes them: tasks, domains, suites
        episodes_per_task: 8000
        dagger_episodes: 1000                           # per DAgger round (default 0: none)
        expert_mix: 0.5                                 # β of those episodes (default DEFAULT_EXPERT_MIX)
      - tasks: [pendulum]                                # or a list
        episodes_per_task: 1000
        action_noise: 1.0                               # default 0: clean expert episodes

Running a plan (:func:`run_plan`) resolves every selected task to its (episodes, action noise), and calls
:func:`gato.episodes.generate.generate` once per distinct pair, with the arguments — and the recorded command
line — of the hand-written ``gato data generate --tasks … --episodes-per-task N [--action-noise X]`` call for
those tasks; captions and text go with the last call. The data therefore depend only on the seed and each task's
(episodes, noise): a folder written earlier by hand-written calls with the same seed is recognised as finished
and skipped, and a plan run can be continued by hand-written calls, and back. ``dagger_episodes`` and
``expert_mix`` play no part in it.

A DAgger round of a plan (:func:`run_dagger_plan`, ``gato data generate --plan FILE --dagger-model RUN
[--dagger-round R]``) records, for each selected task whose group asks for ``dagger_episodes``, that many DAgger
episodes (:mod:`gato.episodes.dagger`: the model acts, the expert labels every state) into ``<task>_dagger``
(``<task>_dagger<R>``), again through the hand-written calls (``gato data generate --tasks … --episodes-per-task N
--dagger-model RUN --expert-mix β``), one per distinct (episodes, β). Only tasks whose expert labels any state
(``Task.make_labeler``) can have DAgger episodes: a plan that asks them of another task is refused when it is
built, naming the group and the task.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_PLAN_FIELDS = ("episodes_per_task", "captions", "text", "groups")
_GROUP_FIELDS = ("tasks", "episodes_per_task", "action_noise", "dagger_episodes", "expert_mix")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _split_names(value: Any, where: str) -> tuple[str, ...]:
    """A group's ``tasks``: ``"a,b"`` or ``["a", "b"]`` → ``("a", "b")``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(
            f"{where}: expected task, domain or suite names (a comma-separated string or a list of strings), "
            f"got {value!r}"
        )
    names = tuple(item.strip() for item in items if item.strip())
    if not names:
        raise ValueError(f"{where}: expected at least one task, domain or suite name, got {value!r}")
    return names


@dataclass(frozen=True)
class PlanGroup:
    """Tasks that share a recipe.

    Args:
        tasks: task, domain or suite names, as ``gato data generate --tasks`` takes them.
        episodes_per_task: expert episodes per task (``None``: the plan's ``episodes_per_task``).
        action_noise: DART noise the expert's actions are executed with (``gato data generate --action-noise``;
            0: clean expert episodes).
        dagger_episodes: DAgger episodes per task that each DAgger round of the plan records (:func:`run_dagger_plan`;
            0: none). Every task of the group needs a state labeler (``Task.make_labeler``).
        expert_mix: β of those episodes, the probability that the expert's action is executed instead of the
            model's (``gato data generate --expert-mix``; ``None``: ``gato.episodes.dagger.DEFAULT_EXPERT_MIX``).
            Only with ``dagger_episodes``.
    """

    tasks: tuple[str, ...]
    episodes_per_task: int | None = None
    action_noise: float = 0.0
    dagger_episodes: int = 0
    expert_mix: float | None = None

    def __post_init__(self) -> None:
        # "a,b" or a list, as in YAML: a bare string must not be read as its characters.
        if isinstance(self.tasks, str):
            object.__setattr__(self, "tasks", tuple(name.strip() for name in self.tasks.split(",") if name.strip()))
        elif isinstance(self.tasks, list):
            object.__setattr__(self, "tasks", tuple(self.tasks))


@dataclass(frozen=True)
class PlanCall:
    """One ``gato.episodes.generate.generate`` call of a plan run: these tasks, each with this recipe."""

    tasks: tuple[str, ...]
    episodes_per_task: int
    action_noise: float
    captions: int = 0
    text: bool = False

    @property
    def tasks_argument(self) -> str:
        """The ``--tasks`` value of the call."""
        return ",".join(self.tasks)


@dataclass(frozen=True)
class PlanDaggerCall:
    """One ``gato.episodes.dagger.generate_dagger`` call of a plan's DAgger round: these tasks, each with this many
    DAgger episodes and this expert mix."""

    tasks: tuple[str, ...]
    episodes_per_task: int
    expert_mix: float

    @property
    def tasks_argument(self) -> str:
        """The ``--tasks`` value of the call."""
        return ",".join(self.tasks)


@dataclass(frozen=True)
class DataPlan:
    """What to record for a collection, task by task (module docstring; docs/DATA.md "Data plans").

    A task named by several groups takes the **last** group that names it (so a plan can give a whole domain
    one recipe and then single out one of its tasks). A selected task that no group names gets
    ``episodes_per_task`` clean episodes. Built from YAML with :meth:`from_yaml` / :meth:`from_dict`, which refuse
    anything malformed with the path of the offending value (``groups[2].action_noise: expected ≥ 0, got -1``);
    task names are checked against the registry when the plan is built.

    Args:
        episodes_per_task: episodes of a task no group names, and of a group that gives no count (≥ 1).
        groups: the per-task recipes, in order.
        captions: captioned scenes to generate (0: none; a tenth more are held out for validation and test).
        text: also generate the offline text corpus.
    """

    episodes_per_task: int = 20
    groups: tuple[PlanGroup, ...] = ()
    captions: int = 0
    text: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        self.validate()

    # --- validation -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse values that cannot work, naming the field's path and what was expected."""
        if not _is_int(self.episodes_per_task) or self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task: expected an integer ≥ 1, got {self.episodes_per_task!r}")
        if not _is_int(self.captions) or self.captions < 0:
            raise ValueError(f"captions: expected an integer ≥ 0, got {self.captions!r}")
        if not isinstance(self.text, bool):
            raise ValueError(f"text: expected true or false, got {self.text!r}")
        for index, group in enumerate(self.groups):
            where = f"groups[{index}]"
            if not isinstance(group, PlanGroup):
                raise ValueError(f"{where}: expected a PlanGroup, got {type(group).__name__}")
            count = group.episodes_per_task
            if count is not None and (not _is_int(count) or count < 1):
                raise ValueError(f"{where}.episodes_per_task: expected an integer ≥ 1, got {count!r}")
            noise = group.action_noise
            if not _is_number(noise) or not math.isfinite(noise) or noise < 0:
                raise ValueError(f"{where}.action_noise: expected ≥ 0, got {noise!r}")
            if not group.tasks:
                raise ValueError(f"{where}.tasks: expected at least one task, domain or suite name")
            dagger = group.dagger_episodes
            if not _is_int(dagger) or dagger < 0:
                raise ValueError(
                    f"{where}.dagger_episodes: expected an integer ≥ 0 (DAgger episodes per task and round; 0: none), "
                    f"got {dagger!r}"
                )
            mix = group.expert_mix
            if mix is not None:
                if not _is_number(mix) or not 0.0 <= mix <= 1.0:  # NaN fails the comparison too
                    raise ValueError(f"{where}.expert_mix: expected a probability in [0, 1], got {mix!r}")
                if dagger == 0:
                    raise ValueError(
                        f"{where}.expert_mix: given without dagger_episodes (the group records no DAgger episodes "
                        "to mix); set dagger_episodes or drop expert_mix"
                    )
            for task in self._group_tasks(index):
                _check_noise(task, float(noise), f"{where}.action_noise")
        self._check_labelers()

    def _check_labelers(self) -> None:
        """Refuse DAgger episodes of a task whose expert cannot label the states another policy reaches, naming the
        group that asks for them (the last group naming the task, whose recipe it takes)."""
        asking: dict[str, tuple[int, Any]] = {}
        for index, group in enumerate(self.groups):
            for task in self._group_tasks(index):
                asking.pop(task.name, None)  # the last group naming a task sets its recipe: re-insert in its order
                if group.dagger_episodes > 0:
                    asking[task.name] = (index, task)
        unlabeled = [(index, task.name) for index, task in asking.values() if task.make_labeler is None]
        if unlabeled:
            index = unlabeled[0][0]
            names = ", ".join(name for group, name in unlabeled if group == index)
            raise ValueError(
                f"groups[{index}].dagger_episodes: {names}: no labeler for states its expert did not choose "
                "(Task.make_labeler), which DAgger needs; give these tasks a group without dagger_episodes "
                "(classic control, Meta-World, Atari and the BabyAI go-to and pick-up levels have labelers)"
            )

    def _group_tasks(self, index: int) -> list[Any]:
        """The registry tasks group ``index`` names; an unknown name is an error naming the group and the name."""
        from gato.suite.registry import resolve_tasks

        tasks: dict[str, Any] = {}
        for name in self.groups[index].tasks:
            try:
                found = resolve_tasks(name)
            except KeyError as error:
                raise ValueError(f"groups[{index}].tasks: {error.args[0]}") from None
            tasks.update((task.name, task) for task in found)
        return list(tasks.values())

    # --- YAML ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> DataPlan:
        """A plan from a mapping (a parsed YAML file); ``where`` (a file name) prefixes the error messages."""
        prefix = f"{where}: " if where else ""
        try:
            return cls._from_dict(data)
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> DataPlan:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of data plan fields ({', '.join(_PLAN_FIELDS)}), got {data!r}")
        _refuse_unknown(data, _PLAN_FIELDS, "data plan", "")
        groups_data = data.get("groups") or []
        if not isinstance(groups_data, list):
            raise ValueError(f"groups: expected a list of groups, got {groups_data!r}")
        groups = []
        for index, group in enumerate(groups_data):
            where = f"groups[{index}]"
            if not isinstance(group, Mapping):
                raise ValueError(f"{where}: expected a mapping with {', '.join(_GROUP_FIELDS)}, got {group!r}")
            _refuse_unknown(group, _GROUP_FIELDS, "group", f"{where}.")
            if "tasks" not in group:
                raise ValueError(f"{where}.tasks: missing (expected the task, domain or suite names of the group)")
            groups.append(
                PlanGroup(
                    tasks=_split_names(group["tasks"], f"{where}.tasks"),
                    episodes_per_task=group.get("episodes_per_task"),
                    action_noise=group.get("action_noise", 0.0),
                    dagger_episodes=group.get("dagger_episodes", 0),
                    expert_mix=group.get("expert_mix"),
                )
            )
        defaults = cls.__dataclass_fields__
        return cls(
            episodes_per_task=data.get("episodes_per_task", defaults["episodes_per_task"].default),
            groups=tuple(groups),
            captions=data.get("captions", defaults["captions"].default),
            text=data.get("text", defaults["text"].default),
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> DataPlan:
        """Read a plan from a YAML file; errors name the file, then the field."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ValueError(
                f"{path}: cannot be read as YAML ({type(error).__name__}) (expected a data plan YAML file)"
            ) from None
        return cls.from_dict(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain types, in the YAML layout (:meth:`from_dict` gives the same plan back)."""
        groups = []
        for group in self.groups:
            entry: dict[str, Any] = {"tasks": list(group.tasks)}
            if group.episodes_per_task is not None:
                entry["episodes_per_task"] = group.episodes_per_task
            entry["action_noise"] = float(group.action_noise)
            if group.dagger_episodes:
                entry["dagger_episodes"] = group.dagger_episodes
            if group.expert_mix is not None:
                entry["expert_mix"] = float(group.expert_mix)
            groups.append(entry)
        return {
            "episodes_per_task": self.episodes_per_task,
            "captions": self.captions,
            "text": self.text,
            "groups": groups,
        }

    def to_yaml(self, path: str | os.PathLike) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    # --- resolving ---------------------------------------------------------------------------------------------
    def task_names(self) -> list[str]:
        """Every task the groups name, in order of first mention (domains and suites expanded)."""
        names: dict[str, None] = {}
        for index in range(len(self.groups)):
            names.update((task.name, None) for task in self._group_tasks(index))
        return list(names)

    def recipes(self, tasks: str | None = None) -> dict[str, tuple[int, float]]:
        """Task name → (episodes, action noise) for the selection ``tasks`` (comma-separated task, domain or suite
        names; default: every task the plan names), in selection order. The last group naming a task wins; a
        selected task no group names gets ``episodes_per_task`` clean episodes."""
        from gato.suite.registry import resolve_tasks

        if tasks is None:
            selected = self.task_names()
            if not selected:
                raise ValueError("the data plan names no tasks (no groups); select tasks with --tasks")
        else:
            selected = [task.name for task in resolve_tasks(tasks)]
        recipe = {name: (self.episodes_per_task, 0.0) for name in selected}
        for index, group in enumerate(self.groups):
            episodes = self.episodes_per_task if group.episodes_per_task is None else group.episodes_per_task
            for task in self._group_tasks(index):
                if task.name in recipe:
                    recipe[task.name] = (episodes, float(group.action_noise))
        return recipe

    def calls(self, tasks: str | None = None) -> list[PlanCall]:
        """The ``generate`` calls that run this plan for the selection ``tasks`` (see :meth:`recipes`): one per
        distinct (episodes, action noise), ordered by their first task in the selection; captions and text go
        with the last call."""
        grouped: dict[tuple[int, float], list[str]] = {}
        for name, key in self.recipes(tasks).items():
            grouped.setdefault(key, []).append(name)
        calls = [PlanCall(tuple(names), episodes, noise) for (episodes, noise), names in grouped.items()]
        last = calls[-1]
        calls[-1] = PlanCall(last.tasks, last.episodes_per_task, last.action_noise, self.captions, self.text)
        return calls

    def dagger_recipes(self, tasks: str | None = None) -> dict[str, tuple[int, float]]:
        """Task name → (DAgger episodes per round, expert mix) for the tasks of the selection ``tasks`` (as in
        :meth:`recipes`) whose recipe asks for DAgger episodes, in selection order; the last group naming a task
        wins, as for the expert episodes."""
        from .dagger import DEFAULT_EXPERT_MIX

        if tasks is None:
            selected = self.task_names()
        else:
            from gato.suite.registry import resolve_tasks

            selected = [task.name for task in resolve_tasks(tasks)]
        recipe: dict[str, tuple[int, float]] = {name: (0, DEFAULT_EXPERT_MIX) for name in selected}
        for index, group in enumerate(self.groups):
            mix = DEFAULT_EXPERT_MIX if group.expert_mix is None else float(group.expert_mix)
            for task in self._group_tasks(index):
                if task.name in recipe:
                    recipe[task.name] = (group.dagger_episodes, mix)
        return {name: value for name, value in recipe.items() if value[0] > 0}

    def dagger_calls(self, tasks: str | None = None) -> list[PlanDaggerCall]:
        """The ``generate_dagger`` calls of one DAgger round of this plan for the selection ``tasks`` (see
        :meth:`dagger_recipes`): one per distinct (episodes, expert mix), ordered by their first task.

        Raises:
            ValueError: when no selected task gets DAgger episodes, saying whether the plan asks for none at all or
                only for tasks outside the selection.
        """
        recipes = self.dagger_recipes(tasks)
        if not recipes:
            everywhere = self.dagger_recipes()
            if not everywhere:
                raise ValueError(
                    "the data plan asks for no DAgger episodes (no group sets dagger_episodes); add "
                    "`dagger_episodes: N` to the groups of the tasks a DAgger round should record"
                )
            raise ValueError(
                f"--tasks {tasks}: none of the selected tasks gets DAgger episodes from the data plan (its groups "
                f"with dagger_episodes give them to {', '.join(everywhere)})"
            )
        grouped: dict[tuple[int, float], list[str]] = {}
        for name, key in recipes.items():
            grouped.setdefault(key, []).append(name)
        return [PlanDaggerCall(tuple(names), episodes, mix) for (episodes, mix), names in grouped.items()]

    def with_overrides(self, *, captions: int | None = None, text: bool | None = None) -> DataPlan:
        """This plan with ``captions`` / ``text`` replaced where given (``None``: the plan's own)."""
        return DataPlan(
            episodes_per_task=self.episodes_per_task,
            groups=self.groups,
            captions=self.captions if captions is None else captions,
            text=self.text if text is None else text,
        )


def _refuse_unknown(data: Mapping, known: Sequence[str], what: str, prefix: str) -> None:
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]}: unknown {what} field (expected one of {', '.join(known)})")


def _check_noise(task: Any, noise: float, where: str) -> None:
    from .recorder import check_action_noise

    try:
        check_action_noise(task.spec, noise)
    except ValueError as error:
        raise ValueError(f"{where}: {task.name}: {str(error).removeprefix('action_noise: ')}") from None


@dataclass
class PlanRun:
    """What :func:`run_plan` did: the collection as a whole and one summary row per task, in selection order."""

    dataset_dict: Any  # datasets.DatasetDict of every finished folder in ``out``
    summaries: list[Any] = field(default_factory=list)  # gato.episodes.generate.TaskSummary
    calls: list[PlanCall] = field(default_factory=list)


def run_plan(
    plan: DataPlan,
    out: str | os.PathLike,
    *,
    tasks: str | None = None,
    seed: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    text_sources: Any = None,
) -> PlanRun:
    """Record ``plan`` for the selection ``tasks`` (default: every task it names) into ``out``.

    One :func:`gato.episodes.generate.generate` call per :meth:`DataPlan.calls` entry, each with the arguments of
    the hand-written ``gato data generate`` call for its tasks and that call's command line recorded in the cards
    (:func:`gato.episodes.generate.generate_command_line`). Resumable like ``generate``: finished tasks are skipped,
    whichever of a plan or hand-written calls wrote them.
    """
    from .generate import generate

    calls = plan.calls(tasks)
    summaries: list[Any] = []
    dataset_dict = None
    for call in calls:
        dataset_dict, call_summaries = generate(
            call.tasks_argument,
            call.episodes_per_task,
            out,
            seed=seed,
            workers=workers,
            captions=call.captions,
            text=call.text,
            overwrite=overwrite,
            progress=progress,
            text_sources=text_sources,
            action_noise=call.action_noise,
        )
        summaries += call_summaries
    order = {name: index for index, name in enumerate(plan.recipes(tasks))}
    summaries.sort(key=lambda summary: order[summary.task])
    return PlanRun(dataset_dict, summaries, calls)


@dataclass
class DaggerPlanRun:
    """What :func:`run_dagger_plan` did: per selected task with DAgger episodes (selection order), its split and
    whether it was ``generated`` now or ``skipped`` (finished before, same generation)."""

    splits: dict[str, str] = field(default_factory=dict)  # task → its DAgger split of the round
    status: dict[str, str] = field(default_factory=dict)  # task → "generated" | "skipped"
    datasets: dict[str, Any] = field(default_factory=dict)  # task → datasets.Dataset of its split
    calls: list[PlanDaggerCall] = field(default_factory=list)


def run_dagger_plan(
    plan: DataPlan,
    make_actor: Any,
    out: str | os.PathLike,
    *,
    tasks: str | None = None,
    dagger_round: int = 1,
    seed: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> DaggerPlanRun:
    """Record one DAgger round of ``plan`` for the selection ``tasks`` (default: every task it names) into ``out``:
    ``dagger_episodes`` episodes of each selected task whose group asks for them, into ``<task>_dagger``
    (``<task>_dagger<R>`` for ``dagger_round`` R ≥ 2), ``make_actor`` acting (a
    ``gato.episodes.dagger.ActorFactory``: for a model folder ``gato.evaluation.run_evaluation.AgentFactory``).

    One :func:`gato.episodes.dagger.generate_dagger` call per :meth:`DataPlan.dagger_calls` entry, with the arguments
    and the recorded command line of the hand-written ``gato data generate --tasks … --episodes-per-task N
    --dagger-model RUN --expert-mix β`` call. Everything is checked before any episode is recorded: that some
    selected task gets DAgger episodes, that the actor can act in every task (``make_actor.check``), and that no
    split of another generation is in the way (unless ``overwrite``). Finished splits of the same generation are
    skipped, so a round can be run again after an interruption.
    """
    from datasets import load_from_disk
    from gato.suite.registry import resolve_tasks

    from .dagger import dagger_command_line, dagger_generation, dagger_split, finished_dagger_split, generate_dagger

    calls = plan.dagger_calls(tasks)
    names = [name for call in calls for name in call.tasks]
    make_actor.check(resolve_tasks(",".join(names)))
    run = DaggerPlanRun(calls=calls)
    for call in calls:  # each call refuses a split of another generation; refuse it before any call records
        generation = dagger_generation(seed, make_actor.name, call.expert_mix, call.episodes_per_task, dagger_round)
        for name in call.tasks:
            finished_dagger_split(Path(out) / dagger_split(name, dagger_round), generation, overwrite)
    for call in calls:
        command = dagger_command_line(
            call.tasks_argument,
            call.episodes_per_task,
            out,
            make_actor.name,
            expert_mix=call.expert_mix,
            dagger_round=dagger_round,
            seed=seed,
            workers=workers,
        )
        written = generate_dagger(
            make_actor,
            call.tasks_argument,
            call.episodes_per_task,
            out,
            expert_mix=call.expert_mix,
            dagger_round=dagger_round,
            seed=seed,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            command=command,
        )
        for name in call.tasks:
            split = dagger_split(name, dagger_round)
            run.splits[name] = split
            run.status[name] = "generated" if split in written else "skipped"
    order = {name: index for index, name in enumerate(plan.dagger_recipes(tasks))}
    for attribute in ("splits", "status"):
        setattr(run, attribute, dict(sorted(getattr(run, attribute).items(), key=lambda item: order[item[0]])))
    run.datasets = {name: load_from_disk(str(Path(out) / split)) for name, split in run.splits.items()}
    return run


__all__ = [
    "DaggerPlanRun",
    "DataPlan",
    "PlanCall",
    "PlanDaggerCall",
    "PlanGroup",
    "PlanRun",
    "run_dagger_plan",
    "run_plan",
]
