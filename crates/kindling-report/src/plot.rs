//! The PNG figures of a run: learning curves, confusion heat maps and a gallery of mistakes;
//! and the learning-rate range test's plot.
//! Each is drawn with plotters into an RGB buffer (text through [`BitmapText`]) and encoded as
//! PNG bytes; nothing here touches the file system.
//!
//! (Over 450 lines: the four PNG figures share their axes, palette and text drawing; 115 of its
//! lines are its tests.)

use std::fmt::Display;

use kindling_metrics::ConfusionMatrix;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::text::{BitmapText, CELL, text_size};

/// A figure could not be drawn or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawError(pub String);

impl Display for DrawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DrawError {}

fn drawn<T, E: Display>(r: Result<T, E>) -> Result<T, DrawError> {
    r.map_err(|e| DrawError(format!("drawing failed: {e}")))
}

type Area<'a> = DrawingArea<BitmapText<BitMapBackend<'a>>, Shift>;

/// Draws with `draw` on a white `width` x `height` canvas and returns the PNG bytes.
fn canvas(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), DrawError>,
) -> Result<Vec<u8>, DrawError> {
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitmapText(BitMapBackend::with_buffer(&mut rgb, (width, height))).into_drawing_area();
        draw(&root)?;
        drawn(root.present())?;
    }
    encode_png(&rgb, width, height)
}

/// PNG bytes of an 8-bit RGB image, row-major.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DrawError> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(encoder, rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| DrawError(format!("cannot encode PNG: {e}")))?;
    Ok(out)
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", f64::from(size)).into_font()).color(&BLACK)
}

/// At most `max` characters of `s`, ending in `~` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max.saturating_sub(1)).chain(std::iter::once('~')).collect()
    }
}

/// White through blue to a dark navy as `t` goes from 0 to 1.
pub fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (from, to) =
        if t < 0.5 { ([247.0, 251.0, 255.0], [66.0, 146.0, 198.0]) } else { ([66.0, 146.0, 198.0], [8.0, 36.0, 90.0]) };
    let u = if t < 0.5 { t * 2.0 } else { (t - 0.5) * 2.0 };
    let c = |i: usize| (from[i] + (to[i] - from[i]) * u).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// A confusion matrix as a heat map: rows are true classes, columns predictions, each cell
/// shaded by its share of the row (so rare classes read as clearly as common ones) and
/// labelled with its count. Titled `title`, with the accuracy beside it.
pub fn confusion_png(cm: &ConfusionMatrix, classes: &[String], title: &str) -> Result<Vec<u8>, DrawError> {
    let n = cm.classes();
    let names: Vec<String> = (0..n).map(|i| clip(classes.get(i).map_or("?", String::as_str), 14)).collect();
    let label = if n > 24 { 8 } else { 16 };
    let longest = names.iter().map(|s| text_size(s, f64::from(label)).0).max().unwrap_or(0) as i32;
    let cell = (560 / n.max(1) as i32).clamp(14, 64);
    let grid = cell * n as i32;
    let (left, top) = (longest + 40, 48);
    let width = (left + grid + 24).max(360) as u32;
    let height = (top + grid + longest + 40) as u32;
    let title = format!("{title}: accuracy {:.2}%", cm.accuracy() * 100.0);
    canvas(width, height, |root| {
        drawn(root.draw_text(&title, &font(16), (12, 12)))?;
        for t in 0..n {
            let total: u64 = (0..n).map(|p| cm.count(t, p)).sum();
            for p in 0..n {
                let count = cm.count(t, p);
                let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
                let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
                drawn(root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], blues(share).filled())))?;
                let text = count.to_string();
                let size = [16, 8].into_iter().find(|&s| text_size(&text, f64::from(s)).0 as i32 <= cell - 4);
                if let Some(size) = size {
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    let style = font(size).color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                    drawn(root.draw_text(&text, &style, (x + cell / 2, y + cell / 2)))?;
                }
            }
        }
        drawn(root.draw(&Rectangle::new([(left, top), (left + grid, top + grid)], BLACK)))?;
        let row_style = font(label).pos(Pos::new(HPos::Right, VPos::Center));
        // Column names run downwards under their column.
        let col_style = font(label).pos(Pos::new(HPos::Left, VPos::Center)).transform(FontTransform::Rotate90);
        for (i, name) in names.iter().enumerate() {
            let mid = i as i32 * cell + cell / 2;
            drawn(root.draw_text(name, &row_style, (left - 6, top + mid)))?;
            drawn(root.draw_text(name, &col_style, (left + mid, top + grid + 6)))?;
        }
        let side = font(16).pos(Pos::new(HPos::Center, VPos::Center)).transform(FontTransform::Rotate270);
        drawn(root.draw_text("true class", &side, (12, top + grid / 2)))?;
        let under = font(16).pos(Pos::new(HPos::Center, VPos::Bottom));
        drawn(root.draw_text("predicted class", &under, (left + grid / 2, height as i32 - 6)))
    })
}

