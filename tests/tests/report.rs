//! What a run leaves for people: curves.png with the early-stopping mark, confusion heat maps,
//! the gallery of mistakes, and report.html, opened in headless Chromium to check that every
//! figure renders; and a sweep's report.html, checked the same way for its curves' axis ticks
//! and its confusion grids' class names.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A short quickstart with early stopping, so the curves carry the kept-epoch mark.
fn short_run(root: &Path) -> PathBuf {
    let set: Vec<String> = [
        "device=cpu",
        "idx_dataset.train_limit=640",
        "idx_dataset.test_limit=200",
        "idx_dataset.valid_fraction=0.2",
        "train.epochs=3",
        "train.batch_size=32",
        "train.early_stopping={monitor: valid_loss, patience: 5}",
    ]
    .map(String::from)
    .to_vec();
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let plan = kindling_pipeline::load(&file, &tests::registry(), &set).unwrap_or_else(|e| panic!("{e}"));
    kindling_pipeline::run(plan, root).unwrap_or_else(|e| panic!("{e}")).run_dir
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// The first browser of the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Headless Chromium with the flags a container needs.
fn headless(browser: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]);
    cmd
}

/// The browser on PATH; `None` (the check skipped) unless `KINDLING_REQUIRE_CHROMIUM` is set.
fn browser_or_skip() -> Option<PathBuf> {
    let browser = chromium();
    if browser.is_none() {
        assert!(
            std::env::var_os("KINDLING_REQUIRE_CHROMIUM").is_none(),
            "KINDLING_REQUIRE_CHROMIUM is set but no chromium is on PATH"
        );
        eprintln!("skipped the browser check: no chromium on PATH");
    }
    browser
}

/// The page at `path` as Chromium laid it out (its scripts run).
fn rendered_dom(browser: &Path, path: &Path) -> String {
    let url = format!("file://{}", path.display());
    let dom = headless(browser).args(["--virtual-time-budget=10000", "--dump-dom", &url]).output().unwrap();
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// `shown/total` of the `body` attribute `name` that the page's script sets.
fn rendered(dom: &str, name: &str) -> (usize, usize) {
    let at = dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} on <body>: the script did not run"));
    let value = dom[at + name.len() + 2..].split('"').next().unwrap_or_default();
    let (shown, total) = value.split_once('/').unwrap_or_else(|| panic!("{name}={value:?}"));
    (shown.parse().unwrap(), total.parse().unwrap())
}

#[test]
fn a_run_leaves_figures_and_a_report_that_renders() {
    let root = tests::scratch("report");
    let dir = short_run(&root);

    let curves = decode(&dir.join("curves.png"));
    assert_eq!(curves.dimensions(), (900, 980));
    // The kept epoch is marked in red (214, 39, 40).
    let marked = curves.pixels().filter(|p| p.0 == [214, 39, 40]).count();
    assert!(marked > 300, "no early-stopping mark on curves.png ({marked} px)");
    for split in ["train", "valid", "test"] {
        let cm = decode(&dir.join(format!("confusion_{split}.png")));
        assert!(cm.width() > 500 && cm.height() > 500, "{split}: {:?}", cm.dimensions());
    }
    let gallery = decode(&dir.join("misclassified.png"));
    assert!(gallery.width() >= 6 * 184, "a full row of mistakes: {:?}", gallery.dimensions());

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 5, "curves, 3 confusions, mistakes");
    for needle in
        ["Per class (test", "Ankle boot", "Most confident mistakes on test", "Configuration", "train_limit: 640"]
    {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }

    let Some(browser) = browser_or_skip() else {
        std::fs::remove_dir_all(&root).unwrap();
        return;
    };
    let url = format!("file://{}", dir.join("report.html").display());
    let dom_text = rendered_dom(&browser, &dir.join("report.html"));
    assert_eq!(rendered(&dom_text, "data-images-rendered"), (5, 5), "Chromium did not render every figure");
    // A screenshot to look at, and to check that the heat maps' dark cells reached the screen.
    let shot = root.join("report.png");
    let status = headless(&browser)
        .args(["--window-size=1100,3000", &format!("--screenshot={}", shot.display()), &url])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let screen = decode(&shot);
    let navy = screen.pixels().filter(|p| p.0[2] > 60 && p.0[0] < 40 && p.0[1] < 60).count();
    assert!(navy > 2000, "the confusion heat map is not on the screenshot ({navy} px)");
    let keep = tests::repo_root().join("target/report-screenshot.png");
    let _ = std::fs::copy(&shot, keep);
    std::fs::remove_dir_all(&root).unwrap();
}

