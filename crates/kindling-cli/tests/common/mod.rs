//! What the command's test binaries share: running the `kindling` binary from the repository
//! root, as a user would, and reading what it printed. Each test binary uses a part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root (where `pipelines/` and `data/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kindling ARGS` run from the repository root, to its end.
pub fn kindling(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kindling")).args(args).current_dir(root()).output().expect("the binary runs")
}

/// Printed bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Trains the quickstart for one epoch on the CPU on its first `train_limit` training and
/// `test_limit` test images, in the run directory `run`.
pub fn quickstart_run(run: &str, train_limit: usize, test_limit: usize) {
    let (train, test) =
        (format!("idx_dataset.train_limit={train_limit}"), format!("idx_dataset.test_limit={test_limit}"));
    let out = kindling(&[
        "run",
        "pipelines/quickstart.yaml",
        "--run-dir",
        run,
        "--set",
        "device=cpu",
        "--set",
        &train,
        "--set",
        &test,
        "--set",
        "train.epochs=1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Fashion-MNIST's ten class names, in label order.
pub const CLASSES: &str = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";

/// `kindling data image-folder` of the first `per_class` images of each class of a shipped
/// Fashion-MNIST IDX pair (`set`: `train` or `t10k`) into `out`, with `extra` options (`--rgb`,
/// `--classes ...`); returns what it printed.
pub fn image_folder(set: &str, out: &std::path::Path, per_class: usize, extra: &[&str]) -> String {
    let (out, per_class) = (out.to_str().expect("a UTF-8 path"), per_class.to_string());
    let images = format!("data/fashion-mnist/{set}-images-idx3-ubyte.gz");
    let labels = format!("data/fashion-mnist/{set}-labels-idx1-ubyte.gz");
    let mut args =
        vec!["data", "image-folder", "--images", &images, "--labels", &labels, "--out", out, "--per-class", &per_class];
    args.extend_from_slice(extra);
    let done = kindling(&args);
    assert!(done.status.success(), "{}", text(&done.stderr));
    text(&done.stdout)
}