/// One epoch's figures, as history.csv has them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch, 0..1.
    pub train_accuracy: f64,
    /// Validation loss after the epoch, when there is a validation split.
    pub valid_loss: Option<f64>,
    /// Validation accuracy after the epoch, 0..1.
    pub valid_accuracy: Option<f64>,
    /// Learning rate used during the epoch.
    pub lr: f64,
}

/// Padded bounds of the finite values in `v` (5% around a constant, a unit around zero).
fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        v.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else if lo == 0.0 {
        1.0
    } else {
        lo.abs() * 0.05
    };
    (lo - pad, hi + pad)
}

/// A number to 4 significant digits without trailing zeros, in exponent form outside
/// 1e-4..1e5.
pub(crate) fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    if !(1e-4..1e5).contains(&v.abs()) {
        return format!("{v:.2e}").replace(".00e", "e").replace("0e", "e");
    }
    let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALID: RGBColor = RGBColor(255, 127, 14);
const MARK: RGBColor = RGBColor(214, 39, 40);

/// A named, coloured line of (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

struct Panel<'a> {
    title: &'a str,
    /// The x axis: whole numbers from 1 (epochs, trials).
    x_desc: &'a str,
    y_desc: &'a str,
    series: Vec<Series<'a>>,
    y_format: fn(&f64) -> String,
}

/// Draws one panel of the curves figure, with the kept epoch marked by a dashed line.
fn panel(area: &Area<'_>, epochs: usize, p: &Panel<'_>, mark: Option<(usize, &str)>) -> Result<(), DrawError> {
    let (y0, y1) = bounds(p.series.iter().flat_map(|s| s.2.iter().map(|q| q.1)));
    let mut chart = drawn(
        ChartBuilder::on(area)
            .caption(p.title, font(16))
            .margin(8)
            .x_label_area_size(44)
            .y_label_area_size(100)
            .build_cartesian_2d(0.5..epochs as f64 + 0.5, y0..y1),
    )?;
    drawn(
        chart
            .configure_mesh()
            .x_desc(p.x_desc)
            .y_desc(p.y_desc)
            .axis_desc_style(font(16))
            .label_style(font(12))
            .x_labels(epochs.min(10))
            .y_labels(5)
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_label_formatter(&p.y_format)
            .light_line_style(RGBColor(235, 235, 235))
            .draw(),
    )?;
    for (_, color, points) in &p.series {
        let color = *color;
        drawn(chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))))?;
        if points.len() <= 60 {
            drawn(chart.draw_series(points.iter().map(|&q| Circle::new(q, 3, color.filled()))))?;
        }
    }
    if let Some((epoch, label)) = mark {
        let x = epoch as f64;
        let steps = 24;
        let dashes = (0..steps).step_by(2).map(|i| {
            let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
            PathElement::new(vec![(x, y0 + (y1 - y0) * a), (x, y0 + (y1 - y0) * b)], MARK.stroke_width(2))
        });
        drawn(chart.draw_series(dashes))?;
        if !label.is_empty() {
            let right = epoch * 2 > epochs;
            let anchor = Pos::new(if right { HPos::Right } else { HPos::Left }, VPos::Top);
            let (at, shift) = chart.backend_coord(&(x, y1));
            let style = font(16).color(&MARK).pos(anchor);
            let dx = if right { -6 } else { 6 };
            drawn(area.draw_text(
                label,
                &style,
                (at + dx - area.get_base_pixel().0, shift + 4 - area.get_base_pixel().1),
            ))?;
        }
    }
    // The legend sits in the caption band at the top right, where no curve can be.
    if p.series.len() > 1 {
        let mut x = area.dim_in_pixel().0 as i32 - 8;
        for (name, color, _) in p.series.iter().rev() {
            x -= text_size(name, 12.0).0 as i32;
            drawn(area.draw_text(name, &font(12), (x, 6)))?;
            x -= 28;
            drawn(area.draw(&PathElement::new(vec![(x, 12), (x + 22, 12)], color.stroke_width(3))))?;
            x -= 16;
        }
    }
    Ok(())
}