/// A tiny sweep (2 learning rates x 2 seeds, one short epoch each), its trials run in-process
/// the way `kindling sweep` runs them in child processes, and its report.html.
fn short_sweep(root: &Path) -> PathBuf {
    use kindling_sweep::{Status, Store, TrialResult};
    let registry = tests::registry();
    let file = tests::repo_root().join("tests/sweeps/tiny.yaml");
    let set = [
        "idx_dataset.train_limit=500",
        "idx_dataset.classes=[T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]",
        "train.epochs=2",
    ]
    .map(String::from);
    let prepared = kindling_sweep::prepare(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    let dir = root.join("sweep");
    let store = Store::create(&dir, &prepared.manifest, &prepared.configs).unwrap_or_else(|e| panic!("{e}"));
    for t in &prepared.manifest.trials {
        let claim = store.try_claim(&t.id, None).unwrap().expect("a fresh trial");
        let plan = kindling_pipeline::load(&store.trial_dir(&t.id).join("config.yaml"), &registry, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        kindling_pipeline::run_in(plan, &store.run_dir(&t.id)).unwrap_or_else(|e| panic!("{e}"));
        let (metric, epochs) = kindling_sweep::read_metrics(&store.run_dir(&t.id), &prepared.manifest.spec.metric)
            .unwrap_or_else(|e| panic!("{e}"));
        let result = TrialResult {
            status: Status::Done,
            metric: Some(metric),
            epochs,
            seconds: 1.0,
            attempt: claim.attempt(),
            host: "test".into(),
            error: None,
        };
        assert!(claim.finish(result).unwrap());
    }
    kindling_sweep::report::write(&dir, &kindling_sweep::report::ReportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .html
}

#[test]
fn a_sweep_report_shows_curves_with_ticks_and_confusion_grids_with_class_names() {
    let root = tests::scratch("sweep-report");
    let report = short_sweep(&root);
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<polyline").count(), 8, "an accuracy and a loss curve per trial");
    for needle in [
        "<h2>Validation accuracy by epoch</h2>",
        "<h2>Validation loss by epoch</h2>",
        "<h2>Validation confusion matrices by lr</h2>",
        "<th class=\"class predicted\">Ankle boot</th>",
        "<th class=\"class\">T-shirt/top</th>",
        ">epoch</text>",
    ] {
        assert!(html.contains(needle), "the sweep's report.html lacks {needle:?}");
    }

    let Some(browser) = browser_or_skip() else {
        std::fs::remove_dir_all(&root).unwrap();
        return;
    };
    let dom = rendered_dom(&browser, &report);
    // Both epochs and several values are labelled on the axes, and laid out with a size.
    let (ticks, tick_total) = rendered(&dom, "data-ticks-rendered");
    assert!(ticks >= 5 && ticks == tick_total, "axis ticks rendered: {ticks}/{tick_total}");
    // One matrix per learning rate, ten class names down and ten across each.
    assert_eq!(rendered(&dom, "data-class-names-rendered"), (40, 40), "class names of the confusion grid");
    let shot = root.join("sweep-report.png");
    let status = headless(&browser)
        .args([
            "--window-size=1100,3000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", report.display()),
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let screen = decode(&shot);
    // The first trial's curve in the palette's first colour, and the matrices' dark diagonals.
    let near = |p: &image::Rgb<u8>, c: [u8; 3]| p.0.iter().zip(c).all(|(&a, b)| a.abs_diff(b) < 12);
    let curve = screen.pixels().filter(|p| near(p, [0x1f, 0x77, 0xb4])).count();
    assert!(curve > 100, "the curves are not on the screenshot ({curve} px)");
    let navy = screen.pixels().filter(|p| p.0[2] > 60 && p.0[0] < 40 && p.0[1] < 60).count();
    assert!(navy > 1000, "the confusion grid is not on the screenshot ({navy} px)");
    let _ = std::fs::copy(&shot, tests::repo_root().join("target/sweep-report-screenshot.png"));
    std::fs::remove_dir_all(&root).unwrap();
}
