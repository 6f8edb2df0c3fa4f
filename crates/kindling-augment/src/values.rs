//! Setting values that take torchvision's short forms: a size, a padding, a range to draw
//! from, a fill colour. Each is one number or a short list in YAML, so each has a hand-written
//! `Deserialize` whose error says which forms are accepted.

use std::fmt;
use std::marker::PhantomData;

use std::borrow::Cow;

use rand::{Rng, RngExt};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, IntoDeserializer, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An output size: one number or `[height, width]`.
///
/// What one number means depends on the transform: `resize` matches the smaller edge to it
/// and keeps the aspect ratio; the crops make a square.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `34`.
    Edge(usize),
    /// `[height, width]`.
    Exact([usize; 2]),
}

impl Size {
    /// `[height, width]`, one number making a square (the crops' reading).
    pub fn square(self) -> [usize; 2] {
        match self {
            Size::Edge(s) => [s, s],
            Size::Exact(hw) => hw,
        }
    }
}

/// Padding in pixels per side: `4` (all sides), `[left_right, top_bottom]` or
/// `[left, top, right, bottom]`, torchvision's three forms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    /// Columns added on the left.
    pub left: usize,
    /// Rows added on top.
    pub top: usize,
    /// Columns added on the right.
    pub right: usize,
    /// Rows added at the bottom.
    pub bottom: usize,
}

/// A range to draw from: `[min, max]`, or one number `d` that spreads symmetrically around
/// the setting's neutral value (`[-d, d]` for angles, `[max(0, 1 - d), 1 + d]` for factors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Span {
    /// One number: the distance from neutral on each side.
    Spread(f64),
    /// `[min, max]`.
    Range([f64; 2]),
}

impl Span {
    /// The `[min, max]` this span stands for, with `neutral` the value that changes nothing
    /// and `floor` the lowest value a spread may reach.
    pub fn bounds(self, neutral: f64, floor: f64) -> [f64; 2] {
        match self {
            Span::Spread(d) => [(neutral - d).max(floor), neutral + d],
            Span::Range(r) => r,
        }
    }

    /// The bounds, or `None` when the span is the single neutral value (torchvision then
    /// skips the adjustment and draws nothing for it).
    pub(crate) fn active(self, neutral: f64, floor: f64) -> Option<[f64; 2]> {
        let [lo, hi] = self.bounds(neutral, floor);
        (lo != neutral || hi != neutral).then_some([lo, hi])
    }
}

/// A fill colour for pixels that come from outside the image: one value for every channel, or
/// one per channel.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// The same value in every channel.
    Value(f32),
    /// One value per channel.
    PerChannel(Vec<f32>),
}

impl Default for Fill {
    fn default() -> Self {
        Fill::Value(0.0)
    }
}

impl Fill {
    /// The fill of channel `c` (a one-element list, like one number, fills every channel).
    pub(crate) fn channel(&self, c: usize) -> f32 {
        match self {
            Fill::Value(v) => *v,
            Fill::PerChannel(v) if v.len() == 1 => v[0],
            Fill::PerChannel(v) => v.get(c).copied().unwrap_or(0.0),
        }
    }

    /// Whether this fill fits an image of `channels` channels, as an error message if not.
    pub(crate) fn fits(&self, channels: usize) -> Result<(), String> {
        match self {
            Fill::PerChannel(v) if v.len() != 1 && v.len() != channels => Err(format!(
                "`fill` has {} values for {channels} channels; give one number or one per channel",
                v.len()
            )),
            _ => Ok(()),
        }
    }

    /// Whether every value is finite.
    pub(crate) fn is_finite(&self) -> bool {
        match self {
            Fill::Value(v) => v.is_finite(),
            Fill::PerChannel(v) => v.iter().all(|x| x.is_finite()),
        }
    }
}

/// A draw from `[lo, hi)`, torch's `uniform_` formula; equal bounds give that value.
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, [lo, hi]: [f64; 2]) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// `true` for serde defaults that are on.
pub(crate) fn yes() -> bool {
    true
}

