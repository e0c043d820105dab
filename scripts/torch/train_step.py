#!/usr/bin/env python3
"""Time one training step of the large-MNIST sorting CNN with the SoftSort loss in PyTorch.

Each image is 1×112×28 (four MNIST digits stacked vertically). The CNN maps it to one score:
conv 5×5 1→32 (padding 2), ReLU, 2×2 max-pool; conv 5×5 32→64 (padding 2), ReLU, 2×2 max-pool;
linear 7·28·64 → 64, ReLU; linear 64 → 1. M sequences of n images give scores [M, n], SoftSort
(|·| distance) turns them into P [M, n, n], and the loss is the mean over all M·n rows of the
cross-entropy −Σ_j P_true[i, j] log(P[i, j] + 1e-20). One step is zero_grad, forward,
backward and an Adam update (lr 0.005). The images and true permutations are random, which
changes nothing in the cost.

The script also times the two convolution layers alone (forward, and forward plus backward)
on the activations they see for M = 20, n = 3 (60 images), for a per-layer comparison.
"""

import argparse
import json
import sys

import torch
from torch import nn

import reference_ops as ops

IMAGE_HEIGHT = 112
IMAGE_WIDTH = 28


class SortingCnn(nn.Module):
    """The score network: 1×112×28 image → one scalar score."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5, padding=2)
        self.fc1 = nn.Linear(7 * 28 * 64, 64)
        self.fc2 = nn.Linear(64, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, images):
        x = self.pool(torch.relu(self.conv1(images)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.fc1(x.flatten(start_dim=1)))
        return self.fc2(x).squeeze(-1)


def random_permutation_matrices(sequences, n, dtype, generator):
    """Return one-hot matrices [sequences, n, n]: row i marks the position of rank i."""
    matrices = torch.zeros(sequences, n, n, dtype=dtype)
    for b in range(sequences):
        order = torch.randperm(n, generator=generator)
        matrices[b, torch.arange(n), order] = 1
    return matrices


def softsort_loss(scores, p_true, tau):
    """Return mean over rows of −Σ_j P_true[i, j] log(P[i, j] + 1e-20), P = SoftSort(|·|, τ)."""
    p_hat = ops.softsort(scores, tau, power=1)
    return -(p_true * torch.log(p_hat + 1e-20)).sum(dim=-1).mean()


def time_train_step(sequences, n, tau, warmup, steps, dtype, generator):
    """Return the median and mean seconds of one Adam step on sequences × n random images."""
    model = SortingCnn().to(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    images = torch.rand(sequences * n, 1, IMAGE_HEIGHT, IMAGE_WIDTH, dtype=dtype, generator=generator)
    p_true = random_permutation_matrices(sequences, n, dtype, generator)

    def step():
        optimizer.zero_grad(set_to_none=True)
        scores = model(images).view(sequences, n)
        loss = softsort_loss(scores, p_true, tau)
        loss.backward()
        optimizer.step()

    seconds = ops.time_calls(step, warmup, steps)
    return ops.median(seconds), sum(seconds) / len(seconds)


def time_conv_layer(layer, input_shape, input_requires_grad, warmup, steps, dtype, generator):
    """Return median seconds of the layer's forward alone and of forward plus backward.

    The backward takes a fixed random output gradient and computes the weight and bias
    gradients, plus the input gradient when input_requires_grad is set (as for a layer that
    is not the first one of the network).
    """
    inputs = torch.rand(*input_shape, dtype=dtype, generator=generator)
    inputs.requires_grad_(input_requires_grad)
    with torch.no_grad():
        output_shape = layer(inputs).shape
    output_grad = torch.rand(*output_shape, dtype=dtype, generator=generator)

    def forward():
        with torch.no_grad():
            layer(inputs)

    def forward_backward():
        layer.zero_grad(set_to_none=True)
        inputs.grad = None
        torch.autograd.backward(layer(inputs), output_grad)

    forward_seconds = ops.median(ops.time_calls(forward, warmup, steps))
    forward_backward_seconds = ops.median(ops.time_calls(forward_backward, warmup, steps))
    return forward_seconds, forward_backward_seconds


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=20, help="sequences M per batch (default: 20)")
    parser.add_argument(
        "--lengths", nargs="+", type=int, default=[3, 15], help="sequence lengths n to time (default: 3 15)"
    )
    parser.add_argument("--tau", type=float, default=1024.0, help="SoftSort temperature (default: 1024)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (default: 3)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default: 20)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--dtype", choices=sorted(ops.DTYPES), default="float32", help="scalar type (default: float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, images and permutations (default: 0)")
    parser.add_argument("--out", help="JSON file to write the results to")
    args = parser.parse_args(argv)

    try:
        ops.setup_threads(args.threads)
    except ValueError as error:
        parser.error(str(error))
    if args.sequences < 1 or min(args.lengths) < 1:
        parser.error(f"--sequences and every length must be at least 1, got {args.sequences} and {args.lengths}")
    if not args.tau > 0:
        parser.error(f"--tau must be positive, got {args.tau}")
    if args.warmup < 0 or args.steps < 1:
        parser.error(f"--warmup must be at least 0 and --steps at least 1, got {args.warmup} and {args.steps}")
    return args


def main(argv):
    args = parse_args(argv)
    dtype = ops.DTYPES[args.dtype]
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    environment = ops.describe_environment(args.threads, args.dtype)
    print(f"# {environment}; {args.warmup} warm-up and {args.steps} timed steps, median reported")

    results = {"environment": environment, "warmup": args.warmup, "steps": args.steps, "train_step": [], "conv": []}

    print(f"{'training step':<32} {'images':>7} {'median ms':>10} {'mean ms':>10}")
    for n in args.lengths:
        median, mean = time_train_step(args.sequences, n, args.tau, args.warmup, args.steps, dtype, generator)
        images = args.sequences * n
        label = f"M={args.sequences}, n={n}, tau={args.tau:g}"
        print(f"{label:<32} {images:>7} {median * 1e3:>10.2f} {mean * 1e3:>10.2f}", flush=True)
        results["train_step"].append(
            {"sequences": args.sequences, "n": n, "images": images, "median_seconds": median, "mean_seconds": mean}
        )

    # The conv layers get the activation shapes of M sequences of n = 3 images (60 images for M = 20).
    conv_batch = args.sequences * 3
    model = SortingCnn().to(dtype)
    layers = [
        ("conv1 1->32 5x5", model.conv1, (conv_batch, 1, IMAGE_HEIGHT, IMAGE_WIDTH), False),
        ("conv2 32->64 5x5", model.conv2, (conv_batch, 32, IMAGE_HEIGHT // 2, IMAGE_WIDTH // 2), True),
    ]
    print(f"\n{'layer':<18} {'input':<18} {'forward ms':>11} {'fwd+bwd ms':>11}")
    for label, layer, shape, input_requires_grad in layers:
        forward, forward_backward = time_conv_layer(
            layer, shape, input_requires_grad, args.warmup, args.steps, dtype, generator
        )
        shape_text = "x".join(str(d) for d in shape)
        print(f"{label:<18} {shape_text:<18} {forward * 1e3:>11.2f} {forward_backward * 1e3:>11.2f}", flush=True)
        results["conv"].append(
            {
                "layer": label,
                "input_shape": list(shape),
                "input_grad": input_requires_grad,
                "forward_median_seconds": forward,
                "forward_backward_median_seconds": forward_backward,
            }
        )

    if args.out:
        with open(args.out, "w") as out_file:
            json.dump(results, out_file, indent=2)
            out_file.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
