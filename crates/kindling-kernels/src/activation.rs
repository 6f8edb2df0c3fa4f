//! Element-wise activations and their derivatives.
//!
//! Each derivative is written as a function of the activation's input `x`. Where it is
//! cheaper in terms of the output (`σ' = σ(1 - σ)`, `tanh' = 1 - tanh²`) the function
//! recomputes the output; a network that kept its activations could pass those instead.
//! At the kinks of relu and leaky relu (x = 0) the derivative is taken from the left, as
//! PyTorch does.

/// `max(x, 0)`.
pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

/// `1` for `x > 0`, else `0`.
pub fn relu_derivative(x: f32) -> f32 {
    if x > 0.0 { 1.0 } else { 0.0 }
}

/// `x` for `x > 0`, else `slope · x` (PyTorch's default slope is 0.01).
pub fn leaky_relu(x: f32, slope: f32) -> f32 {
    if x > 0.0 { x } else { slope * x }
}

/// `1` for `x > 0`, else `slope`.
pub fn leaky_relu_derivative(x: f32, slope: f32) -> f32 {
    if x > 0.0 { 1.0 } else { slope }
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `σ(x) · (1 - σ(x))`.
pub fn sigmoid_derivative(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 - s)
}

/// The hyperbolic tangent.
pub fn tanh(x: f32) -> f32 {
    x.tanh()
}

/// `1 - tanh²(x)`.
pub fn tanh_derivative(x: f32) -> f32 {
    let t = x.tanh();
    1.0 - t * t
}

/// One of the activations above, as a value a layer can hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// [`relu`].
    Relu,
    /// [`leaky_relu`] with the given negative slope.
    LeakyRelu {
        /// The factor applied to negative inputs.
        slope: f32,
    },
    /// [`sigmoid`].
    Sigmoid,
    /// [`tanh`].
    Tanh,
}

impl Activation {
    /// The activation at `x`.
    pub fn value(self, x: f32) -> f32 {
        match self {
            Self::Relu => relu(x),
            Self::LeakyRelu { slope } => leaky_relu(x, slope),
            Self::Sigmoid => sigmoid(x),
            Self::Tanh => tanh(x),
        }
    }

    /// Its derivative at `x`.
    pub fn derivative(self, x: f32) -> f32 {
        match self {
            Self::Relu => relu_derivative(x),
            Self::LeakyRelu { slope } => leaky_relu_derivative(x, slope),
            Self::Sigmoid => sigmoid_derivative(x),
            Self::Tanh => tanh_derivative(x),
        }
    }

    /// The activation of every element of `xs`.
    pub fn forward(self, xs: &[f32]) -> Vec<f32> {
        xs.iter().map(|&x| self.value(x)).collect()
    }

    /// `dL/dx` from the inputs `xs` and `grad_out = dL/dy`, element by element (the chain
    /// rule for an element-wise function is a product).
    ///
    /// # Panics
    ///
    /// When the slices differ in length.
    pub fn backward(self, xs: &[f32], grad_out: &[f32]) -> Vec<f32> {
        assert_eq!(xs.len(), grad_out.len(), "one output gradient per input");
        xs.iter().zip(grad_out).map(|(&x, g)| g * self.derivative(x)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_known_points() {
        let cases = [
            // (activation, x, value, derivative)
            (Activation::Relu, -2.0, 0.0, 0.0),
            (Activation::Relu, 0.0, 0.0, 0.0),
            (Activation::Relu, 3.0, 3.0, 1.0),
            (Activation::LeakyRelu { slope: 0.1 }, -2.0, -0.2, 0.1),
            (Activation::LeakyRelu { slope: 0.1 }, 2.0, 2.0, 1.0),
            (Activation::Sigmoid, 0.0, 0.5, 0.25),
            (Activation::Tanh, 0.0, 0.0, 1.0),
        ];
        for (act, x, value, derivative) in cases {
            assert!((act.value(x) - value).abs() < 1e-7, "{act:?}({x})");
            assert!((act.derivative(x) - derivative).abs() < 1e-7, "{act:?}'({x})");
        }
        assert!((sigmoid(2.0) - 0.880_797_1).abs() < 1e-6);
        assert_eq!(sigmoid(-200.0), 0.0);
        assert_eq!(sigmoid(200.0), 1.0);
    }
}
