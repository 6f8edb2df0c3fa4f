//! The named presets: layer lists for the experiments, with sizes that follow from the input
//! left to inference so a preset fits any input large enough.

use crate::spec::{
    AdaptiveAvgPoolSpec, AvgPoolSpec, BatchNormSpec, Conv2dSpec, DropoutSpec, LayerSpec, LinearSpec, MaxPoolSpec,
    OutputSize, Pair, eps, momentum, one, zero,
};

/// The layers of a named preset for `classes` outputs, or `None` for an unknown name. Sizes
/// that follow from the input are inferred, so presets fit any input large enough.
pub fn preset(name: &str, classes: usize) -> Option<Vec<LayerSpec>> {
    let strided = |out, k, s, p| {
        LayerSpec::Conv2d(Conv2dSpec {
            in_channels: None,
            out_channels: out,
            kernel_size: Pair::Square(k),
            stride: Pair::Square(s),
            padding: Pair::Square(p),
            dilation: one(),
            bias: true,
        })
    };
    let conv = |out, k, p| strided(out, k, 1, p);
    let max_pool = || {
        LayerSpec::Maxpool2d(MaxPoolSpec {
            kernel_size: Pair::Square(2),
            stride: None,
            padding: zero(),
            ceil_mode: false,
        })
    };
    let avg_pool = || {
        LayerSpec::Avgpool2d(AvgPoolSpec {
            kernel_size: Pair::Square(2),
            stride: None,
            padding: zero(),
            ceil_mode: false,
            count_include_pad: true,
        })
    };
    let linear = |out| LayerSpec::Linear(LinearSpec { in_features: None, out_features: out, bias: true });
    let bn = || LayerSpec::Batchnorm(BatchNormSpec { num_features: None, eps: eps(), momentum: momentum() });
    let dropout = |p| LayerSpec::Dropout(DropoutSpec { p });
    let dropout2d = |p| LayerSpec::Dropout2d(DropoutSpec { p });
    use LayerSpec::{Flatten, Relu, Tanh};
    Some(match name {
        // Experiment 2: conv16-conv32-pool-conv64-pool-fc100-fc10.
        "mnist_cnn" => vec![
            conv(16, 3, 1),
            Relu,
            conv(32, 3, 1),
            Relu,
            max_pool(),
            conv(64, 3, 1),
            Relu,
            max_pool(),
            Flatten,
            linear(100),
            Relu,
            linear(classes),
        ],
        // The same with batch norm after every convolution and the hidden linear layer.
        "mnist_cnn_bn" => vec![
            conv(16, 3, 1),
            bn(),
            Relu,
            conv(32, 3, 1),
            bn(),
            Relu,
            max_pool(),
            conv(64, 3, 1),
            bn(),
            Relu,
            max_pool(),
            Flatten,
            linear(100),
            bn(),
            Relu,
            linear(classes),
        ],
        // The same with Dropout2d(0.2) after each pooling.
        "mnist_cnn_dropout2d" => vec![
            conv(16, 3, 1),
            Relu,
            conv(32, 3, 1),
            Relu,
            max_pool(),
            dropout2d(0.2),
            conv(64, 3, 1),
            Relu,
            max_pool(),
            dropout2d(0.2),
            Flatten,
            linear(100),
            Relu,
            linear(classes),
        ],
        // Experiment 3: (conv-BN-ReLU x2, max-pool) x3, (FC-BN-ReLU-Dropout) x2, FC.
        "vgg3" => {
            let mut layers = Vec::new();
            for width in [32, 64, 128] {
                layers.extend([conv(width, 3, 1), bn(), Relu, conv(width, 3, 1), bn(), Relu, max_pool()]);
            }
            layers.push(Flatten);
            for width in [256, 128] {
                layers.extend([linear(width), bn(), Relu, dropout(0.5)]);
            }
            layers.push(linear(classes));
            layers
        }
        // Experiment 1: the stereo direction CNN on 4 x 257 x 382 STFT features: conv 7x7 stride
        // 2 -> pool -> conv 3x3 -> pool -> conv 3x3 -> pool (64, 64, 32 channels, no padding:
        // 32 x 14 x 22 = 9,856 features), then linear 256, 256, 64 with ReLU and dropout 0.5, and
        // the class layer with log-softmax (the seed trained it with NLLLoss).
        "stereo_cnn" => {
            let mut layers = vec![
                strided(64, 7, 2, 0),
                Relu,
                max_pool(),
                conv(64, 3, 0),
                Relu,
                max_pool(),
                conv(32, 3, 0),
                Relu,
                max_pool(),
                Flatten,
            ];
            for width in [256, 256, 64] {
                layers.extend([linear(width), Relu, dropout(0.5)]);
            }
            layers.extend([linear(classes), LayerSpec::LogSoftmax]);
            layers
        }
        // Sound direction from interaural features ([c, 257, t]: log-magnitudes, ILD, IPD cos
        // and sin): four blocks of conv 3x3 (padding 1) -> batch norm -> ReLU -> max-pool 2x2
        // over frequency and time (16, 32, 64, 64 channels; 257 bins -> 16 bands; the first
        // convolution strides 2 over time only, which halves the cost of the full-resolution
        // block), then the mean over time alone (adaptive_avg_pool2d [null, 1]), which keeps the
        // frequency layout where direction cues live and leaves nothing to memorise about when
        // a sound happened; then 64 x 16 = 1,024 features -> linear 128 -> ReLU -> dropout 0.5
        // -> the class layer. 193,627 parameters for 4 planes and 11 classes; clips of at least
        // 31 frames (half a second at hop 256 and 16 kHz), of any length beyond.
        "direction_cnn" => {
            let over_time_by_2 = LayerSpec::Conv2d(Conv2dSpec {
                in_channels: None,
                out_channels: 16,
                kernel_size: Pair::Square(3),
                stride: Pair::Rect([1, 2]),
                padding: Pair::Square(1),
                dilation: one(),
                bias: true,
            });
            let mut layers = vec![over_time_by_2, bn(), Relu, max_pool()];
            for width in [32, 64, 64] {
                layers.extend([conv(width, 3, 1), bn(), Relu, max_pool()]);
            }
            let over_time = OutputSize::Rect([None, Some(1)]);
            layers.extend([
                LayerSpec::AdaptiveAvgPool2d(AdaptiveAvgPoolSpec { output_size: over_time }),
                Flatten,
                linear(128),
                Relu,
                dropout(0.5),
                linear(classes),
            ]);
            layers
        }
        // Experiment 4: a 3072-128-10 perceptron for 3 x 32 x 32 inputs, and its variants.
        "mlp" => vec![Flatten, linear(128), Relu, linear(classes)],
        "dropout_mlp" => vec![Flatten, linear(128), Relu, dropout(0.5), linear(classes)],
        "bn_mlp" => vec![Flatten, linear(128), bn(), Relu, linear(classes)],
        // Experiment 5: LeNet-5 with tanh and average pooling; padding 2 lets 28 x 28 inputs
        // reach the classic 16 x 5 x 5 before the first fully connected layer.
        "lenet5" => vec![
            conv(6, 5, 2),
            Tanh,
            avg_pool(),
            conv(16, 5, 0),
            Tanh,
            avg_pool(),
            Flatten,
            linear(120),
            Tanh,
            linear(84),
            Tanh,
            linear(classes),
        ],
        // Experiment 5's variant with batch norm and dropout 0.3 (seed 004; the seed also
        // switches to Xavier init, which is the model stage's `init:`). Batch norm sits between
        // each convolution or hidden linear layer and its tanh, as in `mnist_cnn_bn` and
        // `vgg3`; dropout follows the tanh of each hidden linear layer, so it drops inputs of
        // the second and the class layer, as the seed's `dropout(tanh(bn(fc(x))))` does.
        "lenet5_bn" => vec![
            conv(6, 5, 2),
            bn(),
            Tanh,
            avg_pool(),
            conv(16, 5, 0),
            bn(),
            Tanh,
            avg_pool(),
            Flatten,
            linear(120),
            bn(),
            Tanh,
            dropout(0.3),
            linear(84),
            bn(),
            Tanh,
            dropout(0.3),
            linear(classes),
        ],
        _ => return None,
    })
}

