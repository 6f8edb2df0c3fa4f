//! Every registered stage documents exactly the keys its configuration reads and writes.
//!
//! `StageConfig::KEY_DOCS` is both what `kindling stages` prints and the list of keys a `with:`
//! block may use (others are rejected as unknown), kept beside the struct by hand. A field
//! missing from it would be rejected although the struct reads it; a documented key that is no
//! field would be accepted and ignored. Serialising the default configuration gives the
//! fields, so the two lists are compared here for every stage of the registry.

#[test]
fn documented_keys_are_the_configuration_fields() {
    let mut problems = Vec::new();
    for (name, def) in tests::registry().iter() {
        let documented: Vec<String> = def.keys().iter().map(|k| k.name.to_owned()).collect();
        let fields = def.serialized_keys();
        let undocumented: Vec<&String> = fields.iter().filter(|f| !documented.contains(f)).collect();
        let not_fields: Vec<&String> = documented.iter().filter(|d| !fields.contains(d)).collect();
        if !undocumented.is_empty() || !not_fields.is_empty() {
            problems.push(format!(
                "{name}: fields missing from KEY_DOCS {undocumented:?}, KEY_DOCS entries that are no field {not_fields:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