/// One number or a list of numbers, read with `expecting` as the words for errors.
enum Raw<T> {
    One(T),
    Many(Vec<T>),
}

struct RawVisitor<T> {
    expecting: &'static str,
    marker: PhantomData<T>,
}

fn raw<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D, expecting: &'static str) -> Result<Raw<T>, D::Error> {
    d.deserialize_any(RawVisitor { expecting, marker: PhantomData })
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for RawVisitor<T> {
    type Value = Raw<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    // A number of the wrong kind (`-3` or `3.5` for a size) is reported against the forms
    // accepted rather than against the Rust type ("expected usize").
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw<T>, E> {
        T::deserialize(v.into_deserializer())
            .map(Raw::One)
            .map_err(|_: E| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw<T>, E> {
        T::deserialize(v.into_deserializer())
            .map(Raw::One)
            .map_err(|_: E| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw<T>, E> {
        T::deserialize(v.into_deserializer()).map(Raw::One).map_err(|_: E| E::invalid_type(Unexpected::Float(v), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Many(items))
    }
}

const SIZE: &str = "a size: one number like 28, or [height, width]";
const PADDING: &str = "a padding: one number, [left_right, top_bottom] or [left, top, right, bottom]";
const SPAN: &str = "a range: one number d (a spread around neutral) or [min, max]";
const FILL: &str = "a fill: one number, or one number per channel";

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match raw::<usize, D>(d, SIZE)? {
            Raw::One(s) => Ok(Size::Edge(s)),
            Raw::Many(v) => match v[..] {
                [h, w] => Ok(Size::Exact([h, w])),
                _ => Err(de::Error::invalid_length(v.len(), &SIZE)),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [left, top, right, bottom] = match raw::<usize, D>(d, PADDING)? {
            Raw::One(p) => [p; 4],
            Raw::Many(v) => match v[..] {
                [p] => [p; 4],
                [lr, tb] => [lr, tb, lr, tb],
                [l, t, r, b] => [l, t, r, b],
                _ => return Err(de::Error::invalid_length(v.len(), &PADDING)),
            },
        };
        Ok(Padding { left, top, right, bottom })
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match raw::<f64, D>(d, SPAN)? {
            Raw::One(s) => Ok(Span::Spread(s)),
            Raw::Many(v) => match v[..] {
                [lo, hi] => Ok(Span::Range([lo, hi])),
                _ => Err(de::Error::invalid_length(v.len(), &SPAN)),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Fill {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match raw::<f32, D>(d, FILL)? {
            Raw::One(v) => Ok(Fill::Value(v)),
            Raw::Many(v) if !v.is_empty() => Ok(Fill::PerChannel(v)),
            Raw::Many(_) => Err(de::Error::invalid_length(0, &FILL)),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Size::Edge(e) => s.serialize_u64(*e as u64),
            Size::Exact(hw) => hw.serialize(s),
        }
    }
}

impl Serialize for Padding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.left, self.top, self.right, self.bottom].serialize(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Span::Spread(d) => s.serialize_f64(*d),
            Span::Range(r) => r.serialize(s),
        }
    }
}

impl Serialize for Fill {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Fill::Value(v) => s.serialize_f32(*v),
            Fill::PerChannel(v) => v.serialize(s),
        }
    }
}

// The JSON Schemas of the forms the `Deserialize` impls above accept (`kindling schema`).

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    /// Every transform that takes a size refuses 0, so the schema does too.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": SIZE,
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
            ],
        })
    }
}

impl JsonSchema for Padding {
    fn schema_name() -> Cow<'static, str> {
        "Padding".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": PADDING,
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
                {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4},
            ],
        })
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Span".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": SPAN,
            "anyOf": [
                {"type": "number"},
                {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            ],
        })
    }
}

impl JsonSchema for Fill {
    fn schema_name() -> Cow<'static, str> {
        "Fill".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": FILL,
            "anyOf": [
                {"type": "number"},
                {"type": "array", "items": {"type": "number"}, "minItems": 1},
            ],
        })
    }
}
