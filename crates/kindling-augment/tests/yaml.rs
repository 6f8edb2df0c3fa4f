//! Reading pipelines from YAML: every accepted form, the defaults, and the errors for what
//! is not accepted.

use kindling_augment::*;

fn parse(yaml: &str) -> Pipeline {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}\n-> {e}"))
}

/// Checks that `yaml` is refused with a message containing every one of `fragments`.
fn refused(yaml: &str, fragments: &[&str]) {
    let err = serde_yaml::from_str::<Pipeline>(yaml).expect_err(yaml).to_string();
    for fragment in fragments {
        assert!(err.contains(fragment), "error for {yaml:?} lacks {fragment:?}:\n{err}");
    }
}

fn one(yaml: &str) -> Step {
    let mut p = parse(yaml);
    assert_eq!(p.steps.len(), 1);
    p.steps.remove(0)
}

#[test]
fn every_form_reads_as_written() {
    let p = parse(include_str!("test_data/every_form.yaml"));
    let t = |step: &Step| step.transform.clone();
    let train = Apply::Train;
    let expected: Vec<(Transform, Apply)> = vec![
        (Transform::Resize(Resize::new(Size::Edge(34))), train),
        (Transform::Resize(Resize::new(Size::Exact([32, 48]))), train),
        (Transform::Resize(Resize { max_size: Some(40), antialias: false, ..Resize::new(Size::Edge(34)) }), train),
        (Transform::CenterCrop(CenterCrop { size: Size::Edge(28) }), train),
        (Transform::CenterCrop(CenterCrop { size: Size::Exact([20, 24]) }), Apply::All),
        (
            Transform::RandomCrop(RandomCrop {
                padding: Some(Padding { left: 4, top: 4, right: 4, bottom: 4 }),
                padding_mode: PadMode::Reflect,
                ..RandomCrop::new(Size::Edge(28))
            }),
            train,
        ),
        (
            Transform::RandomCrop(RandomCrop {
                padding: Some(Padding { left: 1, top: 2, right: 1, bottom: 2 }),
                pad_if_needed: true,
                fill: 0.5,
                ..RandomCrop::new(Size::Exact([28, 30]))
            }),
            train,
        ),
        (Transform::RandomResizedCrop(RandomResizedCrop::new(Size::Edge(24))), train),
        (
            Transform::RandomResizedCrop(RandomResizedCrop {
                size: Size::Exact([24, 32]),
                scale: [0.5, 1.0],
                ratio: [0.75, 1.25],
                antialias: false,
            }),
            train,
        ),
        (Transform::RandomHorizontalFlip(Flip { p: 0.5 }), train),
        (Transform::RandomHorizontalFlip(Flip { p: 0.5 }), train),
        (Transform::RandomVerticalFlip(Flip { p: 0.25 }), train),
        (Transform::RandomVerticalFlip(Flip { p: 0.5 }), train),
        (Transform::RandomVerticalFlip(Flip { p: 0.75 }), Apply::All),
        (Transform::RandomRotation(RandomRotation::new(Span::Spread(15.0))), train),
        (Transform::RandomRotation(RandomRotation::new(Span::Range([-10.0, 30.0]))), train),
        (
            Transform::RandomRotation(RandomRotation {
                interpolation: Interpolation::Bilinear,
                center: Some([2.0, 3.0]),
                fill: Fill::PerChannel(vec![0.1, 0.2, 0.3]),
                ..RandomRotation::new(Span::Spread(15.0))
            }),
            train,
        ),
        (Transform::Rotate(Rotate::new(90.0)), train),
        (Transform::Rotate(Rotate { expand: true, fill: Fill::Value(1.0), ..Rotate::new(45.0) }), train),
        (
            Transform::ColorJitter(ColorJitter {
                brightness: Span::Spread(0.4),
                contrast: Span::Range([0.5, 1.5]),
                saturation: Span::Spread(0.2),
                hue: Span::Spread(0.1),
            }),
            train,
        ),
        (Transform::ColorJitter(ColorJitter::default()), train),
        (
            Transform::Normalize(Normalize { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }),
            Apply::All,
        ),
        (Transform::Normalize(Normalize { mean: vec![0.5], std: vec![0.5] }), train),
    ];
    assert_eq!(p.steps.len(), expected.len());
    for (i, (step, (transform, apply))) in p.steps.iter().zip(expected).enumerate() {
        assert_eq!((t(step), step.apply), (transform, apply), "entry {i}");
    }
}

