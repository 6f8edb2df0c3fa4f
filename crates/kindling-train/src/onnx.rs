//! The trained model as ONNX (`model.onnx`, opset 17): the graph of the layer list, its
//! weights as float initializers, a symbolic batch dimension (`batch`), and what a loader needs
//! to feed it in `metadata_props`.
//!
//! The graph is built from the layer list and the PyTorch export's state dict
//! (`model.pytorch.safetensors`: keys `<layer>.weight`, `.bias`, `.running_mean`,
//! `.running_var`, linear weights `[out, in]`), so both exports hold the same tensors under the
//! same names. Layer by layer: `conv2d` -> `Conv`, `batchnorm` -> `BatchNormalization` (on
//! `[N, C]` after a linear layer too), `maxpool2d` -> `MaxPool`, `avgpool2d` -> `AveragePool`,
//! `adaptive_avg_pool2d` -> `GlobalAveragePool` for a 1 x 1 output, `AveragePool` where the
//! output divides the input (no node where it equals it), and otherwise, per dimension that
//! does not divide, one `Slice` + `ReduceMean` per cell joined by `Concat` (the mean over a
//! cell is the mean over its rows of the means over its columns, so the dimensions pool one
//! after the other), `flatten` -> `Flatten`, `linear` -> `Gemm` (`transB = 1`), the activations to their
//! operators (`gelu`, which opset 17 lacks, as `0.5 x (1 + erf(x / sqrt 2))`), `softmax` and
//! `log_softmax` over axis 1; dropout is the identity at inference and leaves no node. A model
//! ending in an image-shaped activation ends with a `Flatten`, as `Sequential::forward` does.
//!
//! Metadata (`metadata_props`, values JSON): `kindling.classes` (class names in label order),
//! `kindling.input_shape` (`[c, h, w]` of one sample; the input is `input`, NCHW float32),
//! `kindling.output` (what the output holds), `kindling.preprocessing` (the data stage's
//! input as the run's `model.json` describes it: the evaluation-time transforms or the audio
//! features with their fitted statistics; for a data stage that cannot describe its input, its
//! configuration from `config.yaml` as `{"stage": ..., "with": {...}}`), `kindling.layers` (the
//! layer list).
//!
//! The bytes depend only on the model and these facts: the same run exports the same file.

pub mod proto;

use std::collections::BTreeMap;

use kindling_models::{LayerSpec, Shape};
use prost::Message;

use proto::tensor_shape_proto::{Dimension, dimension};
use proto::{
    AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};

/// The operator set the graph uses.
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17 (ONNX 1.12).
pub const IR_VERSION: i64 = 8;

/// A tensor of the state dict: shape and little-endian f32 bytes.
pub type StateDict = BTreeMap<String, (Vec<usize>, Vec<u8>)>;

/// What the export records beside the graph.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// The data stage's settings, `{"stage": ..., "with": {...}}`, or `null`.
    pub preprocessing: serde_json::Value,
}

/// The state dict of a safetensors file of f32 tensors (the PyTorch export).
pub fn read_safetensors(bytes: &[u8]) -> Result<StateDict, String> {
    let (header, end) = crate::weights::safetensors_header(bytes)?;
    let body = &bytes[end..];
    let mut out = StateDict::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        if info["dtype"] != "F32" {
            return Err(format!("{name} is {}, not F32", info["dtype"]));
        }
        let shape: Vec<usize> =
            serde_json::from_value(info["shape"].clone()).map_err(|e| format!("{name}: bad shape: {e}"))?;
        let [start, stop]: [usize; 2] =
            serde_json::from_value(info["data_offsets"].clone()).map_err(|e| format!("{name}: bad offsets: {e}"))?;
        let data = body.get(start..stop).ok_or_else(|| format!("{name}: data outside the file"))?;
        if data.len() != 4 * shape.iter().product::<usize>() {
            return Err(format!("{name}: {} bytes for shape {shape:?}", data.len()));
        }
        out.insert(name, (shape, data.to_vec()));
    }
    Ok(out)
}

