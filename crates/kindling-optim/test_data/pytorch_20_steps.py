"""What PyTorch itself computes for the cases of tests/pytorch_semantics.rs.

Each case is an optimizer block as Kindling reads it (PyTorch's keyword arguments plus `name`);
the output line adds the weights after 20 steps on loss = 0.5 * sum(w^2) from [1, -2, 0.5, 3]
in f32 on the CPU, and the version of PyTorch that computed them. Regenerate with PyTorch installed (e.g. the bench's virtual environment):

    target/bench-venv/bin/python crates/kindling-optim/test_data/pytorch_20_steps.py \
        > crates/kindling-optim/test_data/pytorch_20_steps.jsonl
"""

import json

import torch

CLASSES = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}

CASES = [
    {"name": "sgd", "lr": 0.1},
    {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    {"name": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.5},
    {"name": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True},
    {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"name": "adam", "lr": 0.1},
    {"name": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6},
    {"name": "adam", "lr": 0.1, "weight_decay": 0.1},
    {"name": "adam", "lr": 0.1, "amsgrad": True},
    {"name": "adamw", "lr": 0.05},
    {"name": "adamw", "lr": 0.05, "weight_decay": 0.5},
    {"name": "adamw", "lr": 0.05, "amsgrad": True, "betas": [0.8, 0.9]},
    {"name": "adagrad", "lr": 0.1},
    {"name": "adagrad", "lr": 0.1, "lr_decay": 0.05},
    {"name": "adagrad", "lr": 0.1, "weight_decay": 0.1, "eps": 1e-6},
    {"name": "adagrad", "lr": 0.1, "initial_accumulator_value": 0.1},
    {"name": "adagrad", "lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1},
    {"name": "adagrad", "lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "weight_decay": 0.1},
    {"name": "rmsprop", "lr": 0.01},
    {"name": "rmsprop", "lr": 0.01, "momentum": 0.9},
    {"name": "rmsprop", "lr": 0.01, "centered": True, "alpha": 0.9},
    {"name": "rmsprop", "lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
]


def weights_after_20_steps(case: dict) -> list[float]:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in case.items() if k != "name"}
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float32, requires_grad=True)
    optimizer = CLASSES[case["name"]]([w], **kwargs)
    for _ in range(20):
        optimizer.zero_grad()
        (0.5 * (w**2).sum()).backward()
        optimizer.step()
    return [float(v) for v in w.detach()]


if __name__ == "__main__":
    torch.set_num_threads(1)
    for case in CASES:
        print(json.dumps({"optimizer": case, "pytorch": weights_after_20_steps(case), "torch": torch.__version__}))
