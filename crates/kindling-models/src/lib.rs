//! Models for Kindling: layer lists described as data, their shapes inferred and checked before
//! any tensor exists, named presets for the experiments, and the burn modules built from them.
//!
//! [`LayerSpec`] mirrors PyTorch's layers and parameter names; [`infer`] computes every layer's
//! output shape and parameter count, or says which layer does not fit and why ("linear expects
//! 3136 inputs, the layer before gives 6272"). [`Sequential`] is the burn module built from a
//! checked list, initialised as `torch.nn.init` defines ([`Init`]: PyTorch's default, Xavier,
//! Kaiming, normal, uniform, constant) from the run's seeded stream; its batch norms keep
//! PyTorch's running statistics (burn's would keep a biased running variance).
//! [`device::resolve`] turns the requested device into a burn device.
//!
//! ```
//! use kindling_models::{Shape, infer, preset};
//! let layers = preset("mnist_cnn", 10).unwrap();
//! let infos = infer(&layers, &Shape::Image([1, 28, 28])).unwrap();
//! assert_eq!(infos.last().unwrap().output, Shape::Flat(10));
//! ```
//!
//! This crate does not train (see `kindling-train`) and does not read YAML.

pub mod device;
mod infer;
mod init;
mod net;
mod norm;
mod presets;
mod spec;
mod stage;

pub use infer::{LayerInfo, Shape, ShapeError, check_fits, fits_in_memory, infer, training_bytes};
pub use init::{FanMode, Init, InitConfig, Nonlinearity, gain};
pub use net::{Activation, Dropout2d, Flatten, Layer, Sequential, Softmax};
pub use presets::{PRESETS, preset};
pub use spec::{
    AdaptiveAvgPoolSpec, AvgPoolSpec, BatchNormSpec, Conv2dSpec, DropoutSpec, EluSpec, LayerSpec, LeakyReluSpec,
    LinearSpec, MaxPoolSpec, OutputSize, Pair, check_layers,
};
pub use stage::{Model, ModelConfig, ModelSummary};

/// The stages this crate offers.
pub fn plugin() -> kindling_core::Plugin {
    kindling_core::Plugin { name: "models", stages: vec![stage::model()] }
}