/// The data stage of a run's `config.yaml` (its first stage) as `{"stage": ..., "with": {...}}`:
/// the preprocessing metadata of a run whose data stage cannot describe its input.
pub fn preprocessing(config_yaml: &str) -> Result<serde_json::Value, String> {
    let config: serde_yaml::Value = serde_yaml::from_str(config_yaml).map_err(|e| e.to_string())?;
    let stage = config.get("stages").and_then(|s| s.get(0)).ok_or("config.yaml lists no stages")?;
    let name = stage.get("stage").and_then(|s| s.as_str()).ok_or("the first stage has no name")?;
    let with = stage.get("with").cloned().unwrap_or(serde_yaml::Value::Null);
    let with = serde_json::to_value(with).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "stage": name, "with": with }))
}

/// The ONNX model of `layers` on samples of `shape` with the weights of `state`.
pub fn build(layers: &[LayerSpec], shape: [usize; 3], state: &StateDict, facts: &Facts) -> Result<ModelProto, String> {
    let infos = kindling_models::infer(layers, &Shape::Image(shape))
        .map_err(|e| e.iter().map(|e| format!("layer {}: {}", e.layer, e.message)).collect::<Vec<_>>().join("; "))?;
    let mut g = Graph { state, nodes: Vec::new(), initializers: Vec::new(), added: Vec::new() };
    let mut x = "input".to_owned();
    for (i, (layer, info)) in layers.iter().zip(&infos).enumerate() {
        let p = |k: &str| format!("{i}.{k}");
        x = match layer {
            LayerSpec::Conv2d(c) => {
                let Shape::Image([in_c, _, _]) = info.input else {
                    return Err(format!("layer {i}: conv2d on flat input"));
                };
                let [kh, kw] = c.kernel_size.hw();
                g.param(&p("weight"), &[c.out_channels, in_c, kh, kw])?;
                let mut inputs = vec![x, p("weight")];
                if c.bias {
                    g.param(&p("bias"), &[c.out_channels])?;
                    inputs.push(p("bias"));
                }
                let [ph, pw] = c.padding.hw();
                let attrs = vec![
                    ints("dilations", &c.dilation.hw()),
                    int("group", 1),
                    ints("kernel_shape", &[kh, kw]),
                    ints("pads", &[ph, pw, ph, pw]),
                    ints("strides", &c.stride.hw()),
                ];
                g.node("Conv", i, inputs, attrs)
            }
            LayerSpec::Batchnorm(b) => {
                let channels = match info.input {
                    Shape::Image([c, _, _]) => c,
                    Shape::Flat(n) => n,
                };
                let names = ["weight", "bias", "running_mean", "running_var"].map(p);
                for name in &names {
                    g.param(name, &[channels])?;
                }
                let mut inputs = vec![x];
                inputs.extend(names);
                // ONNX's momentum weighs the running statistics, PyTorch's the batch.
                let attrs = vec![float("epsilon", b.eps as f32), float("momentum", (1.0 - b.momentum) as f32)];
                g.node("BatchNormalization", i, inputs, attrs)
            }
            LayerSpec::Maxpool2d(m) => {
                let k = m.kernel_size.hw();
                let [ph, pw] = m.padding.hw();
                let attrs = vec![
                    int("ceil_mode", i64::from(m.ceil_mode)),
                    ints("kernel_shape", &k),
                    ints("pads", &[ph, pw, ph, pw]),
                    ints("strides", &m.stride.map_or(k, |s| s.hw())),
                ];
                g.node("MaxPool", i, vec![x], attrs)
            }
            LayerSpec::Avgpool2d(a) => {
                let k = a.kernel_size.hw();
                let [ph, pw] = a.padding.hw();
                let attrs = vec![
                    int("ceil_mode", i64::from(a.ceil_mode)),
                    int("count_include_pad", i64::from(a.count_include_pad)),
                    ints("kernel_shape", &k),
                    ints("pads", &[ph, pw, ph, pw]),
                    ints("strides", &a.stride.map_or(k, |s| s.hw())),
                ];
                g.node("AveragePool", i, vec![x], attrs)
            }
            LayerSpec::AdaptiveAvgPool2d(a) => {
                let Shape::Image([_, h, w]) = info.input else {
                    return Err(format!("layer {i}: adaptive_avg_pool2d on flat input"));
                };
                adaptive_avg_pool(&mut g, i, x, [h, w], a.output_size.resolve([h, w]))
            }
            // The identity at inference, as PyTorch's exporter leaves it.
            LayerSpec::Dropout(_) | LayerSpec::Dropout2d(_) => x,
            LayerSpec::Flatten => g.node("Flatten", i, vec![x], vec![int("axis", 1)]),
            LayerSpec::Linear(l) => {
                let Shape::Flat(in_f) = info.input else { return Err(format!("layer {i}: linear on image input")) };
                g.param(&p("weight"), &[l.out_features, in_f])?;
                let mut inputs = vec![x, p("weight")];
                if l.bias {
                    g.param(&p("bias"), &[l.out_features])?;
                    inputs.push(p("bias"));
                }
                let attrs = vec![float("alpha", 1.0), float("beta", 1.0), int("transB", 1)];
                g.node("Gemm", i, inputs, attrs)
            }
            LayerSpec::Relu => g.node("Relu", i, vec![x], vec![]),
            LayerSpec::LeakyRelu(l) => g.node("LeakyRelu", i, vec![x], vec![float("alpha", l.negative_slope as f32)]),
            LayerSpec::Elu(e) => g.node("Elu", i, vec![x], vec![float("alpha", e.alpha as f32)]),
            LayerSpec::Gelu => {
                g.constant("gelu.sqrt2", std::f32::consts::SQRT_2);
                g.constant("gelu.one", 1.0);
                g.constant("gelu.half", 0.5);
                let scaled = g.node_named("Div", format!("{i}.Div"), vec![x.clone(), "gelu.sqrt2".into()], vec![]);
                let erf = g.node_named("Erf", format!("{i}.Erf"), vec![scaled], vec![]);
                let plus = g.node_named("Add", format!("{i}.Add"), vec![erf, "gelu.one".into()], vec![]);
                let times = g.node_named("Mul", format!("{i}.Mul"), vec![x, plus], vec![]);
                g.node_named("Mul", format!("{i}.Gelu"), vec![times, "gelu.half".into()], vec![])
            }
            LayerSpec::Tanh => g.node("Tanh", i, vec![x], vec![]),
            LayerSpec::Sigmoid => g.node("Sigmoid", i, vec![x], vec![]),
            LayerSpec::Softmax => g.node("Softmax", i, vec![x], vec![int("axis", 1)]),
            LayerSpec::LogSoftmax => g.node("LogSoftmax", i, vec![x], vec![int("axis", 1)]),
        };
    }
    if matches!(infos.last().map(|i| &i.output), Some(Shape::Image(_)) | None) {
        x = g.node_named("Flatten", "output.Flatten".into(), vec![x], vec![int("axis", 1)]);
    }
    let features = infos.last().map_or(shape.iter().product(), |i| i.output.numel());
    let output = match layers.iter().rfind(|l| !matches!(l, LayerSpec::Dropout(_) | LayerSpec::Dropout2d(_))) {
        Some(LayerSpec::Softmax) => "probabilities",
        Some(LayerSpec::LogSoftmax) => "log_probabilities",
        Some(LayerSpec::Linear(_)) => "logits",
        _ => "output",
    };
    // The last node writes the graph's output: rename its tensor (the input when there is none).
    match g.nodes.last_mut() {
        Some(last) => last.output = vec![output.to_owned()],
        None => g.nodes.push(NodeProto {
            input: vec![x],
            output: vec![output.to_owned()],
            name: Some("output.Identity".into()),
            op_type: Some("Identity".into()),
            ..Default::default()
        }),
    }
    let [c, h, w] = shape;
    let graph = GraphProto {
        node: g.nodes,
        name: Some("kindling".into()),
        initializer: g.initializers,
        input: vec![value_info("input", &[None, Some(c), Some(h), Some(w)])],
        output: vec![value_info(output, &[None, Some(features)])],
        ..Default::default()
    };
    let describe = match output {
        "probabilities" => "softmax probabilities [batch, classes]",
        "log_probabilities" => "log-softmax log-probabilities [batch, classes]",
        "logits" => "class logits [batch, classes]",
        _ => "the last layer's output, flattened [batch, features]",
    };
    let json = |v: serde_json::Value| v.to_string();
    let metadata = [
        ("kindling.classes", json(serde_json::json!(facts.classes))),
        ("kindling.input_shape", json(serde_json::json!(shape))),
        ("kindling.layers", json(serde_json::json!(layers))),
        ("kindling.output", json(serde_json::json!(describe))),
        ("kindling.preprocessing", json(facts.preprocessing.clone())),
    ];
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("kindling".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: metadata
            .into_iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.into()), value: Some(v) })
            .collect(),
        ..Default::default()
    })
}

