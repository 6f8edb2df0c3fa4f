"""Loads a run's PyTorch export into the equivalent torch.nn.Sequential and checks that it gives
the outputs Kindling recorded for the same inputs. Usage: check_export.py RUN_DIR [RUN_DIR...]"""
import json
import sys

import torch
import torch.nn as nn
from safetensors_f32 import read_raw


def read_safetensors(path):
    # Little-endian f32, as this machine's (x86-64, arm64) floats are.
    return {
        k: torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(shape)
        for k, (shape, raw) in read_raw(path).items()
    }


def pair(v):
    return tuple(v) if isinstance(v, list) else v


def build(layers):
    modules, image = [], True
    for layer in layers:
        name, cfg = (layer, {}) if isinstance(layer, str) else next(iter(layer.items()))
        if name == "conv2d":
            modules.append(nn.LazyConv2d(cfg["out_channels"], pair(cfg["kernel_size"]), pair(cfg["stride"]),
                                         pair(cfg["padding"]), pair(cfg["dilation"]), bias=cfg["bias"]))
        elif name == "batchnorm":
            bn = nn.LazyBatchNorm2d if image else nn.LazyBatchNorm1d
            modules.append(bn(eps=cfg["eps"], momentum=cfg["momentum"]))
        elif name == "maxpool2d":
            k = pair(cfg["kernel_size"])
            modules.append(nn.MaxPool2d(k, pair(cfg["stride"]) if cfg.get("stride") is not None else k,
                                        pair(cfg["padding"]), ceil_mode=cfg["ceil_mode"]))
        elif name == "avgpool2d":
            k = pair(cfg["kernel_size"])
            modules.append(nn.AvgPool2d(k, pair(cfg["stride"]) if cfg.get("stride") is not None else k,
                                        pair(cfg["padding"]), ceil_mode=cfg["ceil_mode"],
                                        count_include_pad=cfg["count_include_pad"]))
        elif name == "adaptive_avg_pool2d":
            size = cfg["output_size"]  # null (None) keeps that dimension, as PyTorch's does
            modules.append(nn.AdaptiveAvgPool2d(tuple(size) if isinstance(size, list) else size))
        elif name == "dropout":
            modules.append(nn.Dropout(cfg["p"]))
        elif name == "dropout2d":
            modules.append(nn.Dropout2d(cfg["p"]))
        elif name == "flatten":
            modules.append(nn.Flatten())
            image = False
        elif name == "linear":
            modules.append(nn.LazyLinear(cfg["out_features"], bias=cfg["bias"]))
        elif name == "leaky_relu":
            modules.append(nn.LeakyReLU(cfg["negative_slope"]))
        elif name == "elu":
            modules.append(nn.ELU(cfg["alpha"]))
        else:
            simple = {"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(),
                      "softmax": nn.Softmax(dim=1), "log_softmax": nn.LogSoftmax(dim=1)}
            modules.append(simple[name])
    return nn.Sequential(*modules)


for run in sys.argv[1:]:
    meta = json.load(open(f"{run}/model.pytorch.json"))
    model = build(meta["layers"])
    model(torch.zeros(2, *meta["input"]))  # materialises the lazy modules' shapes
    state = read_safetensors(f"{run}/model.pytorch.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, f"{run}: missing {missing}, unexpected {unexpected}"
    model.eval()
    check = read_safetensors(f"{run}/model.check.safetensors")
    with torch.no_grad():
        got = model(check["inputs"])
    want = check["outputs"]
    err = (got - want).abs().max().item()
    scale = want.abs().max().item()
    same = bool((got.argmax(1) == want.argmax(1)).all())
    assert err <= 1e-4 * max(1.0, scale) and same, f"{run}: max difference {err} (scale {scale}), same classes {same}"
    params = sum(p.numel() for p in model.parameters())
    print(f"{run}: torch.nn.Sequential with {params} parameters loads strictly and matches "
          f"{len(want)} outputs (max difference {err:.2e})")
