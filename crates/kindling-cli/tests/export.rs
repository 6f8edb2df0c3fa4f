//! `model.onnx` beside the PyTorch export of a run, and `kindling export` writing either again.

use kindling_train::onnx::proto::type_proto;

mod common;
use common::{kindling, text};

#[test]
fn a_run_writes_model_onnx_and_export_writes_the_same_files_again() {
    let base = std::env::temp_dir().join(format!("kindling-cli-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let run = base.join("run");
    let r = run.to_str().unwrap();
    common::quickstart_run(r, 300, 50);

    // The run's model.onnx decodes, with the quickstart's input, classes and preprocessing.
    let onnx = std::fs::read(run.join("model.onnx")).expect("the run wrote model.onnx");
    let model = kindling_train::onnx::decode(&onnx).expect("model.onnx decodes");
    assert_eq!(model.opset_import[0].version, Some(17));
    let graph = model.graph.as_ref().unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type()).collect();
    assert_eq!(
        ops,
        ["Conv", "Relu", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]
    );
    assert_eq!(graph.input[0].name(), "input");
    assert_eq!(graph.output[0].name(), "logits");
    let Some(type_proto::Value::TensorType(t)) = &graph.output[0].r#type.as_ref().unwrap().value else { panic!() };
    assert_eq!(t.shape.as_ref().unwrap().dim.len(), 2);
    let meta = |k: &str| -> serde_json::Value {
        let entry = model.metadata_props.iter().find(|e| e.key() == k).unwrap_or_else(|| panic!("no {k}"));
        serde_json::from_str(entry.value()).unwrap()
    };
    assert_eq!(meta("kindling.input_shape"), serde_json::json!([1, 28, 28]));
    assert_eq!(meta("kindling.classes")[9], "Ankle boot");
    // The evaluation-time preprocessing, as the run's model.json describes its input: the
    // normalisation, no data paths.
    let pre = meta("kindling.preprocessing");
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(pre["transforms"], package["input"]["transforms"]);
    assert_eq!(pre["kind"], "image");
    let mean = pre["transforms"][0]["normalize"]["mean"][0].as_f64().unwrap();
    assert!((mean - 0.286).abs() < 1e-6, "{pre}");
    assert!(!pre.to_string().contains("fashion-mnist"), "data paths in the metadata: {pre}");

    // `kindling export` writes the same bytes, to --output or into the run.
    let copy = base.join("copy.onnx");
    let out = kindling(&["export", r, "--format", "onnx", "--output", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), copy.display().to_string());
    assert!(std::fs::read(&copy).unwrap() == onnx, "the exported model.onnx differs from the run's");
    std::fs::remove_file(run.join("model.onnx")).unwrap();
    let out = kindling(&["export", r, "--format", "onnx"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(run.join("model.onnx")).unwrap() == onnx);

    let folder = base.join("pytorch");
    let out = kindling(&["export", r, "--format", "pytorch", "--output", folder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["model.pytorch.safetensors", "model.pytorch.json", "model.check.safetensors"] {
        let again = std::fs::read(folder.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(again == std::fs::read(run.join(name)).unwrap(), "{name} differs from the run's");
    }

    // An unknown format is a usage error naming the choices; a folder that is no run, too.
    let out = kindling(&["export", r, "--format", "tflite"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid value 'tflite'") && stderr.contains("onnx, pytorch"), "{stderr}");
    let out = kindling(&["export", base.to_str().unwrap(), "--format", "onnx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("config.yaml: missing"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&base);
}