/// curves.png: loss and accuracy of train and valid per epoch, the learning rate on its own
/// axis below, and `kept` (the epoch whose weights the run kept, with a label such as "best
/// epoch 7, restored") marked by a dashed line on every panel.
pub fn curves_png(points: &[EpochPoint], kept: Option<(usize, &str)>) -> Result<Vec<u8>, DrawError> {
    if points.is_empty() {
        return Err(DrawError("no epochs to plot".into()));
    }
    let epochs = points.iter().map(|p| p.epoch).max().unwrap_or(1);
    let series = |train: fn(&EpochPoint) -> f64, valid: fn(&EpochPoint) -> Option<f64>| {
        let mut s = vec![("train", TRAIN, points.iter().map(|p| (p.epoch as f64, train(p))).collect::<Vec<_>>())];
        let v: Vec<_> = points.iter().filter_map(|p| Some((p.epoch as f64, valid(p)?))).collect();
        if !v.is_empty() {
            s.push(("valid", VALID, v));
        }
        s
    };
    let loss = Panel {
        title: "Loss",
        x_desc: "epoch",
        y_desc: "cross-entropy",
        series: series(|p| p.train_loss, |p| p.valid_loss),
        y_format: |v| tick(*v),
    };
    let accuracy = Panel {
        title: "Accuracy",
        x_desc: "epoch",
        y_desc: "accuracy (%)",
        series: series(|p| p.train_accuracy * 100.0, |p| p.valid_accuracy.map(|a| a * 100.0)),
        y_format: |v| format!("{v:.1}"),
    };
    // A schedule spanning more than a decade is drawn on a log axis (log10 values, labelled as lr).
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.lr), b.max(p.lr)));
    let log = lo > 0.0 && hi / lo > 10.0;
    let lr = Panel {
        title: "Learning rate",
        x_desc: "epoch",
        y_desc: if log { "lr (log)" } else { "lr" },
        series: vec![(
            "lr",
            RGBColor(44, 160, 44),
            points
                .iter()
                .map(|p| (p.epoch as f64, if log { p.lr.max(f64::MIN_POSITIVE).log10() } else { p.lr }))
                .collect(),
        )],
        y_format: if log { |v| tick(10f64.powf(*v)) } else { |v| tick(*v) },
    };
    canvas(900, 980, |root| {
        drawn(root.fill(&WHITE))?;
        let (top, rest) = root.split_vertically(400);
        let (middle, bottom) = rest.split_vertically(340);
        panel(&top, epochs, &loss, kept)?;
        panel(&middle, epochs, &accuracy, kept.map(|(e, _)| (e, "")))?;
        panel(&bottom, epochs, &lr, kept.map(|(e, _)| (e, "")))
    })
}

/// Lines of values against 1, 2, ... (`x_desc`: trials, epochs), each named in a legend at the
/// top right: a benchmark's best-so-far curves, say.
pub fn lines_png(title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<f64>)]) -> Result<Vec<u8>, DrawError> {
    const COLOURS: [RGBColor; 4] = [TRAIN, VALID, RGBColor(44, 160, 44), MARK];
    let n = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    if n == 0 {
        return Err(DrawError("no values to plot".into()));
    }
    let panel_series = series
        .iter()
        .enumerate()
        .map(|(i, (name, values))| {
            let points = values.iter().enumerate().map(|(x, &y)| ((x + 1) as f64, y)).collect();
            (name.as_str(), COLOURS[i % COLOURS.len()], points)
        })
        .collect();
    let p = Panel { title, x_desc, y_desc, series: panel_series, y_format: |v| tick(*v) };
    canvas(900, 420, |root| {
        drawn(root.fill(&WHITE))?;
        panel(root, n, &p, None)
    })
}

