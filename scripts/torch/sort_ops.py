#!/usr/bin/env python3
"""Time forward and backward of each dense sorting operator on the speed-task loss in PyTorch.

For batch 20 and each n, the scores and loss are those of speed.py: min–max normalised free
scores and loss = mean(1 − log diag P). The forward alone (under torch.no_grad) and forward
plus backward are each run once untimed and then --repeats times, and the median is reported.
No optimiser step is taken, so every repetition uses the same scores.
"""

import argparse
import csv
import sys

import torch

import reference_ops as ops

BATCH = 20
DEFAULT_SIZES = [100, 500, 1000, 2000, 4000]
DEFAULT_OPERATORS = ["softsort_sq", "softsort_abs", "neuralsort", "neuralsort_cubic", "sinkhorn"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--operators",
        nargs="+",
        default=DEFAULT_OPERATORS,
        help=f"operators to time (default: {' '.join(DEFAULT_OPERATORS)}). {ops.OPERATOR_HELP}",
    )
    parser.add_argument(
        "--n", nargs="+", type=int, default=DEFAULT_SIZES, help=f"sizes n (default: {' '.join(map(str, DEFAULT_SIZES))})"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions; the median is reported (default: 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--dtype", choices=sorted(ops.DTYPES), default="float32", help="scalar type (default: float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scores (default: 0)")
    parser.add_argument(
        "--skip-after",
        type=float,
        metavar="SECONDS",
        help="skip the larger sizes of an operator once its forward plus backward takes longer than this",
    )
    parser.add_argument(
        "--out", help="CSV file to write (columns: operator,n,forward_seconds,forward_backward_seconds)"
    )
    args = parser.parse_args(argv)

    try:
        ops.parse_operators(args.operators)
        ops.setup_threads(args.threads)
    except ValueError as error:
        parser.error(str(error))
    if min(args.n) < 2:
        parser.error(f"every n must be at least 2 (min-max normalisation needs two scores), got {args.n}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def time_operator(operator, n, repeats, dtype, seed):
    """Return the median seconds of the loss forward alone and of forward plus backward."""
    generator = torch.Generator().manual_seed(seed)
    model = ops.SpeedTask(BATCH, n, dtype, generator)

    def forward():
        with torch.no_grad():
            ops.speed_task_loss(operator, model)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        ops.speed_task_loss(operator, model).backward()

    forward_seconds = ops.median(ops.time_calls(forward, warmup=1, repeats=repeats))
    forward_backward_seconds = ops.median(ops.time_calls(forward_backward, warmup=1, repeats=repeats))
    return forward_seconds, forward_backward_seconds


def main(argv):
    args = parse_args(argv)
    dtype = ops.DTYPES[args.dtype]
    environment = ops.describe_environment(args.threads, args.dtype)
    header = f"# dense operators, batch {BATCH}, median of {args.repeats}; {environment}"
    print(header)

    out_file = open(args.out, "w", newline="") if args.out else None
    writer = None
    if out_file:
        out_file.write(header + "\n")
        writer = csv.writer(out_file)
        writer.writerow(["operator", "n", "forward_seconds", "forward_backward_seconds"])

    print(f"{'operator':>14} {'n':>5} {'forward ms':>12} {'fwd+bwd ms':>12}")
    try:
        for name in args.operators:
            operator = ops.OPERATORS[name]
            for n in args.n:
                forward, forward_backward = time_operator(operator, n, args.repeats, dtype, args.seed)
                print(f"{name:>14} {n:>5} {forward * 1e3:>12.3f} {forward_backward * 1e3:>12.3f}", flush=True)
                if writer:
                    writer.writerow([name, n, f"{forward:.6e}", f"{forward_backward:.6e}"])
                    out_file.flush()
                if args.skip_after is not None and forward_backward > args.skip_after:
                    print(f"{name:>14}: {forward_backward:.3g} s exceeds --skip-after {args.skip_after}; skipping larger n")
                    break
    finally:
        if out_file:
            out_file.close()


if __name__ == "__main__":
    main(sys.argv[1:])
