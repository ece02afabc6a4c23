"""``gato eval``: evaluate a trained folder on control tasks, captions and text.

    gato eval --model DIR --tasks NAMES|SUITE --episodes N [--output-dir OUT] [--num-envs K] [--seed S]
              [--captions N] [--data DIR]

Writes ``eval_results.json`` (fields in docs/EVALUATION.md), ``eval_results.md`` and
``normalized_scores.png`` into ``--output-dir`` (default ``DIR/eval``) and prints the tables. With
``--output-dir DIR`` (the model folder itself) the results sit where ``gato push`` uploads them from, and the
folder's model card (``README.md``) is rewritten to include them.

Runs unchanged under ``accelerate launch`` (``accelerate launch [--multi_gpu --num_processes N] -m gato.cli eval
...``): the tasks are shared out between the processes, one device each, and the main process writes the
results (docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a model on tasks: returns, normalized scores, plots",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder written by `gato train` (model + processor)")
    parser.add_argument("--tasks", default="default",
                        help="suite (default, full), domain or task names, comma-separated; '' for none (default: default)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per task (default 10)")
    parser.add_argument("--output-dir", help="where results go (default: MODEL/eval)")
    parser.add_argument("--num-envs", type=int, default=4, help="environments stepped together per task (default 4)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds evaluation episodes and prompt demonstrations (streams disjoint from data generation)")
    parser.add_argument("--prompt-tokens", type=int, default=None,
                        help="prompt demonstration length in tokens (default: as in training; 0 = none)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut episodes after this many steps")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sample actions at this temperature (default: greedy; 0 = greedy)")
    parser.add_argument("--continuous-decoding", default="median", choices=["median", "argmax"],
                        help="greedy choice of a continuous action's bin: the median of the predicted distribution "
                             "(default) or its most likely bin")
    parser.add_argument("--cache-implementation", default="dynamic", choices=["dynamic", "static"],
                        help="the action API's KV cache (static: the fast path for GPUs; same actions)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the static cache's decode steps (CUDA graphs on a GPU)")
    parser.add_argument("--captions", type=int, default=0, help="caption this many held-out images from --data (default 0)")
    parser.add_argument("--data", help="a `gato data generate` folder: caption and text validation splits")
    parser.add_argument("--no-text", dest="text", action="store_false", help="skip the text validation loss")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto",
                        help="auto (this process's GPU when there is one, as accelerate assigns it; else the CPU), "
                             "or a torch device: cpu, cuda, cuda:1 (default auto)")
    parser.add_argument("--env", default=None, metavar="ID",
                        help="a gymnasium id to play a task in that the suite does not know but the model learnt from "
                             "recorded data (default: the id stored with its spec in the model's task_specs.json)")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON", help="gym.make arguments for --env, a JSON object")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gato.evaluation.report import print_results
    from gato.evaluation.run_evaluation import EvaluationConfig, run_evaluation
    from gato.modeling_gato.acting import ActingConfig

    try:
        # --temperature turns sampling on (0: greedy); ActingConfig validates every acting flag.
        acting = ActingConfig(
            do_sample=args.temperature is not None, temperature=1.0 if args.temperature is None else args.temperature,
            continuous_decoding=args.continuous_decoding, cache_implementation=args.cache_implementation,
            compile=args.compile, prompt_tokens=args.prompt_tokens,
        )
        config = EvaluationConfig(
            model=args.model, tasks=args.tasks, episodes=args.episodes, output_dir=args.output_dir, num_envs=args.num_envs,
            seed=args.seed, max_steps=args.max_steps, acting=acting, captions=args.captions,
            data=args.data, text=args.text, threads=args.threads, device=args.device, progress=args.progress,
            env=args.env, env_kwargs=args.env_kwargs,
        )
        results = run_evaluation(config)
    except (ValueError, KeyError) as error:
        print(f"gato eval: {error}", file=sys.stderr)
        return 2
    if results is None:  # not the main process of an `accelerate launch`: the main one reports and writes
        return 0
    print_results(results)
    output_dir = Path(config.output_dir or Path(args.model) / "eval")
    print(f"results: {output_dir}")
    if output_dir.resolve() == Path(args.model).resolve():
        from gato.hub_cards import write_model_card

        print(f"model card: {write_model_card(output_dir)}")
    return 0