#[test]
fn written_pipelines_read_back() {
    let p = parse(include_str!("test_data/every_form.yaml"));
    let written = serde_yaml::to_string(&p).unwrap();
    assert_eq!(parse(&written), p, "{written}");
    // `apply` is written only where it is not the default.
    assert_eq!(written.matches("apply:").count(), 3, "{written}");
}

#[test]
fn normalize_defaults_to_every_split_and_the_rest_to_training() {
    assert_eq!(one("- normalize: {mean: [0.1307], std: [0.3081]}").apply, Apply::All);
    for name in NAMES.iter().filter(|n| **n != "normalize") {
        let yaml = match *name {
            "random_rotation" | "rotate" => format!("- {name}: 10"),
            "random_horizontal_flip" | "random_vertical_flip" | "color_jitter" => format!("- {name}"),
            _ => format!("- {name}: 8"),
        };
        let step = one(&yaml);
        assert_eq!(step.transform.name(), *name);
        assert_eq!(step.apply, Apply::Train, "{name}");
    }
}

#[test]
fn unknown_names_list_the_known_ones() {
    refused("- random_flip: {}", &["unknown transform `random_flip`", "resize, center_crop", "normalize"]);
    refused("- random_horizontal_flips", &["did you mean `random_horizontal_flip`?"]);
    refused("- {resize: 34, center_crop: 28}", &["has `resize` and `center_crop`", "own `- ` item"]);
    refused("- apply: all", &["names no transform"]);
}

#[test]
fn unknown_and_missing_keys_are_named() {
    refused("- resize: {size: 34, antialiasing: false}", &["unknown field `antialiasing`", "`antialias`"]);
    refused("- random_rotation: {degree: 15}", &["unknown field `degree`", "`degrees`"]);
    refused("- center_crop: {}", &["missing field `size`"]);
    refused("- normalize", &["`normalize` needs settings", "`mean` and `std`"]);
    refused("- normalize: 0.5", &["settings of `normalize`"]);
    refused("- color_jitter: 0.4", &["settings of `color_jitter`", "`brightness`"]);
    refused("- resize: 34\n  apply: sometimes", &["unknown variant `sometimes`", "`train`", "`all`"]);
    refused("- resize: 34\n  apply: all\n  apply: all", &["duplicate field `apply`"]);
}

#[test]
fn short_forms_of_the_wrong_shape_say_what_they_take() {
    refused("- resize: [1, 2, 3]", &["a size: one number like 28, or [height, width]"]);
    refused("- resize: -3", &["invalid value: integer `-3`, expected a size"]);
    refused("- center_crop: 2.5", &["floating point `2.5`, expected a size"]);
    refused("- random_crop: {size: 8, padding: [1, 2, 3]}", &["[left, top, right, bottom]"]);
    refused("- random_rotation: [1, 2, 3]", &["one number d", "[min, max]"]);
    refused("- random_rotation: {degrees: 5, fill: []}", &["one number per channel"]);
    refused("- random_crop: {size: 8, padding_mode: wrap}", &["unknown variant `wrap`", "`reflect`"]);
}

#[test]
fn a_transform_alone_has_no_apply() {
    let t: Transform = serde_yaml::from_str("center_crop: 28").unwrap();
    assert_eq!(t, Transform::CenterCrop(CenterCrop { size: Size::Edge(28) }));
    let err = serde_yaml::from_str::<Transform>("{center_crop: 28, apply: all}").unwrap_err();
    assert!(err.to_string().contains("`apply` belongs to a pipeline step"), "{err}");
}

#[test]
fn the_schema_names_every_transform_and_the_bare_names_the_reader_takes() {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let step = <Step as schemars::JsonSchema>::json_schema(&mut generator).to_value();
    let forms = step["anyOf"].as_array().unwrap();
    let mut keys: Vec<&str> = forms[1]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.pop(), Some("apply"));
    assert_eq!(keys, NAMES);
    let bare: Vec<&str> = NAMES.iter().copied().filter(|name| serde_yaml::from_str::<Step>(name).is_ok()).collect();
    assert_eq!(forms[0]["enum"], serde_json::json!(bare));
}
