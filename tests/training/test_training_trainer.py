"""transformers.Trainer with GatoDataCollator: batches match the processor's, the loss falls, LoRA trains adapters only."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite.token_layout import IGNORE_INDEX
from gato.training.mixture import MixtureDataset, SequenceListDataset, mixture_weights, split_sources
from gato.training.run_training import build_processor, load_data
from gato.training.trainer_collator import GatoDataCollator
from transformers import Trainer, TrainingArguments

MAX_LENGTH = 64
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def _model():
    torch.manual_seed(0)
    return GatoForCausalLM(GatoConfig.from_preset("gato-tiny", max_position_embeddings=MAX_LENGTH))


def _mixture(data_dir, processor, length):
    sources, _ = split_sources(load_data(data_dir), validation_fraction=0.0)
    return MixtureDataset(sources, processor, length=length, weights=mixture_weights(sources, {}, 1.0), seed=0)


def _train(model, processor, dataset, output_dir, max_steps, learning_rate=3e-3):
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=learning_rate,
        warmup_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=GatoDataCollator(processor))
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_collator_gives_the_processor_batch_also_after_a_datasets_round_trip(tiny_data_dir):
    processor = build_processor(_model().config, MAX_LENGTH)
    # Items 0..7 mix control steps, captions (image patches) and text, so image-free items sit beside image ones.
    items = [_mixture(tiny_data_dir, processor, 8)[i] for i in range(8)]
    assert {len(item["patch_pixels"]) > 0 for item in items} == {True, False}
    expected = processor.collate(items)
    # Arrow stores lists: an image-free item's patch_pixels comes back as [] and must regain its (0, 3, 16, 16) shape.
    stored = Dataset.from_list([{k: v.tolist() for k, v in item.items()} for item in items])
    for features in (items, list(stored), list(stored.with_format("numpy")), list(stored.with_format("torch"))):
        batch = GatoDataCollator(processor)(features)
        assert set(batch) == set(expected)
        for key in expected:
            assert batch[key].dtype == expected[key].dtype, key
            assert torch.equal(batch[key], expected[key]), key


def test_collator_pads_to_max_length_when_asked(tiny_data_dir):
    processor = build_processor(_model().config, MAX_LENGTH)
    batch = GatoDataCollator(processor, padding="max_length")([processor.tokenize_text("go to the red ball")])
    assert batch["input_ids"].shape == (1, MAX_LENGTH)


def test_collator_refuses_items_without_the_sequence_keys(tiny_data_dir):
    processor = build_processor(_model().config, MAX_LENGTH)
    item = dict(processor.tokenize_text("go to the red ball"))
    del item["loss_mask"]
    with pytest.raises(ValueError, match=r"features\[0\].*loss_mask.*remove_unused_columns=False"):
        GatoDataCollator(processor)([item])
    with pytest.raises(ValueError, match="padding"):
        GatoDataCollator(processor, padding="do_not_pad")


def test_model_loss_is_normalised_by_trainers_num_items_in_batch(tiny_data_dir):
    # Trainer counts targets as labels[:, 1:] != IGNORE_INDEX and passes the count; the loss must be sum / count.
    model = _model().eval()
    processor = build_processor(model.config, MAX_LENGTH)
    batch = GatoDataCollator(processor)([_mixture(tiny_data_dir, processor, 4)[i] for i in range(4)])
    count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    with torch.no_grad():
        mean = model(**batch).loss
        summed = model(**batch, num_items_in_batch=torch.tensor(1)).loss
        over_twice = model(**batch, num_items_in_batch=torch.tensor(2 * count)).loss
    assert summed.item() == pytest.approx(mean.item() * count, rel=1e-5)
    assert over_twice.item() == pytest.approx(mean.item() / 2, rel=1e-5)


def test_trainer_fits_a_tiny_mixture(tiny_data_dir, tmp_path):
    model = _model()
    processor = build_processor(model.config, MAX_LENGTH)
    losses = _train(model, processor, _mixture(tiny_data_dir, processor, 30 * 4), tmp_path, max_steps=30)
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_lora_trains_only_the_adapters(tiny_data_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    # LoRA leaves the (tied) token embeddings frozen, and at the default init (std 0.02) their rows are too short
    # for any hidden state to make confident logits: measured, the loss stalls near 9.5. A larger init stands in
    # for a trained base model, whose embeddings have grown.
    torch.manual_seed(0)
    base = GatoForCausalLM(
        GatoConfig.from_preset("gato-tiny", max_position_embeddings=MAX_LENGTH, initializer_range=0.2)
    )
    processor = build_processor(base.config, MAX_LENGTH)
    before = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    # Two factors (A, B) per targeted projection per layer, nothing else.
    assert len(trainable) == 2 * len(LORA_TARGETS) * base.config.num_hidden_layers
    assert all("lora_A" in name or "lora_B" in name for name in trainable), trainable
    lora_before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    # Fine-tuning data: eight fixed sequences of one task.
    sources, _ = split_sources(load_data(tiny_data_dir), validation_fraction=0.0)
    pendulum = MixtureDataset(
        [s for s in sources if s.name == "pendulum"], processor, length=8, seed=1, prompt_probability=0.0
    )
    losses = _train(
        model,
        processor,
        SequenceListDataset([pendulum[i] for i in range(8)]),
        tmp_path,
        max_steps=30,
        learning_rate=1e-2,
    )
    assert all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    after = model.get_base_model().state_dict()
    for name, tensor in before.items():
        # peft renames a targeted Linear's parameters to `<module>.base_layer.<weight|bias>`.
        stored = after.get(
            name, after.get(name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias"))
        )
        assert torch.equal(stored, tensor), name
    changed = [
        name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, lora_before[name])
    ]
    assert len(changed) == len(trainable)
