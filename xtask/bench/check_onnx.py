"""Checks a run's model.onnx: onnx.checker.check_model(full_check=True), then onnxruntime on the
inputs of model.check.safetensors, which must give the outputs Kindling recorded within 1e-5.
Usage: check_onnx.py RUN_DIR [RUN_DIR...]"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors_f32 import read_raw

TOLERANCE = 1e-5


def read_safetensors(path):
    return {k: np.frombuffer(raw, dtype="<f4").reshape(shape) for k, (shape, raw) in read_raw(path).items()}


failed = []
for run in sys.argv[1:]:
    model = onnx.load(f"{run}/model.onnx")
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    for key in ["kindling.classes", "kindling.input_shape", "kindling.preprocessing"]:
        assert key in meta, f"{run}: no {key} in metadata_props"
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    check = read_safetensors(f"{run}/model.check.safetensors")
    inputs, want = check["inputs"], check["outputs"]
    assert list(inputs.shape[1:]) == meta["kindling.input_shape"], f"{run}: input shape"
    (got,) = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(inputs)})
    # Another batch size through the symbolic batch dimension: the first sample alone.
    (one,) = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(inputs[:1])})
    err = float(np.abs(got - want).max())
    err_one = float(np.abs(one - want[:1]).max())
    same = bool((got.argmax(1) == want.argmax(1)).all())
    ops = len(model.graph.node)
    ok = err <= TOLERANCE and err_one <= TOLERANCE and same
    print(f"{run}: model.onnx passes the full check; onnxruntime ({ops} nodes, {len(meta['kindling.classes'])} "
          f"classes) on {len(want)} inputs: max |diff| {err:.2e} (batch of 1: {err_one:.2e}), "
          f"same classes {same} -> {'ok' if ok else 'FAIL'}")
    if not ok:
        failed.append(run)
if failed:
    sys.exit(f"{len(failed)} model(s) differ from Kindling's outputs by more than {TOLERANCE}: {failed}")
