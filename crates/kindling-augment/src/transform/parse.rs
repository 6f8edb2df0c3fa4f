//! Reading transforms from YAML: a bare name, `name: short value`, or `name: {settings}`,
//! with `apply` beside the name when the transform is a pipeline step. Written by hand rather
//! than derived so that an unknown name lists the known ones and a wrong short form says
//! which forms the transform accepts.

use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value};

use super::{NAMES, Transform, settings, value_schemas};
use crate::Apply;

/// How a settings struct reads from YAML besides the full map its `Deserialize` handles. Its
/// `JsonSchema` (derived with `Deserialize`) describes that map.
pub(crate) trait Settings: DeserializeOwned + JsonSchema {
    /// The accepted forms, for error messages ("a size like 34 or [h, w], or a map").
    const FORMS: &'static str;

    /// The settings a bare name, `null` or `{}` stands for, when every field has a default.
    fn bare() -> Option<Self> {
        None
    }

    /// The settings from a short form (one number or a list) that stands for the main field,
    /// or `None` when the transform has no short form.
    fn short<'de, D: Deserializer<'de>>(_value: D) -> Option<Result<Self, D::Error>> {
        None
    }

    /// The JSON Schema of what [`short`](Self::short) reads, where the transform has a short
    /// form.
    fn short_schema(_generator: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

/// The JSON Schema of the value under a transform's name: `null` where a bare name works, the
/// short form where there is one, or the full map. `doc` is the transform's description.
pub(super) fn value_schema<T: Settings>(generator: &mut SchemaGenerator, doc: &str) -> Schema {
    let mut forms = Vec::new();
    if T::bare().is_some() {
        forms.push(json_schema!({"type": "null"}));
    }
    forms.extend(T::short_schema(generator));
    forms.push(generator.subschema_for::<T>());
    json_schema!({"description": format!("{} Accepts {}.", doc.trim(), T::FORMS), "anyOf": forms})
}

/// The JSON Schema of one entry of a transform list, as [`EntryVisitor`] reads it: the name
/// of a transform whose settings all have defaults, or a mapping of exactly one transform's
/// name to its settings, with `apply` beside it when `step` (a pipeline step).
pub(crate) fn entry_schema(generator: &mut SchemaGenerator, step: bool) -> Schema {
    let mut properties = Map::new();
    let mut bare = Vec::new();
    let mut one_of = Vec::new();
    for (name, has_bare, schema) in value_schemas(generator) {
        if has_bare {
            bare.push(Value::from(name));
        }
        one_of.push(serde_json::json!({"required": [name]}));
        properties.insert(name.to_owned(), schema.to_value());
    }
    if step {
        let mut apply = generator.subschema_for::<Apply>().to_value();
        if let Value::Object(map) = &mut apply {
            map.insert(
                "description".to_owned(),
                "the splits the step transforms: `train` (the default, except for normalize) or `all`".into(),
            );
        }
        properties.insert("apply".to_owned(), apply);
    }
    json_schema!({
        "description": "a transform: its name alone where every setting has a default \
                        (`random_horizontal_flip`), or a mapping of one name to its settings \
                        (`resize: 34`, `random_rotation: {degrees: 15}`)",
        "anyOf": [
            {"type": "string", "enum": bare},
            {"type": "object", "properties": properties, "additionalProperties": false, "oneOf": one_of},
        ],
    })
}

/// The message for a name that is not a transform, with the closest name when there is one.
pub(super) fn unknown(name: &str) -> String {
    let mut message = format!("unknown transform `{name}`");
    if let Some(close) = kindling_core::closest(name, NAMES.iter().copied()) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message.push_str(&format!(" (the transforms are {})", NAMES.join(", ")));
    message
}

/// Reads the value under the transform name `name` as the settings `T`.
pub(super) fn read<'de, T: Settings, D: Deserializer<'de>>(name: &'static str, value: D) -> Result<T, D::Error> {
    value.deserialize_any(SettingsVisitor { name, marker: PhantomData })
}

struct SettingsVisitor<T> {
    name: &'static str,
    marker: PhantomData<T>,
}

impl<T: Settings> SettingsVisitor<T> {
    fn short<'de, D: Deserializer<'de>>(&self, value: D, what: Unexpected<'_>) -> Result<T, D::Error> {
        T::short(value).unwrap_or_else(|| Err(de::Error::invalid_type(what, self)))
    }
}

impl<'de, T: Settings> Visitor<'de> for SettingsVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "settings of `{}`: {}", self.name, T::FORMS)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        T::bare().ok_or_else(|| E::custom(format!("`{}` needs settings: {}", self.name, T::FORMS)))
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        self.short(SeqAccessDeserializer::new(seq), Unexpected::Seq)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.short(v.into_deserializer(), Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.short(v.into_deserializer(), Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.short(v.into_deserializer(), Unexpected::Float(v))
    }
}

/// Reads one list entry: a transform, and its `apply` key when `step` allows one.
pub(crate) struct EntryVisitor {
    /// Whether `apply` may sit beside the transform's name (in a pipeline step).
    pub(crate) step: bool,
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = (Transform, Option<Apply>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transform: a name like `random_horizontal_flip`, or a map like `resize: 34`")?;
        if self.step {
            f.write_str(" with an optional `apply: train | all` beside it")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        let unit: de::value::UnitDeserializer<E> = ().into_deserializer();
        Ok((settings(name, unit)?, None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut transform: Option<Transform> = None;
        let mut apply = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "apply" {
                if !self.step {
                    return Err(de::Error::custom("`apply` belongs to a pipeline step, not to a transform"));
                }
                if apply.is_some() {
                    return Err(de::Error::duplicate_field("apply"));
                }
                apply = Some(map.next_value::<Apply>()?);
            } else if let Some(first) = &transform {
                return Err(de::Error::custom(format!(
                    "one list entry holds one transform, but this one has `{}` and `{key}`; \
                     write each as its own `- ` item",
                    first.name()
                )));
            } else {
                if !NAMES.contains(&key.as_str()) {
                    return Err(de::Error::custom(unknown(&key)));
                }
                transform = Some(map.next_value_seed(Named(&key))?);
            }
        }
        match transform {
            Some(t) => Ok((t, apply)),
            None => Err(de::Error::custom(format!(
                "this entry names no transform; write one like `- resize: 34` (the transforms are {})",
                NAMES.join(", ")
            ))),
        }
    }
}

/// The value under a transform's name, read as that transform's settings.
struct Named<'a>(&'a str);

impl<'de> de::DeserializeSeed<'de> for Named<'_> {
    type Value = Transform;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Transform, D::Error> {
        settings(self.0, d)
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor { step: false }).map(|(t, _)| t)
    }
}
