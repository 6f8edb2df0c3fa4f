use std::collections::HashSet;

use kindling_models::{PRESETS, infer, preset};

use super::*;

fn input_of(name: &str) -> [usize; 3] {
    if name == "stereo_cnn" || name == "direction_cnn" { [4, 257, 382] } else { [1, 28, 28] }
}

/// A state dict with PyTorch's names and shapes for `layers`, every value distinct.
fn fake_state(layers: &[LayerSpec], shape: [usize; 3]) -> StateDict {
    let infos = infer(layers, &Shape::Image(shape)).unwrap();
    let mut state = StateDict::new();
    let mut put = |name: String, dims: Vec<usize>| {
        let n: usize = dims.iter().product();
        let bytes = (0..n).flat_map(|v| (v as f32 * 1e-3).to_le_bytes()).collect();
        state.insert(name, (dims, bytes));
    };
    for (i, (layer, info)) in layers.iter().zip(&infos).enumerate() {
        match (layer, &info.input) {
            (LayerSpec::Conv2d(c), Shape::Image([in_c, _, _])) => {
                let [kh, kw] = c.kernel_size.hw();
                put(format!("{i}.weight"), vec![c.out_channels, *in_c, kh, kw]);
                put(format!("{i}.bias"), vec![c.out_channels]);
            }
            (LayerSpec::Linear(l), Shape::Flat(n)) => {
                put(format!("{i}.weight"), vec![l.out_features, *n]);
                put(format!("{i}.bias"), vec![l.out_features]);
            }
            (LayerSpec::Batchnorm(_), s) => {
                let c = match s {
                    Shape::Image([c, _, _]) => *c,
                    Shape::Flat(n) => *n,
                };
                for k in ["weight", "bias", "running_mean", "running_var"] {
                    put(format!("{i}.{k}"), vec![c]);
                }
            }
            _ => {}
        }
    }
    state
}

fn model(name: &str) -> ModelProto {
    let layers = preset(name, 10).unwrap();
    let shape = input_of(name);
    let facts = Facts { classes: (0..10).map(|c| format!("c{c}")).collect(), preprocessing: serde_json::Value::Null };
    build(&layers, shape, &fake_state(&layers, shape), &facts).unwrap()
}

fn ops(m: &ModelProto) -> Vec<&str> {
    m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_deref().unwrap()).collect()
}

#[test]
fn the_model_round_trips_through_prost() {
    for name in PRESETS {
        let m = model(name);
        let bytes = encode(&m);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, m, "{name}");
        assert_eq!(encode(&back), bytes, "{name}: re-encoding gives the same bytes");
        assert_eq!(back.ir_version, Some(IR_VERSION));
        assert_eq!(back.opset_import[0].version, Some(17));
    }
}

