"""The task mixture: weights, prompt fraction, determinism, and sequences that respect the context."""

from collections import Counter

import numpy as np
import pytest
from datasets import load_from_disk
from gato.modeling_gato import GatoConfig
from gato.training.config import TrainingConfig
from gato.training.mixture import MixtureDataset, mixture_weights, split_sources, validation_sets
from gato.training.run_training import build_processor


@pytest.fixture(scope="module")
def processor():
    return build_processor(GatoConfig.from_preset("gato-tiny"), max_length=128)


@pytest.fixture(scope="module")
def sources(tiny_data_dir):
    return split_sources(load_from_disk(tiny_data_dir), validation_fraction=0.34)


def test_each_episode_task_keeps_validation_episodes_apart(sources):
    train, validation = sources
    counts = {s.name: len(s) for s in train}
    held_out = {s.name: len(s) for s in validation}
    assert counts["cartpole"] == 2 and held_out["cartpole"] == 1
    assert held_out["captions_validation"] == 2 and held_out["text_validation"] == 2
    assert {s.modality for s in validation} == {"classic_control", "captions", "text"}
    assert "captions_test" not in counts and "captions_test" not in held_out  # evaluation's alone


def test_sampling_follows_the_weights(sources, processor):
    train, _ = sources
    weights = mixture_weights(train, {"cartpole": 3.0, "text": 0.0}, default_weight=1.0)
    mixture = MixtureDataset(train, processor, length=4000, weights=weights, seed=1)
    counts = Counter(train[mixture.plan(i).source].name for i in range(len(mixture)))
    assert counts["text"] == 0
    # cartpole : pendulum : captions = 3 : 1 : 1
    assert counts["cartpole"] / 4000 == pytest.approx(0.6, abs=0.03)
    assert counts["pendulum"] / 4000 == pytest.approx(0.2, abs=0.03)
    assert counts["captions"] / 4000 == pytest.approx(0.2, abs=0.03)


def test_a_quarter_of_episode_sequences_are_prompted_half_from_the_end(sources, processor):
    train, _ = sources
    episodes_only = [s for s in train if s.kind == "episodes"]
    mixture = MixtureDataset(episodes_only, processor, length=4000, seed=2)
    plans = [mixture.plan(i) for i in range(len(mixture))]
    prompted = [p for p in plans if p.prompted]
    assert len(prompted) / len(plans) == pytest.approx(0.25, abs=0.025)
    assert sum(p.prompt_mode == "end" for p in prompted) / len(prompted) == pytest.approx(0.5, abs=0.05)


def test_prompted_sequences_start_with_a_demonstration_without_loss(sources, processor):
    train, _ = sources
    cartpole = [s for s in train if s.name == "cartpole"]
    mixture = MixtureDataset(cartpole, processor, length=200, seed=3, prompt_probability=1.0)
    sequence = mixture[0]
    plain = MixtureDataset(cartpole, processor, length=200, seed=3, prompt_probability=0.0)[0]
    # cartpole steps are 4 observation + 1 separator + 1 action tokens; a 32-token prompt holds 5 steps.
    assert len(sequence["input_ids"]) <= 128
    assert sequence["loss_mask"][:30].sum() == 0
    assert plain["loss_mask"][:30].sum() == 5


def test_items_are_a_pure_function_of_seed_and_index(sources, processor):
    train, _ = sources
    a = MixtureDataset(train, processor, length=50, seed=4)
    b = MixtureDataset(train, processor, length=50, seed=4)
    for index in (0, 7, 49, 7):
        for key, value in a[index].items():
            np.testing.assert_array_equal(value, b[index][key])


def test_sequences_fit_the_context_and_cut_on_step_boundaries(sources, processor):
    train, _ = sources
    pendulum = [s for s in train if s.name == "pendulum"]
    mixture = MixtureDataset(pendulum, processor, length=40, seed=5)
    for index in range(len(mixture)):
        sequence = mixture[index]
        # pendulum: 3 observation values, separator, 1 action → 5 tokens a step, whole steps only
        assert len(sequence["input_ids"]) <= processor.max_length
        assert len(sequence["input_ids"]) % 5 == 0


def test_validation_sets_are_per_modality_and_deterministic(sources, processor):
    _, validation = sources
    first = validation_sets(validation, processor, count=3, seed=0)
    second = validation_sets(validation, processor, count=3, seed=0)
    assert sorted(first) == ["captions", "classic_control", "text"]
    np.testing.assert_array_equal(first["captions"][2]["input_ids"], second["captions"][2]["input_ids"])


def test_unknown_task_weight_is_refused_naming_it(sources):
    train, _ = sources
    with pytest.raises(ValueError, match="task_weights.*cartpol"):
        mixture_weights(train, {"cartpol": 1.0}, 1.0)


def test_config_default_prompt_probability_is_the_papers():
    assert TrainingConfig().prompt_probability == 0.25


