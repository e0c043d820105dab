#!/usr/bin/env python3
"""Time the SoftSort paper's speed task in PyTorch, one training step at a time.

For each operator and each n, 20 rows of n free scores are trained so that P approaches the
identity permutation: loss = mean(1 − log diag P), optimised with SGD (lr 10, momentum 0.5,
weight decay 0.01). --warmup steps run untimed (1 by default, where the authors' speed
comparison script ran 100), then --steps steps are timed together and the mean time per step
(forward, backward and optimiser update) is reported.
"""

import argparse
import csv
import sys

import torch

import reference_ops as ops

BATCH = 20
DEFAULT_OPERATORS = ["softsort_sq", "softsort_abs", "neuralsort", "sinkhorn"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--operators",
        nargs="+",
        default=DEFAULT_OPERATORS,
        help=f"operators to time (default: {' '.join(DEFAULT_OPERATORS)}). {ops.OPERATOR_HELP}",
    )
    parser.add_argument("--n", nargs="+", type=int, help="explicit list of sizes n (overrides the range)")
    parser.add_argument("--n-min", type=int, default=100, help="smallest n of the range (default: 100)")
    parser.add_argument("--n-max", type=int, default=4000, help="largest n of the range, inclusive (default: 4000)")
    parser.add_argument("--n-step", type=int, default=100, help="step between sizes of the range (default: 100)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (default: 1)")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per (operator, n) (default: 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--dtype", choices=sorted(ops.DTYPES), default="float32", help="scalar type (default: float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial scores (default: 0)")
    parser.add_argument(
        "--skip-after",
        type=float,
        metavar="SECONDS",
        help="skip the larger sizes of an operator once one of its steps takes longer than this",
    )
    parser.add_argument("--out", help="CSV file to write (columns: operator,n,seconds_per_step)")
    args = parser.parse_args(argv)

    try:
        ops.parse_operators(args.operators)
        ops.setup_threads(args.threads)
    except ValueError as error:
        parser.error(str(error))
    if args.n is None:
        if args.n_step < 1:
            parser.error(f"--n-step must be at least 1, got {args.n_step}")
        args.n = list(range(args.n_min, args.n_max + 1, args.n_step))
    if not args.n or min(args.n) < 2:
        parser.error(f"every n must be at least 2 (min-max normalisation needs two scores), got {args.n}")
    if args.warmup < 0 or args.steps < 1:
        parser.error(f"--warmup must be at least 0 and --steps at least 1, got {args.warmup} and {args.steps}")
    return args


def time_training(operator, n, warmup, steps, dtype, seed):
    """Return the mean seconds per timed training step and the loss of the last step."""
    generator = torch.Generator().manual_seed(seed)
    model = ops.SpeedTask(BATCH, n, dtype, generator)
    optimizer = ops.make_optimizer(model)
    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = ops.speed_task_loss(operator, model)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())

    seconds = ops.time_calls(step, warmup, steps)
    return sum(seconds) / steps, losses[-1].item()


def main(argv):
    args = parse_args(argv)
    dtype = ops.DTYPES[args.dtype]
    environment = ops.describe_environment(args.threads, args.dtype)
    header = f"# speed task, batch {BATCH}, {args.warmup} warm-up and {args.steps} timed steps; {environment}"
    print(header)

    out_file = open(args.out, "w", newline="") if args.out else None
    writer = None
    if out_file:
        out_file.write(header + "\n")
        writer = csv.writer(out_file)
        writer.writerow(["operator", "n", "seconds_per_step"])

    try:
        for name in args.operators:
            operator = ops.OPERATORS[name]
            for n in args.n:
                per_step, loss = time_training(operator, n, args.warmup, args.steps, dtype, args.seed)
                print(f"{name:>14} n={n:>5}: {per_step * 1e3:10.3f} ms/step  (final loss {loss:.4f})", flush=True)
                if writer:
                    writer.writerow([name, n, f"{per_step:.6e}"])
                    out_file.flush()
                if args.skip_after is not None and per_step > args.skip_after:
                    print(f"{name:>14}: {per_step:.3g} s per step exceeds --skip-after {args.skip_after}; skipping larger n")
                    break
    finally:
        if out_file:
            out_file.close()


if __name__ == "__main__":
    main(sys.argv[1:])
