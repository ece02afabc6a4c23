"""Held-out imitation accuracy (teacher forcing) against a naive reference: one forward pass per action token."""

import numpy as np
import pytest
import torch
from gato.episodes.writer import episodes_to_dataset
from gato.evaluation.imitation import held_out_action_accuracy
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite.registry import get_task
from gato.training.run_training import build_processor

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def tiny(context: int, seed: int):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=context)
    torch.manual_seed(seed)
    return GatoForCausalLM(config).eval(), build_processor(config, context)


def episodes(task, count: int, steps: int, rng: np.random.Generator) -> list[dict]:
    spec = task.spec
    result = []
    for _ in range(count):
        observations = {
            field.name: rng.uniform(-2, 2, size=(steps, *field.shape)).astype(np.float32)
            for field in spec.observations
        }
        if spec.action.kind == "discrete":
            actions = rng.integers(0, spec.action.num_values, size=(steps, spec.action.size))
        else:
            actions = rng.uniform(-1, 1, size=(steps, spec.action.size)).astype(np.float32)
        result.append(
            {"task": spec.name, "observations": observations, "actions": actions, "rewards": np.zeros(steps)}
        )
    return result


def naive_predictions(model, processor, dataset_episodes, spec):
    """Expert and predicted action tokens, one full forward pass over the prefix before each action token."""
    ranges = np.asarray(processor.action_token_ranges(spec))
    expected, predicted = [], []
    for episode in dataset_episodes:
        for sequence in processor.tokenize_episode(episode, spec):
            positions = np.flatnonzero(sequence["loss_mask"])
            for k, position in enumerate(positions):
                with torch.no_grad():
                    logits = model(
                        input_ids=torch.as_tensor(sequence["input_ids"][None, :position]),
                        local_positions=torch.as_tensor(sequence["local_positions"][None, :position]),
                    ).logits[0, -1]
                lo, hi = ranges[k % len(ranges)]
                predicted.append(lo + int(logits[lo:hi].argmax()))
                expected.append(int(sequence["input_ids"][position]))
    return np.array(expected).reshape(-1, len(ranges)), np.array(predicted).reshape(-1, len(ranges))


@pytest.mark.parametrize("task_name", ["cartpole", "pendulum", "metaworld_reach"])
def test_teacher_forced_accuracy_equals_a_naive_prefix_by_prefix_reference(task_name):
    task = get_task(task_name)
    model, processor = tiny(context=96, seed=1)  # episodes longer than the context: several sequences each
    rng = np.random.default_rng(0)
    recorded = episodes(task, 3, 7 if task_name == "metaworld_reach" else 30, rng)
    dataset = episodes_to_dataset(recorded, task.spec)
    result = held_out_action_accuracy(model, processor, dataset, task.spec, max_episodes=2, batch_size=3)

    expected, predicted = naive_predictions(model, processor, recorded[:2], task.spec)
    assert result["episodes"] == 2 and result["steps"] == len(expected)
    assert result["token_accuracy"] == pytest.approx((expected == predicted).mean())
    assert result["action_accuracy"] == pytest.approx((expected == predicted).all(axis=1).mean())
    if task.spec.action.kind == "continuous":
        error = np.abs(
            processor.decode_action(predicted, task.spec) - processor.decode_action(expected, task.spec)
        ).mean()
        assert result["action_mae"] == pytest.approx(error, abs=1e-6)
    else:
        assert result["action_mae"] is None


def test_bad_arguments_are_refused_naming_them():
    task = get_task("cartpole")
    model, processor = tiny(context=64, seed=0)
    dataset = episodes_to_dataset(episodes(task, 1, 5, np.random.default_rng(1)), task.spec)
    with pytest.raises(ValueError, match="max_episodes"):
        held_out_action_accuracy(model, processor, dataset, task.spec, max_episodes=0)


def test_bf16_imitation_accuracy_does_not_tie_close_actions():
    """CartPole's two action tokens get output-layer rows whose logits differ by less than a bf16 logit's
    resolution: bf16 logits tie them (argmax would silently take action 0), float32 logits from the same hidden
    states keep them apart. The expert always pushes right (action 1), so every tie would count as a miss."""
    from gato.training.precision import cast_for_acting

    task = get_task("cartpole")
    model, processor = tiny(context=64, seed=0)
    cast_for_acting(model, "bfloat16")
    lo, hi = processor.action_token_ranges(task.spec)[0]
    with torch.no_grad():  # both logits ≈ 4 h[1]; action 1's differs by -2**-10 h[0], far below bf16's resolution at 4
        model.lm_head.weight[lo:hi] = 0.0
        model.lm_head.weight[lo:hi, 1] = 4.0
        model.lm_head.weight[lo + 1, 0] = -(2**-10)  # exactly representable in bf16; h[0] < 0 here
    recorded = episodes(task, 1, 12, np.random.default_rng(2))
    recorded[0]["actions"][:] = 1
    dataset = episodes_to_dataset(recorded, task.spec)
    result = held_out_action_accuracy(model, processor, dataset, task.spec, batch_size=1)

    # The reference: the same hidden states, each output-layer product in float32 and in bf16.
    right, ties = [], 0
    for sequence in processor.tokenize_episode(recorded[0], task.spec):
        batch = processor.collate([sequence])
        inputs = {key: value for key, value in batch.items() if key not in ("labels", "loss_mask")}
        with torch.no_grad():
            hidden = model.model(**inputs).last_hidden_state[0, :-1][torch.as_tensor(sequence["loss_mask"][1:]).bool()]
        rows = model.lm_head.weight[lo:hi]
        right += ((hidden.float() @ rows.float().T).argmax(-1) == 1).tolist()
        bf16 = hidden @ rows.T
        ties += int((bf16[:, 0] == bf16[:, 1]).sum())
    assert ties > 0 and 0 < sum(right)  # the case is real: bf16 logits tie where float32 ones choose action 1
    assert result["steps"] == len(right) and result["token_accuracy"] == pytest.approx(np.mean(right))
