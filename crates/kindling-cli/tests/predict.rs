//! `kindling predict` on many files: folders, manifests, output formats, failures, and the same
//! answers as the one-batch `Predictor::predict`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kindling_pipeline::Overrides;
use kindling_train::infer::Predictor;

mod common;
use common::{kindling, text};

/// One scratch directory for this test binary, with a 1-epoch quickstart run (`run/`) and an
/// exported folder of 3 grey PNGs per class (`images/<class>/`), made once.
fn fixture() -> &'static (PathBuf, PathBuf) {
    static FIXTURE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kindling-predict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        common::quickstart_run(run.to_str().unwrap(), 300, 100);
        let images = dir.join("images");
        common::image_folder("train", &images, 3, &[]);
        (run, images)
    })
}

/// A fresh folder under the fixture's scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = fixture().0.parent().unwrap().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every PNG below `dir`, sorted by path.
fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(pngs(&path));
        } else if path.extension().is_some_and(|e| e == "png") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `(path, [(class, probability)])` per line of tab-separated output.
fn parse_tsv(stdout: &str) -> Vec<(String, Vec<(String, f32)>)> {
    stdout
        .lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let path = fields.next().unwrap().to_owned();
            let scores = fields
                .map(|f| {
                    let (class, p) = f.rsplit_once(' ').unwrap();
                    (class.to_owned(), p.parse().unwrap())
                })
                .collect();
            (path, scores)
        })
        .collect()
}

/// `(path, [(class, probability)])` per object of `--format json`.
fn parse_json(stdout: &str) -> Vec<(String, Vec<(String, f32)>)> {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let scores = o["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["class"].as_str().unwrap().to_owned(), s["probability"].as_f64().unwrap() as f32))
                .collect();
            (o["path"].as_str().unwrap().to_owned(), scores)
        })
        .collect()
}