/// The model's bytes.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// A model read back from bytes.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, prost::DecodeError> {
    ModelProto::decode(bytes)
}

/// `nn.AdaptiveAvgPool2d` from `[h, w]` to `[oh, ow]` on `x` (layer `layer`), as the module
/// documentation describes; returns the output tensor's name.
fn adaptive_avg_pool(g: &mut Graph<'_>, layer: usize, x: String, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> String {
    if [oh, ow] == [1, 1] {
        return g.node("GlobalAveragePool", layer, vec![x], vec![]);
    }
    if h.is_multiple_of(oh) && w.is_multiple_of(ow) {
        let kernel = [h / oh, w / ow];
        if kernel == [1, 1] {
            return x;
        }
        let attrs = vec![ints("kernel_shape", &kernel), ints("pads", &[0, 0, 0, 0]), ints("strides", &kernel)];
        return g.node("AveragePool", layer, vec![x], attrs);
    }
    let mut x = x;
    for (axis, dim, size, out) in [(2, "h", h, oh), (3, "w", w, ow)] {
        if size.is_multiple_of(out) {
            let k = size / out;
            if k > 1 {
                let kernel = if axis == 2 { [k, 1] } else { [1, k] };
                let attrs = vec![ints("kernel_shape", &kernel), ints("pads", &[0, 0, 0, 0]), ints("strides", &kernel)];
                x = g.node_named("AveragePool", format!("{layer}.AveragePool.{dim}"), vec![x], attrs);
            }
            continue;
        }
        let axes = format!("{layer}.{dim}.axes");
        g.int64s(&axes, &[axis]);
        let cells: Vec<String> = (0..out)
            .map(|cell| {
                let (start, end) = (cell * size / out, ((cell + 1) * size).div_ceil(out));
                let name = |what: &str| format!("{layer}.{dim}{cell}.{what}");
                g.int64s(&name("starts"), &[start as i64]);
                g.int64s(&name("ends"), &[end as i64]);
                let inputs = vec![x.clone(), name("starts"), name("ends"), axes.clone()];
                let slice = g.node_named("Slice", name("Slice"), inputs, vec![]);
                let attrs = vec![ints("axes", &[axis as usize]), int("keepdims", 1)];
                g.node_named("ReduceMean", name("ReduceMean"), vec![slice], attrs)
            })
            .collect();
        x = g.node_named("Concat", format!("{layer}.Concat.{dim}"), cells, vec![int("axis", axis)]);
    }
    x
}