/// lr-find.png: the learning-rate range test's loss (each batch, light) and smoothed loss
/// (dark) against the rate on a log axis, with the suggested rate marked by a dashed line.
pub fn lr_find_png(points: &[(f64, f64, f64)], suggestion: Option<f64>) -> Result<Vec<u8>, DrawError> {
    let points: Vec<(f64, f64, f64)> =
        points.iter().copied().filter(|p| p.0 > 0.0 && p.1.is_finite() && p.2.is_finite()).collect();
    if points.len() < 2 {
        return Err(DrawError("fewer than two steps to plot".into()));
    }
    let x0 = points[0].0.log10();
    let x1 = points[points.len() - 1].0.log10().max(x0 + 1e-9);
    // The smoothed curve sets the scale, up to a little above where it started: the
    // divergence at the end and batch losses far above it are clipped at the top.
    let first = points[0].2;
    let (y0, y1) = bounds(points.iter().flat_map(|p| [p.1, p.2]).map(|v| v.min(first * 1.3)));
    canvas(900, 520, |root| {
        drawn(root.fill(&WHITE))?;
        let mut chart = drawn(
            ChartBuilder::on(root)
                .caption("Learning-rate range test", font(16))
                .margin(8)
                .x_label_area_size(44)
                .y_label_area_size(100)
                .build_cartesian_2d(x0..x1, y0..y1),
        )?;
        drawn(
            chart
                .configure_mesh()
                .x_desc("learning rate (log)")
                .y_desc("training loss")
                .axis_desc_style(font(16))
                .label_style(font(12))
                .x_labels(8)
                .y_labels(5)
                .x_label_formatter(&|x| tick(10f64.powf(*x)))
                .y_label_formatter(&|y| tick(*y))
                .light_line_style(RGBColor(235, 235, 235))
                .draw(),
        )?;
        let clip = |y: f64| y.clamp(y0, y1);
        let raw = points.iter().map(|p| (p.0.log10(), clip(p.1)));
        drawn(chart.draw_series(LineSeries::new(raw, RGBColor(174, 199, 232).stroke_width(1))))?;
        let smooth = points.iter().map(|p| (p.0.log10(), clip(p.2)));
        drawn(chart.draw_series(LineSeries::new(smooth, TRAIN.stroke_width(2))))?;
        if let Some(lr) = suggestion.filter(|lr| *lr > 0.0) {
            let x = lr.log10();
            let steps = 24;
            let dashes = (0..steps).step_by(2).map(|i| {
                let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
                PathElement::new(vec![(x, y0 + (y1 - y0) * a), (x, y0 + (y1 - y0) * b)], MARK.stroke_width(2))
            });
            drawn(chart.draw_series(dashes))?;
            // The label sits on the side of the line with more room.
            let right = x > (x0 + x1) / 2.0;
            let (at, top) = chart.backend_coord(&(x, y1));
            let style = font(16).color(&MARK).pos(Pos::new(if right { HPos::Right } else { HPos::Left }, VPos::Top));
            let dx = if right { -6 } else { 6 };
            drawn(root.draw_text(&format!("suggested lr {}", tick(lr)), &style, (at + dx, top + 4)))?;
        }
        Ok(())
    })
}

/// A sample drawn as a picture: `channels` planes of `height` x `width` values, any range.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Number of planes.
    pub channels: usize,
    /// Rows per plane.
    pub height: usize,
    /// Columns per plane.
    pub width: usize,
    /// The planes, row-major, one after the other.
    pub values: Vec<f32>,
}

