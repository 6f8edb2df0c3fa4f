"""The peers of `cargo xtask bench audio`: the same WAV files -> normalised [L-mag, R-mag,
L-phase, R-phase] features (n_fft 512, hop 256, periodic Hann, centre with reflect padding),
through torch.stft, librosa.stft and numpy's rfft, one file after another as a notebook loop
does. Prints one JSON line per peer. Usage: audio_peer.py WAV_DIR"""
import glob
import json
import sys
import time
import wave

import numpy as np

files = sorted(glob.glob(f"{sys.argv[1]}/**/*.wav", recursive=True))
N_FFT, HOP, LENGTH = 512, 256, 97_600


def read(path):
    with wave.open(path) as w:
        frames = w.readframes(w.getnframes())
    x = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    x = x.reshape(-1, 2).T
    out = np.zeros((2, LENGTH), dtype=np.float32)
    n = min(LENGTH, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def normalise(mag, phase):
    m = (mag - mag.mean()) / (mag.std() + 1e-8)
    p = [(ph - ph.mean()) / (ph.std() + 1e-8) for ph in phase]
    return np.stack([m[0], m[1], p[0], p[1]])


def with_torch():
    import torch

    torch.set_num_threads(2)
    window = torch.hann_window(N_FFT)
    for f in files:
        x = torch.from_numpy(read(f))
        spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
        mag, phase = spec.abs(), spec.angle()
        m = (mag - mag.mean()) / (mag.std(unbiased=False) + 1e-8)
        p = (phase - phase.mean(dim=(1, 2), keepdim=True)) / (phase.std(dim=(1, 2), unbiased=False, keepdim=True) + 1e-8)
        out = torch.cat([m, p])
        assert out.shape == (4, 257, 382), out.shape


def with_librosa():
    import librosa

    for f in files:
        x = read(f)
        spec = np.stack([librosa.stft(c, n_fft=N_FFT, hop_length=HOP, center=True, pad_mode="reflect") for c in x])
        out = normalise(np.abs(spec), np.angle(spec))
        assert out.shape == (4, 257, 382), out.shape


def with_numpy():
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    frames = 1 + LENGTH // HOP
    for f in files:
        x = np.pad(read(f), ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
        spec = np.fft.rfft(x[:, idx] * window, axis=-1).transpose(0, 2, 1)
        out = normalise(np.abs(spec), np.angle(spec))
        assert out.shape == (4, 257, 382), out.shape


for name, fn in [("torch.stft", with_torch), ("librosa", with_librosa), ("numpy", with_numpy)]:
    fn()  # warm-up: imports, plans, page cache
    start = time.perf_counter()
    fn()
    secs = time.perf_counter() - start
    print(json.dumps({"peer": name, "files": len(files), "files_per_s": len(files) / secs}))
