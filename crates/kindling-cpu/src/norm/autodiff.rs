//! The training pass's autodiff step: the forward pass on the autodiff CPU device, and a
//! `Backward` step that keeps what the gradients need (the input, `gamma`, the statistics and,
//! for a fused ReLU, the scale and shift) and computes all three gradients in one pass.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

use super::values::{Affine, grad_values, train_values};
use super::wide::train_wide_pooled;
use super::{BatchNormBatch, BatchStats, Planes, channel_tensor, planes_of};
use crate::flex::{Ad, AdTensor, dims4, flex, values};
use crate::pool::max_pool_backward_values;
use crate::timing::timed;

/// What the backward step keeps: the input, `gamma`, the batch statistics, epsilon and the
/// layout.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    gamma: Arc<Vec<f32>>,
    stats: Arc<BatchStats>,
    epsilon: f64,
    planes: Planes,
    /// For a fused ReLU, the scale and shift per channel the forward pass used.
    relu: Option<Arc<Affine>>,
    /// For a fused 2x2 max pool after the ReLU, each output's argmax offset in its plane.
    pool: Option<Arc<Vec<u32>>>,
}

#[derive(Debug)]
struct BatchNormStep;

impl Backward<Flex, 3> for BatchNormStep {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        // A fused pool's backward step first, as `max_pool2d`'s: each output gradient onto its
        // window's maximum.
        let grad = match &s.pool {
            Some(arg) => timed(
                |t| &mut t.max_pool,
                || {
                    let (planes, rest) = (s.planes.batch * s.planes.channels, s.planes.rest);
                    flex(
                        max_pool_backward_values(&values(&grad), arg, planes, rest, true),
                        s.x.layout().shape().clone(),
                    )
                },
            ),
            None => grad,
        };
        let g = timed(
            |t| &mut t.batch_norm,
            || {
                let (x, dy) = (values(&s.x), values(&grad));
                grad_values(&x, &dy, s.planes, &s.stats, &s.gamma, s.epsilon, node_x.is_some(), s.relu.as_deref())
            },
        );
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, channel_tensor(g.gamma));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, channel_tensor(g.beta));
        }
        if let (Some(node), Some(dx)) = (node_x, g.input) {
            grads.register::<Flex>(node.id, flex(dx, s.x.layout().shape().clone()));
        }
    }
}

pub(super) fn autodiff_train<const D: usize>(
    x: AdTensor,
    gamma: AdTensor,
    beta: AdTensor,
    epsilon: f64,
    relu: bool,
) -> BatchNormBatch<D> {
    autodiff_train_pooled(x, gamma, beta, epsilon, relu, false)
}

/// [`autodiff_train`]; with `pool` (and `relu`, on `[N, C, H, W]` input channel by channel),
/// followed by a 2x2 max pool in the same pass, its output `[N, C, H / 2, W / 2]`.
pub(super) fn autodiff_train_pooled<const D: usize>(
    x: AdTensor,
    gamma: AdTensor,
    beta: AdTensor,
    epsilon: f64,
    relu: bool,
    pool: bool,
) -> BatchNormBatch<D> {
    let p = planes_of(x.primitive());
    let gamma_values = values(gamma.primitive()).into_owned();
    let (out, shape, affine, args) = if pool {
        let [n, c, h, w] = dims4(x.primitive());
        let (out, affine, args) =
            train_wide_pooled(&values(x.primitive()), p, &gamma_values, &values(beta.primitive()), epsilon, [h, w]);
        (out, burn::tensor::Shape::new([n, c, h / 2, w / 2]), affine, Some(Arc::new(args)))
    } else {
        let (out, affine) =
            train_values(&values(x.primitive()), p, &gamma_values, &values(beta.primitive()), epsilon, relu);
        (out, x.primitive().layout().shape().clone(), affine, None)
    };
    // The pooled pass always has the ReLU before its pool.
    let relu = relu || pool;
    let y = flex(out.output, shape);
    let (mean, variance) = (channel_tensor(out.stats.mean.clone()), channel_tensor(out.stats.variance.clone()));
    let output = match BatchNormStep
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x: x.primitive().clone(),
                gamma: Arc::new(gamma_values),
                stats: Arc::new(out.stats),
                epsilon,
                planes: p,
                relu: relu.then(|| Arc::new(affine)),
                pool: args,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    BatchNormBatch {
        output: Tensor::from_primitive::<Ad>(output),
        // New leaves without history: detached, as burn's op returns them.
        mean: Tensor::from_primitive::<Ad>(AdTensor::new(mean)),
        variance: Tensor::from_primitive::<Ad>(AdTensor::new(variance)),
    }
}