def test_training_and_evaluation_size_the_prompt_alike(sources, processor, tmp_path):
    # The mixture's prompt budget and the one evaluation gives a trained folder come from one function:
    # with the default fraction and with a run's own fraction read back from its training_config.yaml.
    from gato.evaluation.rollout import default_prompt_tokens
    from gato.training.run_training import TRAINING_CONFIG_FILE

    train, _ = sources
    assert MixtureDataset(train, processor, length=1).prompt_tokens == default_prompt_tokens(processor) == 128 // 4
    TrainingConfig(prompt_fraction=0.1).to_yaml(tmp_path / TRAINING_CONFIG_FILE)
    trained = MixtureDataset(train, processor, length=1, prompt_fraction=0.1)
    assert trained.prompt_tokens == default_prompt_tokens(processor, tmp_path) == 12


def test_a_task_whose_steps_cannot_fit_is_refused_up_front_naming_it(sources):
    train, _ = sources
    short = build_processor(GatoConfig.from_preset("gato-tiny"), max_length=4)  # pendulum steps are 5 tokens
    with pytest.raises(ValueError, match="max_length=4: task 'pendulum' has 5-token time steps"):
        MixtureDataset([s for s in train if s.name == "pendulum"], short, length=10)
    weights = mixture_weights(train, {"cartpole": 0.0, "pendulum": 0.0}, default_weight=1.0)
    kept = MixtureDataset(train, short, length=10, weights=weights)  # weight 0: not sampled, not refused
    assert {train[kept.plan(i).source].name for i in range(10)} <= {"captions", "text"}


def test_a_tasks_dagger_split_is_a_source_of_its_own_with_the_tasks_spec(tiny_data_dir):
    from datasets import DatasetDict

    data = load_from_disk(tiny_data_dir)
    with_dagger = DatasetDict({**data, "cartpole_dagger": data["cartpole"]})
    train, _ = split_sources(with_dagger, validation_fraction=0.34)
    by_name = {s.name: s for s in train}
    assert (
        by_name["cartpole_dagger"].spec == by_name["cartpole"].spec
        and by_name["cartpole_dagger"].spec.name == "cartpole"
    )
    weights = mixture_weights(train, {"cartpole_dagger": 2.0}, default_weight=1.0)
    assert weights[[s.name for s in train].index("cartpole_dagger")] == pytest.approx(
        2 * weights[[s.name for s in train].index("cartpole")]
    )


def test_two_splits_of_one_task_with_different_specs_are_refused(tiny_data_dir):
    import json
    from dataclasses import replace

    from datasets import DatasetDict
    from gato.episodes.schema import SPEC_KEY, spec_from_dataset

    data = load_from_disk(tiny_data_dir)
    spec = spec_from_dataset(data["cartpole"])
    (state,) = spec.observations
    other = replace(spec, observations=(replace(state, mu_law=not state.mu_law),))
    changed = data["cartpole"].select(range(len(data["cartpole"])))
    changed.info.description = json.dumps({**json.loads(changed.info.description), SPEC_KEY: other.to_dict()})
    assert spec_from_dataset(data["cartpole"]) == spec  # the original keeps its spec
    with pytest.raises(
        ValueError, match="splits 'cartpole' and 'cartpole_dagger' hold task 'cartpole' with different specs"
    ):
        split_sources(DatasetDict({**data, "cartpole_dagger": changed}), validation_fraction=0.34)


def test_image_items_decode_only_their_window_and_keep_the_whole_episodes_tokens(tmp_path, monkeypatch):
    """Atari frames are stored compressed one by one: an item decodes its first step and its window, not the whole
    episode, and its tokens are exactly those of decoding the whole episode and cutting the window out of it."""
    import dataclasses

    pytest.importorskip("ale_py")
    from datasets import DatasetDict
    from gato.episodes import schema
    from gato.episodes.recorder import record_task_episode
    from gato.episodes.writer import write_shard
    from gato.processing.episode_layout import slice_episode
    from gato.suite.registry import get_task
    from gato.training import mixture

    task = dataclasses.replace(get_task("atari_breakout"), max_episode_steps=60)
    episodes = [record_task_episode(task, seed=seed) for seed in range(3)]
    data = DatasetDict({task.name: write_shard(episodes, task.spec, tmp_path / task.name)})
    sources, _ = split_sources(data, validation_fraction=0.34)
    processor = build_processor(GatoConfig.from_preset("gato-tiny"), max_length=256)
    decoded = []
    decode = schema.decode_frames
    monkeypatch.setattr(
        schema, "decode_frames", lambda frames, shape: decoded.append(len(frames)) or decode(frames, shape)
    )
    dataset = MixtureDataset(sources, processor, length=12, seed=3, prompt_probability=0.0)
    decoded.clear()
    windowed = [dataset[i] for i in range(len(dataset))]
    steps_per_item = max(decoded)  # the window (2 × the steps that fit); the first step is decoded alone
    assert steps_per_item < 60 and sum(decoded) <= len(windowed) * (1 + steps_per_item)

    def whole_episode(table, spec, steps=None):  # the former path: decode every frame, then cut the steps out
        episode = decode_whole(table, spec)
        return episode if steps is None else slice_episode(episode, steps.start, steps.stop)

    decode_whole = mixture.episode_from_arrow
    monkeypatch.setattr(mixture, "episode_from_arrow", whole_episode)
    decoded.clear()
    whole = [dataset[i] for i in range(len(dataset))]
    assert sum(decoded) >= len(whole) * 60  # every item decoded its whole episode
    for a, b in zip(windowed, whole):
        assert a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)
    assert all(item["patch_mask"].any() for item in windowed)  # image tokens compared, not only actions
