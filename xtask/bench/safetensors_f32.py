"""Reads the f32 safetensors files Kindling writes (an 8-byte header length, the JSON header,
then little-endian data), without the safetensors package: name -> (shape, raw bytes). Shared
by check_export.py (torch) and check_onnx.py (numpy)."""
import json
import struct


def read_raw(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = (info["shape"], body[start:end])
    return out
