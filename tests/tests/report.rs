//! What a run leaves for people: curves.png with the early-stopping mark, confusion heat maps,
//! the gallery of mistakes, and report.html, opened in headless Chromium to check that every
//! figure renders.

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

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("KINDLING_REQUIRE_CHROMIUM").is_none(),
            "KINDLING_REQUIRE_CHROMIUM is set but no chromium is on PATH"
        );
        eprintln!("skipped the browser check: no chromium on PATH");
        return;
    };
    let url = format!("file://{}", dir.join("report.html").display());
    let dom = headless(&browser).args(["--virtual-time-budget=10000", "--dump-dom", &url]).output().unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("data-images-rendered=\"5/5\""),
        "Chromium did not render every figure: {}\n{}",
        dom_text.lines().find(|l| l.contains("<body")).unwrap_or("(no body)"),
        String::from_utf8_lossy(&dom.stderr)
    );
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
