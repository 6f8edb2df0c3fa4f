"""The peer of `cargo xtask bench images`: torchvision's ImageFolder + DataLoader on the same
folder of class folders of PNGs, batch 64, shuffled, 2 worker processes, torch with 2 threads.

Two variants: `augmented` (Resize(34), CenterCrop(28), RandomHorizontalFlip, RandomRotation(15),
ToTensor, Normalize) and `plain` (ToTensor, Normalize). For each, the first pass is timed from
building the ImageFolder (listing the folder) through creating the DataLoader's iterator
(starting the workers) to the last batch, as a user experiences an epoch; the second pass is
another iterator over the same DataLoader (the workers start again: they are not persistent by
default). Prints one JSON line per variant. Usage: images_peer.py IMAGE_FOLDER"""
import json
import sys
import time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import datasets, transforms as T

ROOT = sys.argv[1]
BATCH, WORKERS = 64, 2
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]

VARIANTS = {
    "augmented": T.Compose(
        [
            T.Resize(34),
            T.CenterCrop(28),
            T.RandomHorizontalFlip(),
            T.RandomRotation(15),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    ),
    "plain": T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)]),
}


def one_pass(loader):
    """Every batch of one epoch; returns the number of images seen."""
    seen = 0
    for images, labels in loader:
        assert images.shape[1:] == (3, 28, 28), images.shape
        seen += labels.shape[0]
    return seen


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for name, transform in VARIANTS.items():
        start = time.perf_counter()
        folder = datasets.ImageFolder(ROOT, transform=transform)
        loader = DataLoader(folder, batch_size=BATCH, shuffle=True, num_workers=WORKERS)
        n = one_pass(loader)
        first = time.perf_counter() - start
        start = time.perf_counter()
        n2 = one_pass(loader)
        second = time.perf_counter() - start
        assert n == n2 == len(folder), (n, n2, len(folder))
        print(
            json.dumps(
                {
                    "peer": "torchvision",
                    "variant": name,
                    "images": n,
                    "classes": len(folder.classes),
                    "workers": WORKERS,
                    "torch": torch.__version__,
                    "torchvision": torchvision.__version__,
                    "cold_images_per_s": n / first,
                    "warm_images_per_s": n / second,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    # DataLoader workers are forked on Linux; the guard keeps this importable by spawn too.
    main()
