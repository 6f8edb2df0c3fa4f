//! Per-thread counters of the backward steps: how long each kind took and how many weight
//! gradients the fused kernel computed. burn runs a backward pass as one call, so this is how
//! profiles tell its parts apart and how tests tell that the fast path ran.

use std::cell::Cell;

thread_local! {
    static FUSED_WEIGHT_GRADS: Cell<usize> = const { Cell::new(0) };
    static TIMES: Cell<BackwardTimes> = Cell::new(BackwardTimes::default());
}

/// How many weight gradients the fused kernel has computed for backward passes run on this
/// thread (so tests and benchmarks can tell that the fast path ran).
pub fn fused_weight_grads() -> usize {
    FUSED_WEIGHT_GRADS.with(Cell::get)
}

/// Counts one weight gradient computed by the fused kernel on this thread.
pub(crate) fn count_fused_weight_grad() {
    FUSED_WEIGHT_GRADS.with(|n| n.set(n.get() + 1));
}

/// Seconds spent in this crate's backward steps on this thread, by kind (for profiles: burn
/// runs a backward pass as one call, so this is how its parts are told apart).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BackwardTimes {
    /// Convolution weight gradients (the fused kernel).
    pub conv_weight: f64,
    /// Convolution input gradients.
    pub conv_input: f64,
    /// Convolution bias gradients.
    pub conv_bias: f64,
    /// Max-pooling input gradients.
    pub max_pool: f64,
    /// Average-pooling input gradients.
    pub avg_pool: f64,
    /// Batch-normalisation gradients (input, scale and shift).
    pub batch_norm: f64,
    /// Activation (ReLU, tanh) input gradients.
    pub activation: f64,
}

impl BackwardTimes {
    /// Each kind with its name, in a fixed order (how profiles list them).
    pub fn parts(&self) -> [(&'static str, f64); 7] {
        [
            ("conv weight gradients", self.conv_weight),
            ("conv input gradients", self.conv_input),
            ("conv bias gradients", self.conv_bias),
            ("max pooling", self.max_pool),
            ("average pooling", self.avg_pool),
            ("batch norm", self.batch_norm),
            ("activations", self.activation),
        ]
    }

    /// Each field of `self` minus the same field of `before`.
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self {
            conv_weight: self.conv_weight - before.conv_weight,
            conv_input: self.conv_input - before.conv_input,
            conv_bias: self.conv_bias - before.conv_bias,
            max_pool: self.max_pool - before.max_pool,
            avg_pool: self.avg_pool - before.avg_pool,
            batch_norm: self.batch_norm - before.batch_norm,
            activation: self.activation - before.activation,
        }
    }
}

/// The backward time so far on this thread.
pub fn backward_times() -> BackwardTimes {
    TIMES.with(Cell::get)
}

/// Runs `f`, adding its duration to the field `slot` picks.
pub(crate) fn timed<T>(slot: fn(&mut BackwardTimes) -> &mut f64, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    TIMES.with(|t| {
        let mut times = t.get();
        *slot(&mut times) += start.elapsed().as_secs_f64();
        t.set(times);
    });
    out
}
