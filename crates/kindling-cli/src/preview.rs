//! `kindling preview`: a PNG grid of what the model sees, per sample: the evaluation view,
//! then the training views of the first few epochs (augmentation drawn as training draws it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use kindling_core::{Dataset, Registry};
use kindling_vision::Image;

#[derive(Debug, Args)]
pub(crate) struct PreviewArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Overrides, applied as `run` would.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// The PNG to write (default: `<pipeline name>-preview.png` in the current folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training samples to show, one row each (spread over the classes).
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// Training epochs to show per sample, after the evaluation view.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
}

pub(crate) fn run(registry: &Registry, a: PreviewArgs) -> Result<ExitCode> {
    let plan = match kindling_pipeline::load(&a.pipeline, registry, &a.set) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let name = plan.name.clone();
    let data = kindling_pipeline::load_data(plan)?;
    let rows = views(&data, a.samples, a.epochs)?;
    let out = a.out.unwrap_or_else(|| PathBuf::from(format!("{name}-preview.png")));
    // Spectrograms (channel counts other than grey or RGB) are drawn low frequencies down.
    let spectrogram = !matches!(data.shape.first(), Some(1 | 3));
    kindling_vision::preview_grid(&rows, spectrogram, &out)?;
    println!(
        "{}: {} samples x (evaluation view + {} training epochs) -> {}",
        a.pipeline.display(),
        rows.len(),
        a.epochs,
        display(&out)
    );
    Ok(ExitCode::SUCCESS)
}

/// One row per chosen training sample: its evaluation view, then epochs 1..=`epochs`.
fn views(data: &Dataset, samples: usize, epochs: usize) -> Result<Vec<Vec<Image>>> {
    let [c, h, w] = match data.shape[..] {
        [c, h, w] => [c, h, w],
        _ => bail!("samples of shape {:?} cannot be drawn as images", data.shape),
    };
    let per = c * h * w;
    let mut rows = Vec::new();
    for i in spread(&data.train.y, data.classes.len(), samples) {
        let mut row = Vec::with_capacity(epochs + 1);
        for epoch in (0..=epochs).map(|e| (e > 0).then_some(e)) {
            let mut values = vec![0.0; per];
            match epoch {
                Some(e) => data.train.train_sample_into(i, e, &mut values),
                None => data.train.sample_into(i, &mut values),
            }
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("loading training sample {i}"))?;
            row.push(Image { channels: c, height: h, width: w, data: values });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Up to `n` sample indices, taking the classes in turn (the first unused sample of each).
fn spread(labels: &[u32], classes: usize, n: usize) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.max(1)];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(list) = by_class.get_mut(l as usize) {
            list.push(i);
        }
    }
    let mut out = Vec::new();
    for round in 0.. {
        let before = out.len();
        for list in &by_class {
            if out.len() == n {
                return out;
            }
            if let Some(&i) = list.get(round) {
                out.push(i);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_taken_from_the_classes_in_turn() {
        assert_eq!(spread(&[0, 0, 1, 1, 2], 3, 4), [0, 2, 4, 1]);
        assert_eq!(spread(&[0, 0], 2, 5), [0, 1]);
        assert_eq!(spread(&[], 2, 5), Vec::<usize>::new());
    }
}
