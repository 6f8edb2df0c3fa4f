//! Typed artifacts: values stages hand to later stages, stored by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// A value one stage produces and another consumes. `KIND` is the name stages use in their
/// declared inputs and outputs, so the pipeline can check the wiring before any compute.
pub trait Artifact: Any + Send {
    /// The name stages use for this artifact (`"dataset"`, `"model"`).
    const KIND: &'static str;
}

/// A map from artifact type to value. Each type appears at most once; a later stage that
/// produces the same kind replaces the earlier value (a trained model replaces the initial one).
#[derive(Default)]
pub struct TypeMap {
    values: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl TypeMap {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The stored value of type `T`, if any.
    pub fn get<T: Any + Send>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref())
    }

    /// The stored value of type `T`, mutably.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.values.get_mut(&TypeId::of::<T>()).and_then(|b| b.downcast_mut())
    }

    /// Removes and returns the stored value of type `T`.
    pub fn take<T: Any + Send>(&mut self) -> Option<T> {
        self.values.remove(&TypeId::of::<T>()).and_then(|b| b.downcast().ok()).map(|b| *b)
    }
}

impl std::fmt::Debug for TypeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeMap").field("len", &self.values.len()).finish()
    }
}

/// The artifacts of a running pipeline, plus run-wide resources (the device) stored the same way.
pub type Artifacts = TypeMap;

/// What is known about the data before any compute (input shapes, class counts), filled in
/// by stages while the pipeline is validated.
pub type Facts = TypeMap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_type_and_replaced() {
        let mut m = TypeMap::default();
        m.insert(3_u32);
        m.insert(String::from("a"));
        m.insert(4_u32);
        assert_eq!(m.get::<u32>(), Some(&4));
        assert_eq!(m.take::<String>().as_deref(), Some("a"));
        assert!(m.get::<String>().is_none());
    }
}