#[test]
fn folders_are_searched_recursively_and_batches_match_one_batch_prediction() {
    let (run, images) = fixture();
    // A nested folder, with a file of another kind and a hidden one that are not inputs.
    let dir = scratch("nested");
    for (i, png) in pngs(images).iter().take(12).enumerate() {
        let sub = dir.join(format!("a{}", i % 3)).join(if i % 2 == 0 { "deep" } else { "" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(png, sub.join(format!("{i:02}.PNG"))).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    std::fs::copy(pngs(images).first().unwrap(), dir.join(".hidden.png")).unwrap();
    let mut expected: Vec<PathBuf> = Vec::new();
    for entry in walkdir(&dir) {
        if entry.extension().is_some_and(|e| e == "PNG") {
            expected.push(entry);
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 12);

    let out = kindling(&["predict", run.to_str().unwrap(), dir.to_str().unwrap(), "--batch-size", "5", "--top", "10"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = kindling(&[
        "predict",
        run.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--batch-size",
        "5",
        "--top",
        "10",
        "--format",
        "json",
    ]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let tsv = parse_tsv(&text(&out.stdout));
    let json = parse_json(&text(&json.stdout));
    let paths: Vec<PathBuf> = tsv.iter().map(|(p, _)| PathBuf::from(p)).collect();
    assert_eq!(paths, expected);

    // The one-batch library path on the same files, and file by file: the same classes in the
    // same order with the same probabilities.
    let registry = kindling_core::Registry::new(kindling_cli::default_plugins()).unwrap();
    let artifacts = kindling_pipeline::reopen(run, &registry, &Overrides::default()).unwrap();
    let predictor = Predictor::from_artifacts(artifacts, run).unwrap();
    let whole = predictor.predict(&expected).unwrap();
    for (i, (p, (path, scores))) in whole.iter().zip(&json).enumerate() {
        assert_eq!(p.file, PathBuf::from(path));
        let single = &predictor.predict(std::slice::from_ref(&expected[i])).unwrap()[0];
        for (k, (class, prob)) in scores.iter().enumerate() {
            assert_eq!(&p.scores[k].class, class, "{path}");
            assert!((p.scores[k].probability - prob).abs() < 1e-6, "{path}: {} vs {prob}", p.scores[k].probability);
            assert!((single.scores[k].probability - prob).abs() < 1e-6, "{path}");
            let printed = tsv[i].1[k].1;
            assert!((printed - prob).abs() <= 0.0005 + 1e-6, "{path}: tsv {printed} vs json {prob}");
        }
    }
    // The library's batched path reports the same predictions.
    let batched: Vec<_> = predictor.predict_batches(&expected, 4).unwrap().flatten().map(Result::unwrap).collect();
    assert_eq!(batched.len(), whole.len());
    for (a, b) in batched.iter().zip(&whole) {
        assert_eq!(a.file, b.file);
        for (x, y) in a.scores.iter().zip(&b.scores) {
            assert_eq!(x.class, y.class);
            assert!((x.probability - y.probability).abs() < 1e-6);
        }
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn csv_manifests_list_files_relative_to_themselves_in_their_order() {
    let (run, images) = fixture();
    let dir = scratch("manifest");
    let all = pngs(images);
    let picked = [&all[7], &all[2], &all[20]];
    let mut labelled = String::from("label,path\n");
    let mut bare = String::from("path\n");
    for (i, p) in picked.iter().enumerate() {
        let name = format!("img, {i}.png");
        std::fs::copy(p, dir.join(&name)).unwrap();
        labelled.push_str(&format!("x,\"{name}\"\n"));
        bare.push_str(&format!("\"{name}\"\n"));
    }
    std::fs::write(dir.join("labelled.csv"), labelled).unwrap();
    std::fs::write(dir.join("bare.csv"), bare).unwrap();
    for csv in ["labelled.csv", "bare.csv"] {
        let out = kindling(&["predict", run.to_str().unwrap(), dir.join(csv).to_str().unwrap(), "--format", "csv"]);
        assert!(out.status.success(), "{csv}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], "path,class_1,probability_1,class_2,probability_2,class_3,probability_3");
        assert_eq!(lines.len(), 4, "{stdout}");
        for (i, line) in lines[1..].iter().enumerate() {
            let expected = format!("\"{}\",", dir.join(format!("img, {i}.png")).display());
            assert!(line.starts_with(&expected), "{line}");
        }
    }
    // A manifest without a `path` column is a bad argument.
    std::fs::write(dir.join("wrong.csv"), "file,label\na.png,x\n").unwrap();
    let out = kindling(&["predict", run.to_str().unwrap(), dir.join("wrong.csv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("wrong.csv:1: the header must name a `path` column"), "{}", text(&out.stderr));
}

#[test]
fn an_unreadable_file_is_reported_and_the_others_are_still_predicted() {
    let (run, images) = fixture();
    let dir = scratch("corrupt");
    let good = pngs(images);
    for p in good.iter().take(4) {
        std::fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("0000-corrupt.png"), b"not a png at all").unwrap();
    let output = dir.join("out.csv");
    let out = kindling(&[
        "predict",
        run.to_str().unwrap(),
        dir.to_str().unwrap(),
        "/nonexistent/missing.png",
        "--format",
        "csv",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}: cannot be decoded", dir.join("0000-corrupt.png").display())), "{stderr}");
    assert!(stderr.contains("/nonexistent/missing.png: "), "{stderr}");
    assert!(stderr.contains("2 of 6 file(s) could not be read"), "{stderr}");
    assert!(text(&out.stdout).is_empty());
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written.lines().count(), 1 + 4, "{written}");
    assert!(!written.contains("0000-corrupt") && !written.contains("missing.png"), "{written}");
}

#[test]
fn json_and_csv_say_what_tsv_says_and_output_goes_to_a_file() {
    let (run, images) = fixture();
    let (run, images) = (run.to_str().unwrap(), images.to_str().unwrap());
    let tsv = kindling(&["predict", run, images, "--top", "4"]);
    assert!(tsv.status.success(), "{}", text(&tsv.stderr));
    let tsv = parse_tsv(&text(&tsv.stdout));
    assert_eq!(tsv.len(), 30);

    let dir = scratch("formats");
    let json_file = dir.join("p.json");
    let out = kindling(&["predict", run, images, "--top", "4", "--format", "json", "-o", json_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "--output leaves stdout empty");
    let json = parse_json(&std::fs::read_to_string(&json_file).unwrap());

    let csv = kindling(&["predict", run, images, "--top", "4", "--format", "csv", "--batch-size", "7"]);
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    let csv: Vec<(String, Vec<(String, f32)>)> = text(&csv.stdout)
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 1 + 2 * 4, "{line}");
            let scores = f[1..].chunks(2).map(|c| (c[0].to_owned(), c[1].parse().unwrap())).collect();
            (f[0].to_owned(), scores)
        })
        .collect();

    assert_eq!(json.len(), tsv.len());
    assert_eq!(csv.len(), tsv.len());
    for ((t, j), c) in tsv.iter().zip(&json).zip(&csv) {
        assert_eq!((&t.0, &t.0), (&j.0, &c.0));
        assert_eq!(j.1.len(), 4);
        for ((tc, tp), ((jc, jp), (cc, cp))) in t.1.iter().zip(j.1.iter().zip(&c.1)) {
            assert_eq!((tc, tc), (jc, cc));
            assert_eq!(jp, cp, "json and csv print the same f32");
            assert!((tp - jp).abs() <= 0.0005 + 1e-6, "{tp} vs {jp}");
        }
    }
    // An empty folder lists nothing: a bad argument.
    let empty = scratch("empty");
    let out = kindling(&["predict", run, empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = kindling(&["predict", run, images, "--batch-size", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
