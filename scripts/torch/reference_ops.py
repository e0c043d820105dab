"""Dense sorting operators and the speed task in PyTorch, shared by the comparison scripts.

Every operator maps scores of shape [B, n] to a row-stochastic matrix P of shape [B, n, n].
Row i of P is a relaxed one-hot vector that points at the element of rank i, and rank 1 is
the largest score (descending order).

The operators and the speed task follow the authors' public PyTorch code: the SoftSort
repository (github.com/sprillo/softsort, files pytorch/softsort.py, pytorch/neuralsort_cpu_or_gpu.py
and pytorch/synthetic_experiment_speed_comparison.py) and the NeuralSort repository
(github.com/ermongroup/neuralsort, file pytorch/neuralsort.py).
"""

import platform
import statistics
import time

import torch
from torch import nn

# Temperatures of the speed task, as in the SoftSort authors' speed comparison script
# (SoftSort: Prillo & Eisenschlos, 2020). Sinkhorn reuses the SoftSort temperature.
SOFTSORT_TAU = 0.1
NEURALSORT_TAU = 100.0
SINKHORN_TAU = 0.1
SINKHORN_ITERATIONS = 20


def softsort(scores, tau, power):
    """Compute SoftSort: P[b, i, j] = softmax_j(−|sort(s)_i − s_j|^power / τ).

    sort(s) is descending and its values carry the gradient, with the sort permutation held
    constant. power = 1 gives the |·| distance and power = 2 the squared distance, which is
    computed as a square as in the SoftSort authors' SoftSort_p2.
    """
    sorted_scores = scores.sort(dim=-1, descending=True).values
    difference = sorted_scores.unsqueeze(-1) - scores.unsqueeze(-2)
    if power == 2:
        distance = difference.square()
    else:
        distance = difference.abs().pow(power)
    return torch.softmax(-distance / tau, dim=-1)


def neuralsort(scores, tau, cubic=False):
    """Compute NeuralSort: P[b, k, i] = softmax_i(((n + 1 − 2k) s_i − Σ_j |s_i − s_j|) / τ).

    Both forms build the full matrix A_s = |s_i − s_j| and broadcast its row sums to an
    [n, n] matrix B with matrix products. With cubic=False, B = (A_s @ 1) @ 1ᵀ costs O(n²) per
    batch row; this is the form the SoftSort authors timed in their speed comparison. With
    cubic=True, B = A_s @ (1 1ᵀ) is an [n, n] by [n, n] product, O(n³) per batch row, as in
    the original NeuralSort code. Both give the same P.
    """
    s = scores.unsqueeze(-1)
    n = s.shape[1]
    one = torch.ones(n, 1, dtype=s.dtype, device=s.device)
    pairwise_abs = (s - s.transpose(1, 2)).abs()
    if cubic:
        row_sums = pairwise_abs @ (one @ one.transpose(0, 1))
    else:
        row_sums = (pairwise_abs @ one) @ one.transpose(0, 1)
    ranks = torch.arange(1, n + 1, dtype=s.dtype, device=s.device)
    scaling = (n + 1 - 2 * ranks).unsqueeze(0)
    scaled = s @ scaling
    logits = (scaled - row_sums).transpose(1, 2)
    return torch.softmax(logits / tau, dim=-1)


def sinkhorn(scores, tau, iterations):
    """Compute Sinkhorn on the SoftSort squared-distance logits.

    The logits are L[b, i, j] = −(sort(s)_i − s_j)² / τ, with sort(s) descending as in
    softsort(). Each of the iterations subtracts the row log-sum-exp and then the column
    log-sum-exp from L, and the result is exp(L), a doubly stochastic matrix up to the
    remaining marginal error.

    NOTE: autograd keeps every iterate for the backward, so forward plus backward peaks at
    about 50 tensors of shape [B, n, n] (measured: 0.99 GB for B = 20, n = 500 in float32, so
    about 16 GB at n = 2000 and 63 GB at n = 4000).
    """
    sorted_scores = scores.sort(dim=-1, descending=True).values
    log_alpha = -(sorted_scores.unsqueeze(-1) - scores.unsqueeze(-2)).square() / tau
    for _ in range(iterations):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


# Operator name -> function from normalised scores [B, n] to P [B, n, n].
OPERATORS = {
    "softsort_sq": lambda s: softsort(s, SOFTSORT_TAU, power=2),
    "softsort_abs": lambda s: softsort(s, SOFTSORT_TAU, power=1),
    "neuralsort": lambda s: neuralsort(s, NEURALSORT_TAU, cubic=False),
    "neuralsort_cubic": lambda s: neuralsort(s, NEURALSORT_TAU, cubic=True),
    "sinkhorn": lambda s: sinkhorn(s, SINKHORN_TAU, SINKHORN_ITERATIONS),
}

OPERATOR_HELP = (
    "softsort_sq: SoftSort, squared distance, tau 0.1; "
    "softsort_abs: SoftSort, |.| distance, tau 0.1; "
    "neuralsort: NeuralSort, tau 100, (A_s @ 1) @ 1^T form, O(n^2) per row; "
    "neuralsort_cubic: NeuralSort, tau 100, original A_s @ (1 1^T) form, O(n^3) per row; "
    "sinkhorn: 20 log-domain Sinkhorn iterations on the softsort_sq logits"
)


class SpeedTask(nn.Module):
    """Free scores of shape [batch, n] for the speed task.

    The scores start uniform in (−1, 1). The forward pass min–max normalises each row to
    [0, 1] with the row minimum and maximum detached, so the gradient flows only through the
    scores themselves.
    """

    def __init__(self, batch, n, dtype, generator):
        super().__init__()
        initial = torch.rand(batch, n, dtype=dtype, generator=generator) * 2 - 1
        self.scores = nn.Parameter(initial)

    def forward(self):
        low = self.scores.min(dim=1, keepdim=True).values.detach()
        high = self.scores.max(dim=1, keepdim=True).values.detach()
        return (self.scores - low) / (high - low)


def speed_task_loss(operator, model):
    """Return mean(1 − log diag P): the loss that pulls P towards the identity permutation."""
    p = operator(model())
    return (1 - torch.diagonal(p, dim1=-2, dim2=-1).log()).mean()


def make_optimizer(model):
    """Return the speed task's optimiser: SGD, lr 10, momentum 0.5, weight decay 0.01."""
    return torch.optim.SGD(model.parameters(), lr=10.0, momentum=0.5, weight_decay=0.01)


def time_calls(function, warmup, repeats):
    """Call function warmup times untimed, then repeats times, and return each call's seconds."""
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def median(values):
    return statistics.median(values)


def parse_operators(names):
    """Return names unchanged after checking each against OPERATORS, or raise ValueError."""
    for name in names:
        if name not in OPERATORS:
            known = ", ".join(OPERATORS)
            raise ValueError(f"unknown operator {name!r}: expected one of {known}")
    return names


def setup_threads(threads):
    """Set the intra-op thread count, rejecting values below 1."""
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def describe_environment(threads, dtype):
    """Return a one-line description of the software and settings behind a measurement."""
    return (
        f"torch {torch.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, threads {threads}, dtype {dtype}"
    )


# Values accepted by the --dtype flag of every script.
DTYPES = {"float32": torch.float32, "float64": torch.float64}