impl Thumbnail {
    /// RGB pixels scaled to fit `w` x `h` (nearest neighbour, aspect kept) and the size used.
    /// One or three planes are drawn as grey or colour images, stretched to the full range
    /// (the sample may be normalised); any other count is a spectrogram-like input, and its
    /// first plane is drawn in a colour map with row 0 at the bottom (low frequencies low).
    pub fn to_rgb(&self, w: usize, h: usize) -> (Vec<u8>, usize, usize) {
        let plane = self.height * self.width;
        let image = self.channels == 1 || self.channels == 3;
        let used = if image { self.channels } else { 1 };
        let values = &self.values[..(used * plane).min(self.values.len())];
        let (lo, hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let range = if hi > lo { hi - lo } else { 1.0 };
        let unit = |v: f32| if v.is_finite() { ((v - lo) / range).clamp(0.0, 1.0) } else { 0.0 };
        let k = (w as f64 / self.width.max(1) as f64).min(h as f64 / self.height.max(1) as f64);
        let (tw, th) = (((self.width as f64 * k) as usize).max(1), ((self.height as f64 * k) as usize).max(1));
        let mut rgb = Vec::with_capacity(tw * th * 3);
        for y in 0..th {
            let sy = ((y as f64 / k) as usize).min(self.height.saturating_sub(1));
            let sy = if image { sy } else { self.height - 1 - sy };
            for x in 0..tw {
                let sx = ((x as f64 / k) as usize).min(self.width.saturating_sub(1));
                let at = |c: usize| values.get(c * plane + sy * self.width + sx).copied().map_or(0.0, unit);
                match (image, self.channels) {
                    (true, 3) => rgb.extend((0..3).map(|c| (at(c) * 255.0).round() as u8)),
                    (true, _) => rgb.extend([(at(0) * 255.0).round() as u8; 3]),
                    (false, _) => {
                        let RGBColor(r, g, b) = heat(f64::from(at(0)));
                        rgb.extend([r, g, b]);
                    }
                }
            }
        }
        (rgb, tw, th)
    }
}

/// Dark purple through red to pale yellow, a perceptually ordered map for spectrograms.
pub fn heat(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [87.0, 16.0, 110.0]),
        (0.5, [188.0, 55.0, 84.0]),
        (0.75, [249.0, 142.0, 9.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|s| s.0 <= t).unwrap_or(0).min(STOPS.len() - 2);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let u = (t - a.0) / (b.0 - a.0);
    let c = |k: usize| (a.1[k] + (b.1[k] - a.1[k]) * u).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// One picture of a gallery with its caption lines.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryItem {
    /// The sample.
    pub thumbnail: Thumbnail,
    /// Lines under it (the true and predicted class, say).
    pub caption: Vec<String>,
}

/// A grid of pictures with captions under a title (misclassified.png). An empty gallery is a
/// picture that says so.
pub fn gallery_png(title: &str, items: &[GalleryItem]) -> Result<Vec<u8>, DrawError> {
    let cols = items.len().clamp(1, 6);
    let rows = items.len().div_ceil(cols).max(1);
    let (box_w, box_h) = (168usize, 120usize);
    let caption_lines = items.iter().map(|i| i.caption.len()).max().unwrap_or(0);
    let cell_w = box_w + 16;
    let cell_h = box_h + 8 + caption_lines * (CELL as usize + 4) + 12;
    let width = (cols * cell_w + 16).max(420).max(text_size(title, 16.0).0 as usize + 16) as u32;
    let height = (40 + rows * cell_h + 8) as u32;
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    let mut origins = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (px, tw, th) = item.thumbnail.to_rgb(box_w, box_h);
        let x0 = 8 + (i % cols) * cell_w + (cell_w - tw) / 2;
        let y0 = 40 + (i / cols) * cell_h + (box_h - th);
        for y in 0..th {
            let from = y * tw * 3;
            let to = ((y0 + y) * width as usize + x0) * 3;
            rgb[to..to + tw * 3].copy_from_slice(&px[from..from + tw * 3]);
        }
        origins.push((8 + (i % cols) * cell_w, 40 + (i / cols) * cell_h + box_h + 6));
    }
    {
        let root = BitmapText(BitMapBackend::with_buffer(&mut rgb, (width, height))).into_drawing_area();
        drawn(root.draw_text(title, &font(16), (8, 12)))?;
        if items.is_empty() {
            drawn(root.draw_text("no misclassified samples", &font(16), (8, 48)))?;
        }
        let style = font(8).pos(Pos::new(HPos::Center, VPos::Top));
        for (item, &(x, y)) in items.iter().zip(&origins) {
            for (l, line) in item.caption.iter().enumerate() {
                let text = clip(line, cell_w / CELL as usize - 1);
                drawn(root.draw_text(&text, &style, ((x + cell_w / 2) as i32, (y + l * (CELL as usize + 4)) as i32)))?;
            }
        }
        drawn(root.present())?;
    }
    encode_png(&rgb, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(c: RGBColor) -> image::Rgb<u8> {
        image::Rgb([c.0, c.1, c.2])
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).expect("a PNG").to_rgb8()
    }

