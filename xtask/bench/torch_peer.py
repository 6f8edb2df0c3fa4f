#!/usr/bin/env python3
"""PyTorch peer benchmark: the reference numbers Kindling's CPU benchmarks are compared against.

Usage:
  python torch_peer.py --model mnist_cnn --batch-size 64 --threads 2 \
      --warmup 5 --train-steps 60 --infer-batches 60 --seed 0 [--profile]

Prints exactly one JSON line on stdout; everything else (profile table) goes to stderr
so callers can parse stdout directly. Needs only torch.
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

# The PyPI wheel warns on import when numpy is absent; numpy is not needed here, and a
# stray warning would only look like a failure in the bench logs.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
# The PyPI wheel is a CUDA build; on a GPU-less box its profiler backend logs a spurious
# "gpuGetDeviceCount failed" ERROR. Only fatal messages are kept.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import torch
from torch import nn

# A small pool of batches is cycled so random-data generation stays out of the timed loop
# while still not feeding the exact same tensor every step.
POOL_BATCHES = 8
PROFILE_STEPS = 10


def mnist_cnn() -> nn.Module:
    # Must match Kindling's mnist_cnn layer for layer, or the comparison is meaningless.
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )


def mnist_cnn_bn() -> nn.Module:
    # Kindling's mnist_cnn_bn: batch norm after every convolution and the hidden linear layer.
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 100), nn.BatchNorm1d(100), nn.ReLU(),
        nn.Linear(100, 10),
    )


def lenet5() -> nn.Module:
    # Kindling's lenet5: tanh and average pooling; padding 2 keeps 28 x 28 inputs classic.
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Tanh(),
        nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10),
    )


def vgg3() -> nn.Module:
    # Kindling's vgg3: (conv-BN-ReLU x2, max-pool) x3 at 32/64/128 channels, then
    # (FC-BN-ReLU-Dropout) x2 at 256/128, then FC. 28 -> 14 -> 7 -> 3.
    layers, channels = [], 1
    for width in (32, 64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.Flatten())
    features = 128 * 3 * 3
    for width in (256, 128):
        layers += [nn.Linear(features, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(0.5)]
        features = width
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


def stereo_cnn() -> nn.Module:
    # Kindling's stereo_cnn, the stereo experiment's model, on 4 x 257 x 382 spectrograms and 11
    # directions: conv 7x7 stride 2 -> pool -> conv 3x3 -> pool -> conv 3x3 -> pool (no
    # padding; 32 x 14 x 22 features), then three linear layers with dropout and log-softmax.
    layers = [
        nn.Conv2d(4, 64, 7, stride=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    ]
    features = 32 * 14 * 22
    for width in (256, 256, 64):
        layers += [nn.Linear(features, width), nn.ReLU(), nn.Dropout(0.5)]
        features = width
    layers += [nn.Linear(features, 11), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


MODELS = {"mnist_cnn": mnist_cnn, "mnist_cnn_bn": mnist_cnn_bn, "lenet5": lenet5, "vgg3": vgg3, "stereo_cnn": stereo_cnn}
# Each model's sample shape and classes (Kindling's `natural_input`).
INPUTS = {"stereo_cnn": ((4, 257, 382), 11)}
MNIST = ((1, 28, 28), 10)


def make_pool(batch_size: int, seed: int, shape, classes: int):
    # Own generator so the data does not depend on how much RNG the model init consumed.
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch_size, *shape, generator=g),
         torch.randint(0, classes, (batch_size,), generator=g))
        for _ in range(POOL_BATCHES)
    ]


def train_steps(model, opt, loss_fn, pool, start: int, n: int) -> None:
    for i in range(start, start + n):
        x, y = pool[i % len(pool)]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()


def infer_batches(model, pool, start: int, n: int) -> None:
    for i in range(start, start + n):
        model(pool[i % len(pool)][0])


def peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="mnist_cnn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=60)
    p.add_argument("--infer-batches", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true",
                   help=f"after timing, profile {PROFILE_STEPS} training steps; table to stderr")
    a = p.parse_args()

    # Pin intra-op threads to the same budget Kindling gets; interop=1 because a sequential
    # model has no independent ops to overlap, and extra pools only add noise. Must run before
    # any parallel work or torch refuses to change it.
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    model = MODELS[a.model]()  # PyTorch default init
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    shape, classes = INPUTS.get(a.model, MNIST)
    pool = make_pool(a.batch_size, a.seed, shape, classes)

    # Warmup absorbs one-off costs (oneDNN primitive creation, allocator growth, Adam state
    # allocation) that a steady-state throughput number should not include.
    model.train()
    train_steps(model, opt, loss_fn, pool, 0, a.warmup)
    t0 = time.perf_counter()
    train_steps(model, opt, loss_fn, pool, a.warmup, a.train_steps)
    train_s = time.perf_counter() - t0

    model.eval()
    with torch.inference_mode():
        infer_batches(model, pool, 0, a.warmup)
        t0 = time.perf_counter()
        infer_batches(model, pool, a.warmup, a.infer_batches)
        infer_s = time.perf_counter() - t0

    # Profiling runs last, and RSS is read before it, so its overhead never leaks into
    # the reported numbers.
    rss_mib = peak_rss_mib()
    if a.profile:
        from torch.profiler import ProfilerActivity, profile
        model.train()
        with profile(activities=[ProfilerActivity.CPU], acc_events=True) as prof:
            train_steps(model, opt, loss_fn, pool, 0, PROFILE_STEPS)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)

    print(json.dumps({
        "peer": "pytorch",
        "torch": torch.__version__,
        "threads": a.threads,
        # ATen's kernels' instruction set (ATEN_CPU_CAPABILITY caps it; oneDNN's own cap is
        # ONEDNN_MAX_CPU_ISA, which `cargo xtask bench train --isa avx2` sets beside it).
        "isa": torch.backends.cpu.get_cpu_capability().lower(),
        "model": a.model,
        "batch_size": a.batch_size,
        "input": list(shape),
        "train_samples_per_s": round(a.train_steps * a.batch_size / train_s, 2),
        "infer_samples_per_s": round(a.infer_batches * a.batch_size / infer_s, 2),
        "peak_rss_mib": round(rss_mib, 1),
    }))


if __name__ == "__main__":
    main()
