//! `torch.nn.utils.clip_grad_norm_`: one norm over all gradients (burn clips per tensor).

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Scales every gradient by `min(1, max_norm / (total + 1e-6))`, where `total` is the L2 norm
/// of all gradients together, as PyTorch's `clip_grad_norm_` does, and returns `total`.
/// `params` lists each parameter's id and rank.
pub fn clip_grad_norm(grads: &mut GradientsParams, params: &[(ParamId, usize)], max_norm: f64) -> f64 {
    let squares: Vec<Tensor<1>> = params.iter().filter_map(|&(id, rank)| square_sum(grads, id, rank)).collect();
    let Some(sum) = squares.into_iter().reduce(|a, b| a + b) else { return 0.0 };
    let total = f64::from(sum.into_scalar::<f32>()).sqrt();
    let scale = (max_norm / (total + 1e-6)).min(1.0);
    if scale < 1.0 {
        for &(id, rank) in params {
            match rank {
                1 => rescale::<1>(grads, id, scale),
                2 => rescale::<2>(grads, id, scale),
                3 => rescale::<3>(grads, id, scale),
                4 => rescale::<4>(grads, id, scale),
                _ => {}
            }
        }
    }
    total
}

/// The sum of squares of parameter `id`'s gradient (of `rank` 1 to 4), when it has one.
pub(crate) fn square_sum(grads: &GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    match rank {
        1 => grads.get::<1>(id).map(|g| g.square().sum()),
        2 => grads.get::<2>(id).map(|g| g.square().sum()),
        3 => grads.get::<3>(id).map(|g| g.square().sum()),
        4 => grads.get::<4>(id).map(|g| g.square().sum()),
        _ => None,
    }
}

fn rescale<const D: usize>(grads: &mut GradientsParams, id: ParamId, scale: f64) {
    if let Some(g) = grads.remove::<D>(id) {
        grads.register(id, g.mul_scalar(scale));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn grads_of(values: &[(ParamId, Vec<f32>)]) -> GradientsParams {
        let device = Device::flex();
        let mut grads = GradientsParams::new();
        for (id, v) in values {
            grads.register::<1>(*id, Tensor::from_floats(v.as_slice(), &device));
        }
        grads
    }

    fn values(grads: &GradientsParams, id: ParamId) -> Vec<f32> {
        grads.get::<1>(id).unwrap().into_data().try_to_vec().unwrap()
    }

    #[test]
    fn one_norm_over_all_gradients_scales_them_together() {
        let (a, b) = (ParamId::new(), ParamId::new());
        let params = [(a, 1), (b, 1)];
        // Norm of (3, 4) and (12): 13.
        let mut grads = grads_of(&[(a, vec![3.0, 4.0]), (b, vec![12.0])]);
        let total = clip_grad_norm(&mut grads, &params, 6.5);
        assert!((total - 13.0).abs() < 1e-5);
        let scale = 6.5 / (13.0 + 1e-6);
        for (got, want) in values(&grads, a).iter().chain(&values(&grads, b)).zip([3.0, 4.0, 12.0]) {
            assert!((f64::from(*got) - want * scale).abs() < 1e-5, "{got} vs {}", want * scale);
        }
        // Below the limit nothing changes.
        let mut grads = grads_of(&[(a, vec![3.0, 4.0]), (b, vec![12.0])]);
        clip_grad_norm(&mut grads, &params, 100.0);
        assert_eq!(values(&grads, a), [3.0, 4.0]);
    }
}