    #[test]
    fn confusion_cells_are_shaded_by_row_share() {
        let cm = ConfusionMatrix::from_predictions(3, &[0, 0, 0, 0, 1, 1, 2], &[0, 0, 0, 1, 1, 1, 0]);
        let names: Vec<String> = ["cat", "dog", "bird"].iter().map(|s| s.to_string()).collect();
        let img = decode(&confusion_png(&cm, &names, "valid").unwrap());
        // Layout as drawn: cells of 64 px from (longest name + 40, 48).
        let left = 4 * 8 * 2 + 40;
        let corner = |t: u32, p: u32| *img.get_pixel(left + p * 64 + 3, 48 + t * 64 + 3);
        assert_eq!(corner(1, 1), px(blues(1.0)), "dog row: all correct, darkest");
        assert_eq!(corner(0, 0), px(blues(0.75)));
        assert_eq!(corner(0, 2), px(blues(0.0)), "an empty cell stays pale");
        assert_eq!(corner(2, 0), px(blues(1.0)), "the only bird went to cat");
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 40)).count();
        assert!(dark > 300, "text was drawn ({dark} dark pixels)");
    }

    #[test]
    fn curves_mark_the_kept_epoch() {
        let points: Vec<EpochPoint> = (1..=6)
            .map(|e| EpochPoint {
                epoch: e,
                train_loss: 2.0 / e as f64,
                train_accuracy: 0.5 + 0.05 * e as f64,
                valid_loss: Some(1.5 / e as f64 + 0.02 * e as f64),
                valid_accuracy: Some(0.5 + 0.04 * e as f64),
                lr: 1e-3 * 0.5f64.powi(e as i32 / 2),
            })
            .collect();
        let with = decode(&curves_png(&points, Some((4, "best epoch 4, restored"))).unwrap());
        let without = decode(&curves_png(&points, None).unwrap());
        assert_eq!(with.dimensions(), (900, 980));
        let red = |img: &image::RgbImage| img.pixels().filter(|p| Rgb(p.0) == Rgb([MARK.0, MARK.1, MARK.2])).count();
        assert_eq!(red(&without), 0);
        assert!(red(&with) > 400, "dashed line and label drawn ({} px)", red(&with));
        let color = |img: &image::RgbImage, c: RGBColor| img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
        assert!(color(&with, TRAIN) > 500 && color(&with, VALID) > 500, "both splits drawn");
        assert!(curves_png(&[], None).is_err());
    }

    use image::Rgb;

    #[test]
    fn thumbnails_stretch_images_and_flip_spectrograms() {
        let grey = Thumbnail { channels: 1, height: 2, width: 2, values: vec![-1.0, 0.0, 0.0, 1.0] };
        let (px, w, h) = grey.to_rgb(4, 4);
        assert_eq!((w, h), (4, 4));
        assert_eq!(&px[..3], &[0, 0, 0]);
        assert_eq!(&px[px.len() - 3..], &[255, 255, 255]);
        // Two planes: a spectrogram; its first row (lowest frequency) is drawn at the bottom.
        let spec = Thumbnail {
            channels: 2,
            height: 2,
            width: 3,
            values: vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0],
        };
        let (px, w, h) = spec.to_rgb(3, 2);
        assert_eq!((w, h), (3, 2));
        let RGBColor(r, g, b) = heat(1.0);
        assert_eq!(&px[..3], &[r, g, b], "top row is the high row");
        let RGBColor(r, g, b) = heat(0.0);
        assert_eq!(&px[9..12], &[r, g, b]);
    }

    #[test]
    fn galleries_place_every_item() {
        let item = |v: f32| GalleryItem {
            thumbnail: Thumbnail { channels: 3, height: 4, width: 4, values: vec![v; 48] },
            caption: vec!["true: dog".into(), "pred: cat 0.91".into()],
        };
        let img = decode(&gallery_png("Mistakes", &[item(0.0), item(1.0), item(0.5)]).unwrap());
        assert!(img.width() >= 3 * 184);
        // A constant picture has no range: it is drawn black (value 0 of the stretch).
        let black = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(black >= 3 * 120 * 120, "three 120 px thumbnails ({black})");
        // The title always fits, however few the pictures.
        let title = "Most confident mistakes on valid (3 of 3)";
        let one = decode(&gallery_png(title, &[item(0.0)]).unwrap());
        assert!(one.width() as usize >= title.len() * 16 + 16, "{}", one.width());
        let empty = decode(&gallery_png("Mistakes", &[]).unwrap());
        assert!(empty.pixels().any(|p| p.0 == [0, 0, 0]), "an empty gallery still says so");
    }

    #[test]
    fn constant_series_get_a_range_of_their_own_scale() {
        let (lo, hi) = bounds([1e-3, 1e-3].into_iter());
        assert!((lo - 0.95e-3).abs() < 1e-12 && (hi - 1.05e-3).abs() < 1e-12, "{lo} {hi}");
        assert_eq!(bounds([0.0].into_iter()), (-1.0, 1.0));
        assert_eq!(bounds([f64::NAN].into_iter()), (0.0, 1.0));
    }

    #[test]
    fn ticks_stay_short() {
        assert_eq!(tick(0.001), "0.001");
        assert_eq!(tick(0.00104), "0.00104");
        assert_eq!(tick(0.00098), "0.00098");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(1234.0), "1234");
        assert_eq!(tick(0.00003), "3e-5");
        assert_eq!(tick(0.000035), "3.5e-5");
        assert_eq!(tick(0.123456), "0.1235");
        assert_eq!(tick(-0.5), "-0.5");
    }
}
