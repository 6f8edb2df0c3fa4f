//! The weights of one resampling axis: plain bilinear with half-pixel centres, or the
//! triangle filter of PIL and torchvision's antialiasing, whose support widens by the scale
//! factor when shrinking. Computed once per call and axis, then shared by every row or column.

/// The filter along one axis: output index `i` weighs the inputs `start[i] .. start[i] +
/// width` by `weights[i * width .. (i + 1) * width]`. Every output has the same number of
/// taps (zero-padded), so the two-tap case can be unrolled.
#[derive(Debug)]
pub(crate) struct Taps {
    start: Vec<usize>,
    weights: Vec<f32>,
    pub(crate) width: usize,
}

impl Taps {
    /// The weights for resampling `input` samples to `output` samples.
    pub(crate) fn new(input: usize, output: usize, antialias: bool) -> Self {
        // torch's scale for a requested size (align_corners = false): input over output.
        let scale = input as f64 / output as f64;
        let mut ragged = Ragged::default();
        for i in 0..output {
            if antialias {
                ragged.push_triangle(i, scale, input);
            } else {
                ragged.push_linear(i, scale, input);
            }
        }
        let width = ragged.offset.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let mut taps = Taps { start: Vec::with_capacity(output), weights: vec![0.0; output * width], width };
        for i in 0..output {
            let (lo, weights) = (ragged.start[i], &ragged.weights[ragged.offset[i]..ragged.offset[i + 1]]);
            // Near the end the window slides back so it stays inside the input; the weights
            // keep their input positions, with zeros ahead of them.
            let start = lo.min(input - width);
            let row = &mut taps.weights[i * width..(i + 1) * width];
            row[lo - start..lo - start + weights.len()].copy_from_slice(weights);
            taps.start.push(start);
        }
        taps
    }

    /// The first input index and the weights of output index `i`.
    pub(crate) fn get(&self, i: usize) -> (usize, &[f32]) {
        (self.start[i], &self.weights[i * self.width..(i + 1) * self.width])
    }
}

/// Taps of varying count while they are computed: output `i` weighs inputs from `start[i]`
/// by `weights[offset[i]..offset[i + 1]]`.
#[derive(Debug)]
struct Ragged {
    start: Vec<usize>,
    offset: Vec<usize>,
    weights: Vec<f32>,
}

impl Default for Ragged {
    fn default() -> Self {
        Self { start: Vec::new(), offset: vec![0], weights: Vec::new() }
    }
}

impl Ragged {
    /// Plain bilinear: the half-pixel source position `(i + 0.5) * scale - 0.5`, clamped at
    /// 0, between its two neighbours (one at the last index).
    fn push_linear(&mut self, i: usize, scale: f64, input: usize) {
        let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let lo = (src as usize).min(input - 1);
        let frac = src - lo as f64;
        self.start.push(lo);
        if lo + 1 < input {
            self.weights.extend([(1.0 - frac) as f32, frac as f32]);
        } else {
            self.weights.push(1.0);
        }
        self.offset.push(self.weights.len());
    }

    /// The triangle filter centred on the output pixel's centre in input coordinates,
    /// `scale * (i + 0.5)`, stretched by the scale when shrinking, its weights normalised to
    /// sum to one. When enlarging, this equals [`Ragged::push_linear`].
    fn push_triangle(&mut self, i: usize, scale: f64, input: usize) {
        let (support, stretch) = if scale >= 1.0 { (scale, 1.0 / scale) } else { (1.0, 1.0) };
        let center = scale * (i as f64 + 0.5);
        let lo = (center - support + 0.5).max(0.0) as usize;
        let hi = ((center + support + 0.5).max(0.0) as usize).min(input);
        let first = self.weights.len();
        let mut total = 0.0;
        for j in lo..hi {
            let w = (1.0 - ((j as f64 - center + 0.5) * stretch).abs()).max(0.0);
            total += w;
            self.weights.push(w as f32);
        }
        if total > 0.0 {
            for w in &mut self.weights[first..] {
                *w = (f64::from(*w) / total) as f32;
            }
        }
        self.start.push(lo);
        self.offset.push(self.weights.len());
    }
}
