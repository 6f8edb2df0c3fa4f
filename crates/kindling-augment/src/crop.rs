//! `center_crop` and `random_crop`: windows of a fixed size, at the centre or at a uniformly
//! random position, with torchvision's padding rules for images smaller than the window.

mod window;

use kindling_core::Issues;
use rand::{Rng, RngExt};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

pub use window::PadMode;
pub(crate) use window::{Pad, cut, trace};

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;
use crate::values::{Padding, Size};

/// torchvision's `CenterCrop(size)`: the window at `round((h - th) / 2)`,
/// `round((w - tw) / 2)` with Python's round-half-to-even, so an odd difference puts the
/// extra row at the bottom or the top depending on parity (5 -> 2 starts at row 2, 7 -> 2 at
/// row 2). A side smaller than the window is padded with 0, `(t - n) // 2` ahead of it.
///
/// ```yaml
/// - center_crop: 28          # or [height, width], or {size: 28}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CenterCrop {
    /// One number for a square, or `[height, width]`.
    pub size: Size,
}

/// torchvision's `RandomCrop(size, padding=None, pad_if_needed=False, fill=0,
/// padding_mode="constant")`: pad, then cut a window whose top-left corner is uniform over
/// every position that fits.
///
/// `pad_if_needed` pads a side shorter than the window by the shortfall on *both* ends, as
/// torchvision does, after the explicit `padding`.
///
/// ```yaml
/// - random_crop: 28
/// - random_crop: {size: 28, padding: 4, padding_mode: reflect}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomCrop {
    /// One number for a square, or `[height, width]`.
    pub size: Size,
    /// Padding added first: one number, `[left_right, top_bottom]` or `[l, t, r, b]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<Padding>,
    /// Whether a side shorter than the window is padded instead of refused.
    #[serde(default)]
    pub pad_if_needed: bool,
    /// The value of `constant` padding.
    #[serde(default)]
    pub fill: f32,
    /// How padding invents pixels.
    #[serde(default)]
    pub padding_mode: PadMode,
}

impl CenterCrop {
    /// Cuts the centre window out of `image`.
    pub(crate) fn apply(&self, image: Image) -> Image {
        let [th, tw] = self.size.square();
        let rows =
            trace(th, center_offset(image.height, th), &[Pad { before: 0, len: image.height }], PadMode::Constant);
        let cols = trace(tw, center_offset(image.width, tw), &[Pad { before: 0, len: image.width }], PadMode::Constant);
        cut(&image, &rows, &cols, 0.0)
    }
}

/// Where a centred window of `t` starts on a side of `n`: `round((n - t) / 2)` half to even,
/// or before the side when the window is larger.
fn center_offset(n: usize, t: usize) -> isize {
    if t > n {
        return -(((t - n) / 2) as isize);
    }
    let d = n - t;
    let half = d / 2;
    // Python's round(d / 2): an exact half goes to the even neighbour.
    (if d % 2 == 1 && half % 2 == 1 { half + 1 } else { half }) as isize
}

impl Op for CenterCrop {
    fn check(&self, issues: &mut Issues) {
        issues.require(!self.size.square().contains(&0), "size", "must be positive");
    }

    fn shape(&self, [c, _, _]: [usize; 3]) -> Result<[usize; 3], String> {
        let [th, tw] = self.size.square();
        Ok([c, th, tw])
    }
}

impl Settings for CenterCrop {
    const FORMS: &'static str = "a size like 28 or [height, width], or a map with `size`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(Size::deserialize(value).map(|size| CenterCrop { size }))
    }

    fn short_schema(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<Size>())
    }
}

/// The paddings of one axis and the padded length.
struct Axis {
    pads: [Pad; 2],
    count: usize,
    len: usize,
}

impl RandomCrop {
    /// A random crop to `size` without padding.
    pub fn new(size: Size) -> Self {
        Self { size, padding: None, pad_if_needed: false, fill: 0.0, padding_mode: PadMode::Constant }
    }

    /// Pads and cuts `image`; the position is drawn row first, as torchvision does, and not
    /// at all when the padded image is exactly the window.
    pub(crate) fn apply<R: Rng + ?Sized>(&self, image: Image, rng: &mut R) -> Image {
        let [th, tw] = self.size.square();
        let p = self.padding.unwrap_or_default();
        let (Ok(down), Ok(across)) =
            (self.axis(image.height, th, p.top, p.bottom), self.axis(image.width, tw, p.left, p.right))
        else {
            return image;
        };
        let (i, j) = if (down.len, across.len) == (th, tw) {
            (0, 0)
        } else {
            (rng.random_range(0..=down.len - th), rng.random_range(0..=across.len - tw))
        };
        let rows = trace(th, i as isize, &down.pads[..down.count], self.padding_mode);
        let cols = trace(tw, j as isize, &across.pads[..across.count], self.padding_mode);
        cut(&image, &rows, &cols, self.fill)
    }

    /// The paddings of a side of `n` for a window of `t`, or why the window does not fit.
    fn axis(&self, n: usize, t: usize, before: usize, after: usize) -> Result<Axis, String> {
        let mode = self.padding_mode;
        let mut axis = Axis { pads: [Pad { before: 0, len: n }; 2], count: 0, len: n };
        let pad = |axis: &mut Axis, before: usize, after: usize| {
            let limit = mode.limit(axis.len);
            if before.max(after) > limit {
                return Err(format!(
                    "{} padding of {} is too wide for a side of {} pixels (at most {limit})",
                    mode.name(),
                    before.max(after),
                    axis.len
                ));
            }
            axis.pads[axis.count] = Pad { before, len: axis.len };
            axis.count += 1;
            axis.len += before + after;
            Ok(())
        };
        if self.padding.is_some() {
            pad(&mut axis, before, after)?;
        }
        if self.pad_if_needed && axis.len < t {
            let short = t - axis.len;
            pad(&mut axis, short, short)?;
        }
        if axis.len < t {
            return Err(format!(
                "the crop ({t}) is larger than the padded image ({}); set `pad_if_needed: true` or crop less",
                axis.len
            ));
        }
        Ok(axis)
    }
}

impl Op for RandomCrop {
    fn check(&self, issues: &mut Issues) {
        issues.require(!self.size.square().contains(&0), "size", "must be positive");
        issues.require(self.fill.is_finite(), "fill", "must be a finite number");
    }

    fn shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        let [th, tw] = self.size.square();
        let p = self.padding.unwrap_or_default();
        self.axis(h, th, p.top, p.bottom).map_err(|e| format!("rows: {e}"))?;
        self.axis(w, tw, p.left, p.right).map_err(|e| format!("columns: {e}"))?;
        Ok([c, th, tw])
    }
}

impl Settings for RandomCrop {
    const FORMS: &'static str = "a size like 28 or [height, width], or a map with `size` and optional `padding`, \
                                 `pad_if_needed`, `fill`, `padding_mode`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(Size::deserialize(value).map(RandomCrop::new))
    }

    fn short_schema(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<Size>())
    }
}

#[cfg(test)]
mod tests;