struct Graph<'a> {
    state: &'a StateDict,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    added: Vec<String>,
}

impl Graph<'_> {
    /// Adds the state dict's tensor `name` as an initializer, checking its shape.
    fn param(&mut self, name: &str, dims: &[usize]) -> Result<(), String> {
        let (shape, data) = self.state.get(name).ok_or_else(|| format!("the weights have no {name}"))?;
        if shape != dims {
            return Err(format!("{name} is {shape:?}, the layer needs {dims:?}"));
        }
        self.tensor(name, dims, data.clone());
        Ok(())
    }

    /// A scalar constant, once.
    fn constant(&mut self, name: &str, value: f32) {
        if !self.added.iter().any(|a| a == name) {
            self.tensor(name, &[], value.to_le_bytes().to_vec());
        }
    }

    /// A one-dimensional int64 constant (`Slice`'s starts, ends and axes).
    fn int64s(&mut self, name: &str, values: &[i64]) {
        self.added.push(name.to_owned());
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.to_owned()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
    }

    fn tensor(&mut self, name: &str, dims: &[usize], raw: Vec<u8>) {
        self.added.push(name.to_owned());
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            name: Some(name.to_owned()),
            raw_data: Some(raw),
            ..Default::default()
        });
    }

    /// A node `"<layer>.<op>"` whose output tensor has its name; returns that name.
    fn node(&mut self, op: &str, layer: usize, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        self.node_named(op, format!("{layer}.{op}"), inputs, attrs)
    }

    fn node_named(&mut self, op: &str, name: String, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![name.clone()],
            name: Some(name.clone()),
            op_type: Some(op.to_owned()),
            attribute: attrs,
            ..Default::default()
        });
        name
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n as i64),
                None => dimension::Value::DimParam("batch".into()),
            }),
            denotation: None,
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), denotation: None }),
        ..Default::default()
    }
}

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.to_owned()), r#type: Some(kind as i32), ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto { ints: v.iter().map(|&x| x as i64).collect(), ..attr(name, AttributeType::Ints) }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}

#[cfg(test)]
mod tests;