/// Names accepted by [`preset`].
pub const PRESETS: &[&str] = &[
    "mnist_cnn",
    "mnist_cnn_bn",
    "mnist_cnn_dropout2d",
    "vgg3",
    "stereo_cnn",
    "mlp",
    "dropout_mlp",
    "bn_mlp",
    "lenet5",
    "lenet5_bn",
    "direction_cnn",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{Shape, infer};

    #[test]
    fn mnist_cnn_shapes_and_parameters_match_pytorch() {
        let layers = preset("mnist_cnn", 10).unwrap();
        let infos = infer(&layers, &Shape::Image([1, 28, 28])).unwrap();
        assert_eq!(infos[8].output, Shape::Flat(3136));
        assert_eq!(infos.last().unwrap().output, Shape::Flat(10));
        // sum(p.numel() for p in model.parameters()) of the same PyTorch model.
        assert_eq!(infos.iter().map(|i| i.params).sum::<usize>(), 160 + 4640 + 18496 + 313_700 + 1010);
    }

    #[test]
    fn every_preset_fits_grey_and_colour_inputs_and_known_counts_match() {
        // The stereo and direction CNNs are sized for spectrograms (their own tests below).
        for name in PRESETS.iter().filter(|n| !["stereo_cnn", "direction_cnn"].contains(n)) {
            for input in [Shape::Image([1, 28, 28]), Shape::Image([3, 32, 32])] {
                let infos = infer(&preset(name, 10).unwrap(), &input).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(infos.last().unwrap().output, Shape::Flat(10), "{name}");
            }
        }
        let params =
            |name, input| infer(&preset(name, 10).unwrap(), &input).unwrap().iter().map(|i| i.params).sum::<usize>();
        // LeNet-5's classic 61,706 parameters; the 3072-128-10 perceptron's 394,634.
        assert_eq!(params("lenet5", Shape::Image([1, 28, 28])), 61_706);
        // The same plus batch norm's weight and bias per channel or feature: 2 x (6 + 16 + 120
        // + 84) = 452 (running statistics are buffers, not parameters, in PyTorch too).
        assert_eq!(params("lenet5_bn", Shape::Image([1, 28, 28])), 62_158);
        assert_eq!(params("mlp", Shape::Image([3, 32, 32])), 3072 * 128 + 128 + 128 * 10 + 10);
        assert_eq!(params("bn_mlp", Shape::Image([3, 32, 32])), params("mlp", Shape::Image([3, 32, 32])) + 2 * 128);
        assert!(preset("nope", 10).is_none());
    }

    #[test]
    fn stereo_cnn_matches_the_seeds_network() {
        let layers = preset("stereo_cnn", 11).unwrap();
        let infos = infer(&layers, &Shape::Image([4, 257, 382])).unwrap();
        let shapes: Vec<String> = infos.iter().map(|i| i.output.to_string()).collect();
        assert_eq!(
            shapes[..10],
            [
                "64 x 126 x 188",
                "64 x 126 x 188",
                "64 x 63 x 94",
                "64 x 61 x 92",
                "64 x 61 x 92",
                "64 x 30 x 46",
                "32 x 28 x 44",
                "32 x 28 x 44",
                "32 x 14 x 22",
                "9856"
            ]
        );
        assert_eq!(infos.last().unwrap().output, Shape::Flat(11));
        assert!(matches!(layers.last(), Some(LayerSpec::LogSoftmax)));
        // The PyTorch module's sum(p.numel()): convs 12,608 + 36,928 + 18,464; linears
        // 2,523,392 + 65,792 + 16,448 + 715.
        assert_eq!(infos.iter().map(|i| i.params).sum::<usize>(), 2_674_347);
    }

    /// The direction CNN pools over time only: its classifier sees the same 64 channels x 16
    /// bands whatever the clip's length, and its size depends only on the input planes. Its
    /// first convolution strides over time only (382 frames -> 191 -> 95, 47, 23, 11).
    #[test]
    fn direction_cnn_pools_over_time_and_keeps_frequency() {
        let count = |planes, frames| {
            let infos = infer(&preset("direction_cnn", 11).unwrap(), &Shape::Image([planes, 257, frames])).unwrap();
            let pooled = infos.iter().find(|i| matches!(i.output, Shape::Image([_, _, 1]))).unwrap().output.clone();
            assert_eq!(pooled, Shape::Image([64, 16, 1]), "{planes} planes, {frames} frames");
            assert_eq!(infos.last().unwrap().output, Shape::Flat(11));
            infos.iter().map(|i| i.params).sum::<usize>()
        };
        // convs 9 c 16 + 16, 4,640, 18,496, 36,928; batch norms 2 x (16 + 32 + 64 + 64) = 352;
        // linears 1,024 x 128 + 128 = 131,200 and 128 x 11 + 11 = 1,419.
        let fixed = 16 + 4_640 + 18_496 + 36_928 + 352 + 131_200 + 1_419;
        for planes in 2..=6 {
            assert_eq!(count(planes, 382), fixed + 9 * 16 * planes, "{planes} planes");
            assert_eq!(count(planes, 95), count(planes, 382), "the length of the clip changes nothing");
        }
        assert_eq!(count(4, 382), 193_627);
        let infos = infer(&preset("direction_cnn", 11).unwrap(), &Shape::Image([4, 257, 382])).unwrap();
        let widths: Vec<String> = infos.iter().step_by(4).take(4).map(|i| i.output.to_string()).collect();
        assert_eq!(widths, ["16 x 257 x 191", "32 x 128 x 95", "64 x 64 x 47", "64 x 32 x 23"]);
        assert_eq!(infos[15].output, Shape::Image([64, 16, 11]));
        assert!(count(6, 382) < 1_000_000);
    }
}
