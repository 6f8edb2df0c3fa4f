//! A pipeline step: a transform and the splits it applies to.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use crate::Transform;
use crate::transform::parse::{EntryVisitor, entry_schema};

/// Which splits a step transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// Training images only: augmentation, the default for every transform but `normalize`.
    Train,
    /// Every split (training, validation, test, prediction): the default for `normalize`, and
    /// what a deterministic resize or crop that defines the input size should say.
    All,
}

/// One entry of a [`crate::Pipeline`].
///
/// In YAML, an entry is a transform's name with its settings, and optionally `apply` beside
/// the name:
///
/// ```yaml
/// - random_horizontal_flip                    # a bare name: every setting at its default
/// - random_vertical_flip: {}                  # the same, as an empty map
/// - resize: 34                                # a short form: the main setting alone
/// - resize: {size: 34, antialias: false}      # the full map
/// - random_rotation: {degrees: 15}
///   apply: all                                # every split, not only training
/// - {center_crop: 28, apply: all}             # the same, in flow style
/// ```
///
/// The short forms are `size` for the resizes and crops, `p` for the flips, `degrees` for
/// `random_rotation` and `angle` for `rotate`; `color_jitter` and `normalize` take maps.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What to do.
    pub transform: Transform,
    /// To which splits.
    pub apply: Apply,
}

impl Step {
    /// A step with the transform's default splits ([`Transform::default_apply`]).
    pub fn new(transform: Transform) -> Self {
        let apply = transform.default_apply();
        Self { transform, apply }
    }

    /// The same step applied to `apply`.
    #[must_use]
    pub fn with_apply(self, apply: Apply) -> Self {
        Self { apply, ..self }
    }

    /// Whether the step transforms images of the training split (`train`) or of the others.
    pub fn applies(&self, train: bool) -> bool {
        train || self.apply == Apply::All
    }
}

impl From<Transform> for Step {
    fn from(transform: Transform) -> Self {
        Step::new(transform)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (transform, apply) = d.deserialize_any(EntryVisitor { step: true })?;
        let apply = apply.unwrap_or_else(|| transform.default_apply());
        Ok(Step { transform, apply })
    }
}

/// The forms [`Step`]'s `Deserialize` reads (`kindling schema`).
impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        entry_schema(generator, true)
    }
}

/// Written as the full map form, with `apply` only where it differs from the default, so a
/// pipeline written out reads back as the same pipeline.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            #[serde(flatten)]
            transform: &'a Transform,
            #[serde(skip_serializing_if = "Option::is_none")]
            apply: Option<Apply>,
        }
        let apply = (self.apply != self.transform.default_apply()).then_some(self.apply);
        Entry { transform: &self.transform, apply }.serialize(s)
    }
}
