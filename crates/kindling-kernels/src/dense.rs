//! The fully connected (linear, dense) layer: `y = x · Wᵀ + b`, forward and backward.

use crate::Matrix;
use kindling_gemm::{MatRef, sgemm};

/// The gradients of a loss with respect to a dense layer's input, weight and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseGrads {
    /// `dL/dx`, `[batch, in_features]`.
    pub input: Matrix,
    /// `dL/dW`, `[out_features, in_features]`.
    pub weight: Matrix,
    /// `dL/db`, one value per output feature.
    pub bias: Vec<f32>,
}

/// `x · Wᵀ + b` for `x` of `[batch, in_features]` and `weight` of `[out_features, in_features]`
/// (PyTorch's layout): `[batch, out_features]`.
///
/// # Panics
///
/// When the feature counts disagree or `bias` is not one value per output feature.
pub fn dense_forward(x: &Matrix, weight: &Matrix, bias: &[f32]) -> Matrix {
    assert_eq!(x.cols(), weight.cols(), "the input has {} features but the weight expects {}", x.cols(), weight.cols());
    assert_eq!(
        bias.len(),
        weight.rows(),
        "{} output features need {} biases, got {}",
        weight.rows(),
        weight.rows(),
        bias.len()
    );
    let mut y = Matrix::zeros(x.rows(), weight.rows());
    sgemm(view(x), view(weight).t(), y.data_mut(), false, 1);
    for row in y.data_mut().chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    y
}

/// The gradients of [`dense_forward`] given `grad_out = dL/dy` (`[batch, out_features]`):
/// `dx = dy · W`, `dW = dyᵀ · x` (summed over the batch by the product itself), and `db` the
/// column sums of `dy`.
///
/// # Panics
///
/// When the shapes disagree.
pub fn dense_backward(x: &Matrix, weight: &Matrix, grad_out: &Matrix) -> DenseGrads {
    assert_eq!(x.cols(), weight.cols(), "the input has {} features but the weight expects {}", x.cols(), weight.cols());
    assert_eq!(
        (grad_out.rows(), grad_out.cols()),
        (x.rows(), weight.rows()),
        "the output gradient must be [batch, out_features]"
    );
    let mut input = Matrix::zeros(x.rows(), x.cols());
    sgemm(view(grad_out), view(weight), input.data_mut(), false, 1);
    let mut grad_w = Matrix::zeros(weight.rows(), weight.cols());
    sgemm(view(grad_out).t(), view(x), grad_w.data_mut(), false, 1);
    let mut bias = vec![0.0; weight.rows()];
    for row in grad_out.data().chunks_exact(weight.rows()) {
        bias.iter_mut().zip(row).for_each(|(b, g)| *b += g);
    }
    DenseGrads { input, weight: grad_w, bias }
}

fn view(m: &Matrix) -> MatRef<'_> {
    MatRef::new(m.data(), m.rows(), m.cols())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_worked_example() {
        let x = Matrix::from_vec(2, 3, vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0]);
        let w = Matrix::from_vec(2, 3, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let y = dense_forward(&x, &w, &[0.5, -0.5]);
        assert_eq!(y.data(), [1.5, 5.5, -0.5, -0.5]);

        let g = dense_backward(&x, &w, &Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 2.0]));
        assert_eq!(g.input.data(), [1.0, 0.0, 0.0, 2.0, 2.0, 2.0]);
        assert_eq!(g.weight.data(), [1.0, 2.0, 3.0, -2.0, 0.0, 2.0]);
        assert_eq!(g.bias, [1.0, 2.0]);
    }
}
