"""Fine-tune Gato with ``transformers.Trainer`` (optionally with LoRA adapters from ``peft``).

    python examples/finetune_with_trainer.py --data DIR --output-dir OUT [--model FOLDER | --preset gato-tiny]
                                             [--max-steps 50] [--batch-size 4] [--max-length 256] [--lora]

``--data`` is a folder written by ``gato data generate``; its datasets are mixed by equal weight, as
``gato train`` does (:class:`gato.training.mixture.MixtureDataset`, 25% prompted sequences). ``--model``
starts from a trained folder (``gato train``'s output); without it a fresh model of ``--preset`` is built.
``--lora`` freezes the model and trains low-rank adapters on every attention and MLP projection
(``q_proj k_proj v_proj o_proj fc_in fc_out``); the output folder then holds the adapter only
(``PeftModel.from_pretrained(base, OUT)`` loads it back). Runs on CPU where there is no GPU.

This is the Trainer route; ``gato train`` (Accelerate loop, exact resume, per-modality validation) is the
main one. The optimizer follows the paper either way (GATO_SPEC.md section 7): AdamW β=(0.9, 0.95),
weight decay 0.1 on matrices only, warm-up then cosine decay to 10% of the peak, gradient clipping 1.0.
"""

from __future__ import annotations

import argparse

import torch
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.mixture import MixtureDataset, mixture_weights, split_sources
from gato.training.optimization import parameter_groups
from gato.training.run_training import build_processor, load_data
from gato.training.trainer_collator import GatoDataCollator
from transformers import Trainer, TrainingArguments

# Every linear projection inside the decoder blocks: attention (GatoAttention) and MLP (GatoMLP).
LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder written by `gato data generate`")
    parser.add_argument("--output-dir", required=True, help="where the fine-tuned model (or LoRA adapter) goes")
    parser.add_argument("--model", help="a trained model folder to start from (default: a fresh --preset model)")
    parser.add_argument("--preset", default="gato-tiny", help="size preset of a fresh model")
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per device per step")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--logging-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    parser.add_argument("--lora-rank", type=int, default=8)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> GatoForCausalLM:
    if args.model:
        return GatoForCausalLM.from_pretrained(args.model)
    torch.manual_seed(args.seed)
    return GatoForCausalLM(GatoConfig.from_preset(args.preset, max_position_embeddings=args.max_length))


def add_lora(model: GatoForCausalLM, rank: int) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=LORA_TARGET_MODULES, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, lora)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    model = build_model(args)
    processor = build_processor(model.config, args.max_length)
    if args.lora:
        model = add_lora(model, args.lora_rank)
        model.print_trainable_parameters()

    training_args = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},
        warmup_steps=args.warmup_steps,
        max_grad_norm=1.0,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        # The collator needs every key of the processor's sequence dicts (see training/trainer_collator.py).
        remove_unused_columns=False,
    )
    # Enough distinct items for every process of the run (item i of the mixture is fixed by (seed, i)).
    sources, _ = split_sources(load_data(args.data), validation_fraction=0.0)
    length = args.max_steps * args.batch_size * training_args.world_size
    train_dataset = MixtureDataset(
        sources, processor, length=length, weights=mixture_weights(sources, {}, 1.0), seed=args.seed
    )
    # The paper's AdamW with the training loop's decay groups (no decay on norms, biases, embeddings);
    # Trainer builds the schedule above around it.
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay=0.1), lr=args.learning_rate, betas=(0.9, 0.95))
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=GatoDataCollator(processor),
        optimizers=(optimizer, None),
    )
    result = trainer.train()
    trainer.save_model(args.output_dir)
    if not trainer.is_world_process_zero():
        return
    if not args.lora:
        processor.save_pretrained(args.output_dir)
    print(
        f"trained {result.global_step} steps; mean training loss {result.training_loss:.4f}; saved to {args.output_dir}"
    )


if __name__ == "__main__":
    main()
