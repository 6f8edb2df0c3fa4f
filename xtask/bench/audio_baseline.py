"""The trivial baseline of experiment 1, run by `cargo xtask bench audio`: multinomial logistic
regression on per-band interaural level differences, so the stereo CNN's accuracy means
something.

Features, from the same WAVs the CNN reads (16-bit stereo, 16 kHz, padded or cropped to 6.1 s):
the STFT of each ear (n_fft 512, hop 256, periodic Hann, centred with reflect padding, as the
CNN's features), its power summed over all frames in 32 bands of 8 bins (250 Hz each, bins 1 to
256; DC left out), and per band the level difference 10 log10(E_left / E_right) in dB: 32 numbers
per file. They are standardised with the training set's mean and std.

Classifier: softmax regression with an L2 penalty lambda * |W|^2 / 2 (biases not penalised),
fitted to convergence by L-BFGS (scipy) in float64. lambda is chosen from
1e-4, 1e-3, ..., 10 by 5-fold stratified cross-validation on the training set only; ties go to
the larger lambda. The test set is used once.

Experiments (one JSON line each):
- kemar-hard -> fabian-hard: train on the KEMAR head with 0 dB SNR noise and 0.4 s RT60, test
  on the FABIAN head with the same conditions (stereo-direction-hard.yaml's setting);
- kemar -> fabian: train on the clean KEMAR set, test on the clean FABIAN set (another head);
- kemar 80/20: the clean KEMAR set, a stratified split holding out 20% of each class (seed 0;
  the same proportions as stereo-direction.yaml's valid_fraction, not the same files);
- kemar-hard 80/20: the same on the hard KEMAR set (same head, for reference).

Usage: audio_baseline.py DATA_DIR (the folder holding kemar/, kemar-hard/, fabian-hard/, fabian/)."""
import csv
import json
import os
import sys
import wave

import numpy as np
from scipy.optimize import minimize

N_FFT, HOP, LENGTH, BANDS = 512, 256, 97_600, 32
LAMBDAS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


def read(path):
    with wave.open(path) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2, path
        frames = w.readframes(w.getnframes())
    x = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    x = x.reshape(-1, 2).T
    out = np.zeros((2, LENGTH))
    n = min(LENGTH, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def band_level_differences(path):
    x = np.pad(read(path), ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    frames = 1 + LENGTH // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spec = np.fft.rfft(x[:, idx] * WINDOW, axis=-1)  # 2 x frames x 257
    power = (spec.real**2 + spec.imag**2).sum(axis=1)[:, 1:]  # 2 x 256, summed over frames
    energy = power.reshape(2, BANDS, -1).sum(axis=-1) + 1e-12
    return 10 * np.log10(energy[0] / energy[1])


def load(manifest):
    root = os.path.dirname(manifest)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.stack([band_level_differences(os.path.join(root, r["path"])) for r in rows])
    return x, [r["label"] for r in rows]


def fit(x, y, classes, lam):
    n, d = x.shape
    onehot = np.eye(classes)[y]

    def loss(theta):
        w, b = theta[: d * classes].reshape(d, classes), theta[d * classes :]
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        g = (np.exp(logp) - onehot) / n
        value = -(onehot * logp).sum() / n + 0.5 * lam * (w**2).sum()
        return value, np.concatenate([(x.T @ g + lam * w).ravel(), g.sum(axis=0)])

    theta = minimize(loss, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B", options={"maxiter": 5000}).x
    return theta[: d * classes].reshape(d, classes), theta[d * classes :]


def stratified_folds(y, k, seed):
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = np.arange(len(members)) % k
    return fold


def train_and_test(x_train, y_train, x_test, y_test, classes):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    folds = stratified_folds(y_train, 5, 0)
    best = None
    for lam in LAMBDAS:
        right = 0
        for k in range(5):
            w, b = fit(x_train[folds != k], y_train[folds != k], classes, lam)
            right += ((x_train[folds == k] @ w + b).argmax(axis=1) == y_train[folds == k]).sum()
        if best is None or right >= best[1]:
            best = (lam, right)
    lam = best[0]
    w, b = fit(x_train, y_train, classes, lam)
    pred = (x_test @ w + b).argmax(axis=1)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (y_test, pred), 1)
    return {
        "lambda": lam,
        "cv_accuracy": best[1] / len(y_train),
        "train_accuracy": float(((x_train @ w + b).argmax(axis=1) == y_train).mean()),
        "accuracy": float((pred == y_test).mean()),
        "confusion": confusion.tolist(),
    }


def main():
    data = sys.argv[1]
    sets = {name: load(os.path.join(data, name, "manifest.csv")) for name in ["kemar", "kemar-hard", "fabian-hard", "fabian"]}
    classes = sorted(set(sets["kemar"][1]))
    labels = {name: np.array([classes.index(l) for l in y]) for name, (_, y) in sets.items()}
    feats = {name: x for name, (x, _) in sets.items()}
    experiments = [
        ("kemar-hard", "fabian-hard", None),
        ("kemar", "fabian", None),
        ("kemar", "kemar", 0.2),
        ("kemar-hard", "kemar-hard", 0.2),
    ]
    for train, test, held_out in experiments:
        x, y = feats[train], labels[train]
        if held_out is None:
            tr, te = np.ones(len(y), bool), None
            x_test, y_test = feats[test], labels[test]
            name = f"{train} -> {test}"
        else:
            rng = np.random.default_rng(0)
            te = np.zeros(len(y), bool)
            for c in np.unique(y):
                members = rng.permutation(np.flatnonzero(y == c))
                te[members[: round(held_out * len(members))]] = True
            tr = ~te
            x_test, y_test = x[te], y[te]
            name = f"{train}, {round(100 * (1 - held_out))}/{round(100 * held_out)} split"
        result = train_and_test(x[tr], y[tr], x_test, y_test, len(classes))
        result.update({"baseline": name, "train": int(tr.sum()), "test": int(len(y_test)), "classes": classes})
        print(json.dumps(result), flush=True)


main()