#[test]
fn each_preset_has_the_expected_operators_in_order() {
    let conv_relu = ["Conv", "Relu"];
    let expect: Vec<(&str, Vec<&str>)> = vec![
        (
            "mnist_cnn",
            [&conv_relu[..], &conv_relu, &["MaxPool"], &conv_relu, &["MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]]
                .concat(),
        ),
        (
            "mnist_cnn_bn",
            vec![
                "Conv",
                "BatchNormalization",
                "Relu",
                "Conv",
                "BatchNormalization",
                "Relu",
                "MaxPool",
                "Conv",
                "BatchNormalization",
                "Relu",
                "MaxPool",
                "Flatten",
                "Gemm",
                "BatchNormalization",
                "Relu",
                "Gemm",
            ],
        ),
        (
            "mnist_cnn_dropout2d",
            [&conv_relu[..], &conv_relu, &["MaxPool"], &conv_relu, &["MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]]
                .concat(),
        ),
        ("vgg3", {
            let block = ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Relu", "MaxPool"];
            let fc = ["Gemm", "BatchNormalization", "Relu"];
            [&block[..], &block, &block, &["Flatten"], &fc, &fc, &["Gemm"]].concat()
        }),
        (
            "stereo_cnn",
            [
                &["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten"][..],
                &["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "LogSoftmax"],
            ]
            .concat(),
        ),
        ("mlp", vec!["Flatten", "Gemm", "Relu", "Gemm"]),
        ("dropout_mlp", vec!["Flatten", "Gemm", "Relu", "Gemm"]),
        ("bn_mlp", vec!["Flatten", "Gemm", "BatchNormalization", "Relu", "Gemm"]),
        (
            "lenet5",
            vec![
                "Conv",
                "Tanh",
                "AveragePool",
                "Conv",
                "Tanh",
                "AveragePool",
                "Flatten",
                "Gemm",
                "Tanh",
                "Gemm",
                "Tanh",
                "Gemm",
            ],
        ),
        (
            "lenet5_bn",
            vec![
                "Conv",
                "BatchNormalization",
                "Tanh",
                "AveragePool",
                "Conv",
                "BatchNormalization",
                "Tanh",
                "AveragePool",
                "Flatten",
                "Gemm",
                "BatchNormalization",
                "Tanh",
                "Gemm",
                "BatchNormalization",
                "Tanh",
                "Gemm",
            ],
        ),
        ("direction_cnn", {
            let block = ["Conv", "BatchNormalization", "Relu", "MaxPool"];
            // 64 x 16 x 11 averaged over time: a 1 x 11 window.
            [&block[..], &block, &block, &block, &["AveragePool", "Flatten", "Gemm", "Relu", "Gemm"]].concat()
        }),
    ];
    assert_eq!(expect.len(), PRESETS.len(), "every preset is listed");
    for (name, ops_expected) in expect {
        assert_eq!(ops(&model(name)), ops_expected, "{name}");
    }
}

#[test]
fn nodes_are_connected_from_the_input_to_the_output() {
    for name in PRESETS {
        let m = model(name);
        let g = m.graph.as_ref().unwrap();
        let mut known: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_deref().unwrap()).collect();
        known.insert("input");
        let mut used = HashSet::new();
        for n in &g.node {
            for i in &n.input {
                assert!(known.contains(i.as_str()), "{name}: {} reads {i} before anything writes it", n.name());
                used.insert(i.as_str());
            }
            assert_eq!(n.output.len(), 1);
            assert!(known.insert(&n.output[0]), "{name}: {} written twice", n.output[0]);
        }
        let out = g.output[0].name.as_deref().unwrap();
        assert_eq!(g.node.last().unwrap().output[0], out, "{name}: the last node writes the output");
        assert_eq!(out, if *name == "stereo_cnn" { "log_probabilities" } else { "logits" });
        // Every tensor but the output is read by some node: nothing dangles.
        for t in known.iter().filter(|t| **t != out) {
            assert!(used.contains(t), "{name}: {t} is never read");
        }
        let Some(type_proto::Value::TensorType(t)) = &g.input[0].r#type.as_ref().unwrap().value else { panic!() };
        let dims = &t.shape.as_ref().unwrap().dim;
        assert_eq!(dims[0].value, Some(dimension::Value::DimParam("batch".into())));
        let expect: Vec<i64> = input_of(name).iter().map(|&d| d as i64).collect();
        let got: Vec<i64> = dims[1..]
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => v,
                _ => panic!("fixed dims"),
            })
            .collect();
        assert_eq!(got, expect);
    }
}

#[test]
fn initializers_have_the_state_dicts_shapes_and_bytes() {
    for name in PRESETS {
        let layers = preset(name, 10).unwrap();
        let state = fake_state(&layers, input_of(name));
        let m = model(name);
        let g = m.graph.unwrap();
        let weights: Vec<&TensorProto> = g.initializer.iter().filter(|t| !t.name().starts_with("gelu.")).collect();
        assert_eq!(weights.len(), state.len(), "{name}: every tensor of the state dict, once");
        for t in weights {
            let (dims, bytes) = &state[t.name()];
            assert_eq!(t.dims, dims.iter().map(|&d| d as i64).collect::<Vec<_>>(), "{name}: {}", t.name());
            assert_eq!(t.raw_data.as_ref(), Some(bytes));
            assert_eq!(t.data_type, Some(DataType::Float as i32));
        }
    }
}

#[test]
fn a_weight_of_the_wrong_shape_or_missing_is_an_error() {
    let layers = preset("mlp", 10).unwrap();
    let mut state = fake_state(&layers, [1, 28, 28]);
    state.get_mut("1.weight").unwrap().0 = vec![784, 128];
    let err = build(&layers, [1, 28, 28], &state, &Facts::default()).unwrap_err();
    assert!(err.contains("1.weight"), "{err}");
    state.remove("1.weight");
    let err = build(&layers, [1, 28, 28], &state, &Facts::default()).unwrap_err();
    assert!(err.contains("no 1.weight"), "{err}");
}

#[test]
fn other_layers_become_their_operators() {
    use kindling_models::{EluSpec, LeakyReluSpec};
    let layers = vec![
        LayerSpec::Flatten,
        LayerSpec::Gelu,
        LayerSpec::LeakyRelu(LeakyReluSpec { negative_slope: 0.2 }),
        LayerSpec::Elu(EluSpec { alpha: 1.5 }),
        LayerSpec::Sigmoid,
        LayerSpec::Softmax,
    ];
    let m = build(&layers, [1, 2, 2], &StateDict::new(), &Facts::default()).unwrap();
    assert_eq!(ops(&m), ["Flatten", "Div", "Erf", "Add", "Mul", "Mul", "LeakyRelu", "Elu", "Sigmoid", "Softmax"]);
    let g = m.graph.unwrap();
    assert_eq!(g.output[0].name(), "probabilities");
    assert_eq!(g.node[6].attribute[0].f, Some(0.2));
    // A model whose last layer leaves an image is flattened, as Sequential::forward does.
    let m = build(&[LayerSpec::Relu], [1, 2, 2], &StateDict::new(), &Facts::default()).unwrap();
    assert_eq!(ops(&m), ["Relu", "Flatten"]);
}

/// The adaptive pool's operators: a global average for 1 x 1, one average window where the
/// sizes divide (none where they are equal), and per dimension that does not divide, a slice
/// and a mean per cell, joined, with each cell's bounds those of PyTorch's definition.
#[test]
fn adaptive_pooling_becomes_an_exact_equivalent() {
    use kindling_models::{AdaptiveAvgPoolSpec, OutputSize};
    let pool = |output_size| vec![LayerSpec::AdaptiveAvgPool2d(AdaptiveAvgPoolSpec { output_size })];
    let graph = |output_size, shape| build(&pool(output_size), shape, &StateDict::new(), &Facts::default()).unwrap();
    assert_eq!(ops(&graph(OutputSize::Square(1), [3, 7, 5])), ["GlobalAveragePool", "Flatten"]);
    assert_eq!(ops(&graph(OutputSize::Rect([Some(1), Some(1)]), [3, 7, 5])), ["GlobalAveragePool", "Flatten"]);
    let m = graph(OutputSize::Rect([None, Some(1)]), [3, 16, 23]);
    assert_eq!(ops(&m), ["AveragePool", "Flatten"]);
    let kernel = &m.graph.as_ref().unwrap().node[0].attribute;
    assert_eq!(kernel.iter().find(|a| a.name() == "kernel_shape").unwrap().ints, [1, 23]);
    assert_eq!(kernel.iter().find(|a| a.name() == "strides").unwrap().ints, [1, 23]);
    assert_eq!(ops(&graph(OutputSize::Rect([None, None]), [3, 4, 4])), ["Flatten"]);
    // 7 rows into 3 cells (rows 0..3, 2..5, 4..7), 10 columns into 5 windows of 2.
    let m = graph(OutputSize::Rect([Some(3), Some(5)]), [2, 7, 10]);
    let slice_mean = ["Slice", "ReduceMean"];
    assert_eq!(ops(&m), [&slice_mean[..], &slice_mean, &slice_mean, &["Concat", "AveragePool", "Flatten"]].concat());
    let g = m.graph.unwrap();
    let int64 = |name: &str| {
        let t = g.initializer.iter().find(|t| t.name() == name).unwrap();
        assert_eq!(t.data_type, Some(DataType::Int64 as i32));
        i64::from_le_bytes(t.raw_data.as_ref().unwrap()[..].try_into().unwrap())
    };
    let bounds: Vec<(i64, i64)> =
        (0..3).map(|c| (int64(&format!("0.h{c}.starts")), int64(&format!("0.h{c}.ends")))).collect();
    assert_eq!(bounds, [(0, 3), (2, 5), (4, 7)]);
    assert_eq!(int64("0.h.axes"), 2);
    let window = g.node.iter().find(|n| n.op_type() == "AveragePool").unwrap();
    assert_eq!(window.attribute.iter().find(|a| a.name() == "kernel_shape").unwrap().ints, [1, 2]);
    let concat = g.node.iter().find(|n| n.op_type() == "Concat").unwrap();
    assert_eq!(concat.input, ["0.h0.ReduceMean", "0.h1.ReduceMean", "0.h2.ReduceMean"]);
    // Larger than the input: 2 columns into 3 overlapping cells (0..1, 0..2, 1..2).
    let m = graph(OutputSize::Rect([None, Some(3)]), [1, 4, 2]);
    assert_eq!(ops(&m).iter().filter(|o| **o == "Slice").count(), 3);
}

#[test]
fn metadata_holds_classes_shape_and_preprocessing() {
    let yaml = "name: q\nstages:\n- stage: idx_dataset\n  with:\n    normalize:\n      mean: [0.286]\n      std: [0.353]\n    transforms: []\n- stage: model\n  with: {preset: mlp}\n";
    let facts = Facts { classes: vec!["a".into(), "b".into()], preprocessing: preprocessing(yaml).unwrap() };
    let layers = preset("mlp", 2).unwrap();
    let m = build(&layers, [1, 28, 28], &fake_state(&layers, [1, 28, 28]), &facts).unwrap();
    let get = |k: &str| {
        let v = m.metadata_props.iter().find(|e| e.key() == k).unwrap().value();
        serde_json::from_str::<serde_json::Value>(v).unwrap()
    };
    assert_eq!(get("kindling.classes"), serde_json::json!(["a", "b"]));
    assert_eq!(get("kindling.input_shape"), serde_json::json!([1, 28, 28]));
    assert_eq!(
        get("kindling.preprocessing"),
        serde_json::json!({"stage": "idx_dataset", "with": {"normalize": {"mean": [0.286], "std": [0.353]}, "transforms": []}})
    );
    assert_eq!(get("kindling.layers")[1]["linear"]["out_features"], 128);
}

#[test]
fn damaged_safetensors_are_errors() {
    for bad in [&b"\x01"[..], &b"\x10\0\0\0\0\0\0\0{}"[..]] {
        assert!(read_safetensors(bad).is_err());
    }
}
