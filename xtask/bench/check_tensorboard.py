"""Reads a run's TensorBoard event file with the tensorboard package and checks every scalar
against the run's history.csv. Usage: check_tensorboard.py RUN_DIR"""
import csv
import glob
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
files = glob.glob(f"{run}/events.out.tfevents.*")
assert len(files) == 1, f"expected one event file in {run}, found {files}"
acc = EventAccumulator(files[0])
acc.Reload()
tags = sorted(acc.Tags()["scalars"])
expected_tags = sorted(["train/loss", "train/accuracy", "valid/loss", "valid/accuracy", "lr"])
assert tags == expected_tags, f"tags {tags}, expected {expected_tags}"

history = {}
with open(f"{run}/history.csv") as f:
    for row in csv.DictReader(f):
        epoch = int(row["epoch"])
        history[(row["split"], "loss", epoch)] = float(row["loss"])
        history[(row["split"], "accuracy", epoch)] = float(row["accuracy"])
        history[("lr", "", epoch)] = float(row["lr"])

checked = 0
for tag in tags:
    for event in acc.Scalars(tag):
        key = ("lr", "", event.step) if tag == "lr" else (*tag.split("/"), event.step)
        want = history[key]
        assert math.isclose(event.value, want, rel_tol=1e-5, abs_tol=1e-6), f"{tag} step {event.step}: {event.value} vs {want}"
        checked += 1
epochs = len({k[2] for k in history})
assert checked == 5 * epochs, f"{checked} scalars for {epochs} epochs"
print(f"tensorboard read {checked} scalars ({', '.join(tags)}) over {epochs} epochs; all equal history.csv")
