//! The seed's shallow network, trained by hand-written backpropagation and plain SGD:
//!
//! ```text
//! x [b,1,6,6] -conv 3x3 (1 filter)-> z1 [b,1,4,4] -sigmoid-> a1 -maxpool 2-> p [b,1,2,2]
//!   -flatten-> [b,4] -fc 4->1-> z2 [b,1] -sigmoid-> y -> loss = mean_b (y - t)²
//! ```
//!
//! The backward pass walks the same chain in reverse, each step one of this crate's kernels:
//! `dy = 2(y - t)/b`, then sigmoid, dense, max-unpool, sigmoid, convolution.

use crate::activation::Activation;
use crate::conv::{Conv2dParams, conv2d_backward_direct, conv2d_direct};
use crate::dense::{dense_backward, dense_forward};
use crate::pool::{MaxPool2d, Pool2dParams, max_pool2d, max_pool2d_backward};
use crate::{Matrix, Tensor4};

/// The network's four parameter tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ShallowNet {
    /// `[1, 1, 3, 3]`.
    pub conv_weight: Tensor4,
    /// One value.
    pub conv_bias: Vec<f32>,
    /// `[1, 4]`.
    pub fc_weight: Matrix,
    /// One value.
    pub fc_bias: Vec<f32>,
}

/// The gradients of the loss with respect to each parameter of a [`ShallowNet`], shaped like it.
#[derive(Clone, Debug, PartialEq)]
pub struct ShallowGrads {
    /// `dL/d(conv_weight)`.
    pub conv_weight: Tensor4,
    /// `dL/d(conv_bias)`.
    pub conv_bias: Vec<f32>,
    /// `dL/d(fc_weight)`.
    pub fc_weight: Matrix,
    /// `dL/d(fc_bias)`.
    pub fc_bias: Vec<f32>,
}

/// What the forward pass keeps for the backward pass.
#[derive(Clone, Debug)]
pub struct ShallowTrace {
    /// The convolution's output before the sigmoid, `[b, 1, 4, 4]`.
    pub conv: Tensor4,
    /// The pooled activations, `[b, 1, 2, 2]`, and the argmax of each window.
    pub pooled: MaxPool2d,
    /// The dense layer's output before the sigmoid, `[b, 1]`.
    pub logits: Matrix,
    /// The network's outputs, one per image, in `(0, 1)`.
    pub output: Vec<f32>,
}

const CONV: Conv2dParams = Conv2dParams { stride: [1, 1], padding: [0, 0], dilation: [1, 1] };
const POOL: Pool2dParams = Pool2dParams { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };

impl ShallowNet {
    /// Initial parameters drawn uniformly from `±1/sqrt(fan_in)` (PyTorch's default for
    /// convolution and linear layers): `±1/3` for the 9-tap convolution, `±1/2` for the
    /// 4-input dense layer.
    pub fn new(seed: u64) -> Self {
        let scaled = |v: Vec<f32>, bound: f32| v.into_iter().map(|x| x * bound).collect::<Vec<_>>();
        Self {
            conv_weight: Tensor4::from_vec([1, 1, 3, 3], scaled(crate::uniform(9, seed), 1.0 / 3.0)),
            conv_bias: scaled(crate::uniform(1, seed ^ 1), 1.0 / 3.0),
            fc_weight: Matrix::from_vec(1, 4, scaled(crate::uniform(4, seed ^ 2), 0.5)),
            fc_bias: scaled(crate::uniform(1, seed ^ 3), 0.5),
        }
    }

    /// The forward pass for a batch `x` of `[b, 1, 6, 6]`.
    ///
    /// # Panics
    ///
    /// When `x` is not `[b, 1, 6, 6]`.
    pub fn forward(&self, x: &Tensor4) -> ShallowTrace {
        let [b, c, h, w] = x.shape();
        assert_eq!([c, h, w], [1, 6, 6], "the shallow network takes [batch, 1, 6, 6] inputs");
        let conv = conv2d_direct(x, &self.conv_weight, Some(&self.conv_bias), &CONV);
        let hidden = Tensor4::from_vec(conv.shape(), Activation::Sigmoid.forward(conv.data()));
        let pooled = max_pool2d(&hidden, &POOL);
        let flat = pooled.output.clone().flatten();
        let logits = dense_forward(&flat, &self.fc_weight, &self.fc_bias);
        let output = Activation::Sigmoid.forward(logits.data());
        debug_assert_eq!(output.len(), b);
        ShallowTrace { conv, pooled, logits, output }
    }

    /// The loss and its gradient with respect to every parameter, for images `x` and one
    /// target per image.
    ///
    /// # Panics
    ///
    /// When the shapes disagree.
    pub fn loss_and_grads(&self, x: &Tensor4, targets: &[f32]) -> (f32, ShallowGrads) {
        let trace = self.forward(x);
        let loss = squared_error(&trace.output, targets);
        let batch = targets.len() as f32;
        // Backwards through the chain, one kernel per step.
        let dy: Vec<f32> = trace.output.iter().zip(targets).map(|(y, t)| 2.0 * (y - t) / batch).collect();
        let dz2 = Matrix::from_vec(targets.len(), 1, Activation::Sigmoid.backward(trace.logits.data(), &dy));
        let flat = trace.pooled.output.clone().flatten();
        let fc = dense_backward(&flat, &self.fc_weight, &dz2);
        let d_pooled = fc.input.into_tensor4(trace.pooled.output.shape());
        let d_hidden = max_pool2d_backward(&d_pooled, &trace.pooled.argmax, trace.conv.shape());
        let d_conv =
            Tensor4::from_vec(trace.conv.shape(), Activation::Sigmoid.backward(trace.conv.data(), d_hidden.data()));
        let conv = conv2d_backward_direct(x, &self.conv_weight, &d_conv, &CONV);
        let grads =
            ShallowGrads { conv_weight: conv.weight, conv_bias: conv.bias, fc_weight: fc.weight, fc_bias: fc.bias };
        (loss, grads)
    }

    /// One plain SGD step: every parameter moves by `-lr` times its gradient.
    pub fn sgd_step(&mut self, grads: &ShallowGrads, lr: f32) {
        let step = |p: &mut [f32], g: &[f32]| p.iter_mut().zip(g).for_each(|(p, g)| *p -= lr * g);
        step(self.conv_weight.data_mut(), grads.conv_weight.data());
        step(&mut self.conv_bias, &grads.conv_bias);
        step(self.fc_weight.data_mut(), grads.fc_weight.data());
        step(&mut self.fc_bias, &grads.fc_bias);
    }

    /// Trains on `samples` (one `[1, 1, 6, 6]` image and its target each) for `epochs`
    /// epochs, one SGD step per sample in order, and returns each epoch's mean loss as
    /// measured during that epoch.
    pub fn fit(&mut self, samples: &[(Tensor4, f32)], epochs: usize, lr: f32) -> Vec<f32> {
        (0..epochs)
            .map(|_| {
                let mut total = 0.0;
                for (x, t) in samples {
                    let (loss, grads) = self.loss_and_grads(x, &[*t]);
                    self.sgd_step(&grads, lr);
                    total += loss;
                }
                total / samples.len() as f32
            })
            .collect()
    }
}

/// The mean over the batch of `(y - t)²`.
///
/// # Panics
///
/// When the slices differ in length.
pub fn squared_error(outputs: &[f32], targets: &[f32]) -> f32 {
    assert_eq!(outputs.len(), targets.len(), "one target per output");
    outputs.iter().zip(targets).map(|(y, t)| (y - t) * (y - t)).sum::<f32>() / outputs.len() as f32
}
