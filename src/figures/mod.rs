//! The figures of the reproductions, drawn with plotters: the paper's Fig. 1 (support recovery and
//! query predictions of the baseline and SRPNet), the upper bound measured (support-recovery IoU
//! against query IoU), training curves of the loss terms, and the distributions of the
//! foreground - background score margin of matched models.
//!
//! One file per figure ([`fig1`], [`bound`], [`curves`], [`scores`]); the shared parts are here
//! (colours, errors, chart helpers), in `frame` (title, legend strip, caption), `text` (the font
//! and correct glyph placement in bitmaps) and `encode` (PNG + SVG, written atomically).
//!
//! Every figure is written twice from the same drawing code: a PNG (plotters' bitmap backend,
//! encoded with `image`) and an SVG (plotters' SVG backend). Plotters' SVG backend cannot embed
//! bitmaps in this build, so the pictures of Fig. 1 are composited here and placed into both
//! outputs ourselves.
//!
//! Conventions shared by all figures:
//! - one colour per method in every figure ([`method_color`]), from the Okabe–Ito palette
//!   (readable with the common colour-vision deficiencies); the ground truth is an outline in
//!   its own colour ([`GROUND_TRUTH`]);
//! - a title line at the top, a legend strip under the plot (never on top of the data) and a
//!   small provenance caption at the bottom;
//! - non-finite values (NaN, infinities) are skipped, and the caption says how many; input with
//!   nothing left to draw is a [`FigureError::Empty`], never a panic;
//! - files are written to a temporary file in the same folder and renamed, so a reader never
//!   sees a half-written figure.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

pub mod bound;
pub mod curves;
mod encode;
pub mod fig1;
mod frame;
pub mod scores;
mod text;

pub use bound::{BoundSeries, bound_title, draw_bound};
pub use curves::{Curve, CurvePanel, draw_curves};
pub use fig1::{Fig1Row, Picture, draw_fig1, quantile_rows, selection_rule};
pub use scores::{ScoreSample, draw_score_margins};
pub use text::{Bitmap, FONT, register_font};

/// What can go wrong when drawing or writing a figure; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("figure {path}: nothing to draw: {reason}")]
    Empty { path: PathBuf, reason: String },
    #[error("figure {path}: invalid input: {reason}")]
    InvalidInput { path: PathBuf, reason: String },
    #[error("figure {path}: drawing failed: {reason}")]
    Draw { path: PathBuf, reason: String },
    #[error("figure {path}: encoding failed: {reason}")]
    Encode { path: PathBuf, reason: String },
    #[error("figure {path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Colours
// ---------------------------------------------------------------------------------------------

/// The Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design").
pub mod okabe_ito {
    use plotters::style::RGBColor;
    pub const BLACK: RGBColor = RGBColor(0, 0, 0);
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
    pub const BLUISH_GREEN: RGBColor = RGBColor(0, 158, 115);
    pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
    pub const REDDISH_PURPLE: RGBColor = RGBColor(204, 121, 167);
}
use okabe_ito as oi;

/// The ground truth: an outline in this colour (with a thin dark edge) on every picture.
pub const GROUND_TRUTH: RGBColor = oi::YELLOW;

// ANCHOR: method_colors
/// The colour of each method, the same in every figure. Names are matched without regard to
/// case; a row's longer label maps to its method ("fidelity + SRP + IQI (SRPNet)" is SRPNet).
pub const METHOD_COLORS: [(&str, RGBColor); 11] = [
    ("PANet", oi::VERMILLION),
    ("PANet (cosine + PAR)", oi::VERMILLION),
    ("SRPNet", oi::BLUE),
    ("fidelity + SRP + IQI (SRPNet)", oi::BLUE),
    ("fidelity + SRP", oi::REDDISH_PURPLE),
    ("fidelity", oi::BLUISH_GREEN),
    ("cosine", oi::ORANGE),
    ("cosine + SRP", oi::SKY_BLUE),
    ("classical fidelity", RGBColor(51, 34, 136)),
    ("cosine, scale 36 (matched)", RGBColor(153, 153, 51)),
    ("PANet, no final ReLU", RGBColor(136, 34, 85)),
];

/// Colours for methods outside [`METHOD_COLORS`] (from Paul Tol's "muted" scheme, none of them
/// in the table): picked by a stable hash of the name, so a name keeps its colour across
/// figures and runs (two such names may share one).
const OTHER_COLORS: [RGBColor; 4] = [
    RGBColor(17, 119, 51),
    RGBColor(68, 170, 153),
    RGBColor(136, 204, 238),
    RGBColor(221, 204, 119),
];

/// The colour of method `name` (see [`METHOD_COLORS`]).
pub fn method_color(name: &str) -> RGBColor {
    let name = name.trim();
    if let Some((_, c)) = METHOD_COLORS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return *c;
    }
    // FNV-1a: stable across runs and platforms (std's hasher is randomly seeded).
    let hash = name
        .to_ascii_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
    OTHER_COLORS[(hash % OTHER_COLORS.len() as u64) as usize]
}
// ANCHOR_END: method_colors

const TEXT: RGBColor = RGBColor(20, 20, 20);
const CAPTION: RGBColor = RGBColor(80, 80, 80);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);

const TITLE_PX: u32 = 18;
const LEGEND_PX: u32 = 13;
const CAPTION_PX: u32 = 12;
const TICK_PX: u32 = 13;
const AXIS_PX: u32 = 14;
const MARGIN: i32 = 12;

fn line_height(px: u32) -> i32 {
    (px as f64 * 1.35).ceil() as i32
}

// ---------------------------------------------------------------------------------------------
// Errors and input helpers
// ---------------------------------------------------------------------------------------------

type Drawn = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn empty(stem: &Path, reason: impl Into<String>) -> FigureError {
    FigureError::Empty {
        path: with_suffix(stem, ".png"),
        reason: reason.into(),
    }
}

fn invalid(stem: &Path, reason: impl Into<String>) -> FigureError {
    FigureError::InvalidInput {
        path: with_suffix(stem, ".png"),
        reason: reason.into(),
    }
}

/// The caption plus a note on skipped values.
fn caption_with_note(caption: &str, skipped: usize) -> String {
    if skipped == 0 {
        caption.to_string()
    } else {
        format!("{caption}\nNote: {skipped} non-finite value(s) (NaN or infinite) were skipped.")
    }
}

/// Finite points only, and how many were dropped.
fn finite_points(points: &[(f64, f64)]) -> (Vec<(f64, f64)>, usize) {
    let kept: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let dropped = points.len() - kept.len();
    (kept, dropped)
}

/// A padded range that contains every value (never empty, never non-finite).
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        let d = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    (lo - span * pad, hi + span * pad)
}

/// A percentage for a title or label: whole numbers (halves rounded up), "<1%" / ">99%" near
/// the ends.
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    let p = 100.0 * part as f64 / whole as f64;
    if part > 0 && p < 1.0 {
        "<1%".into()
    } else if part < whole && p > 99.0 {
        ">99%".into()
    } else {
        format!("{:.0}%", p.round())
    }
}

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------

/// Decimals that tell ticks apart over a span shown with about `labels` labels.
fn tick_decimals((lo, hi): (f64, f64), labels: usize) -> usize {
    let step = (hi - lo).abs() / labels.max(1) as f64;
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    (-step.log10()).ceil().clamp(0.0, 6.0) as usize
}

type Chart2d<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Axis descriptions, tick labels and a light grid, in the figures' font and colours.
fn mesh_style<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    (x_desc, x_range): (&str, (f64, f64)),
    (y_desc, y_range): (&str, (f64, f64)),
    (tick_px, axis_px, labels): (u32, u32, usize),
) -> Drawn {
    let (xd, yd) = (
        tick_decimals(x_range, labels),
        tick_decimals(y_range, labels),
    );
    let fx = move |v: &f64| format!("{v:.xd$}");
    let fy = move |v: &f64| format!("{v:.yd$}");
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, tick_px).into_font().color(&TEXT))
        .axis_desc_style((FONT, axis_px).into_font().color(&TEXT))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .x_labels(labels)
        .y_labels(labels)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .draw()
        .map_err(err)
}

/// Counts of `values` in `bins` equal bins over `[lo, hi]` (values outside are clamped in).
fn bin_counts(values: impl Iterator<Item = f64>, (lo, hi): (f64, f64), bins: usize) -> Vec<usize> {
    let mut counts = vec![0usize; bins];
    let width = (hi - lo) / bins as f64;
    for v in values {
        let b = ((v - lo) / width).floor();
        let b = if b.is_finite() {
            b.max(0.0) as usize
        } else {
            0
        };
        counts[b.min(bins - 1)] += 1;
    }
    counts
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::PathBuf;

    /// A fresh folder under the system temp dir, removed when dropped.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("srpnet-figures-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if std::env::var_os("SRPNET_KEEP_FIGURES").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// Both files exist; the PNG decodes, has `width` columns and is not one colour; the SVG is
    /// well-formed enough: it opens with `<svg`, closes, and contains the title. Returns the
    /// PNG's size and the SVG's text.
    pub fn check_outputs(paths: &[PathBuf], width: u32, title: &str) -> ((u32, u32), String) {
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].extension().unwrap(), "png");
        assert_eq!(paths[1].extension().unwrap(), "svg");
        let img = image::open(&paths[0]).unwrap().to_rgb8();
        assert_eq!(img.width(), width);
        let first = *img.get_pixel(0, 0);
        assert!(
            img.pixels().any(|p| *p != first),
            "the PNG is a single colour"
        );
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(title), "the SVG lacks the title {title:?}");
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        // No temporary files are left behind.
        let dir = paths[0].parent().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(!name.to_string_lossy().contains(".tmp-"), "left {name:?}");
        }
        (img.dimensions(), svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_colour_per_method() {
        // Two names of the same method share a colour; different methods never do.
        fn method(name: &str) -> &str {
            match name {
                "PANet (cosine + PAR)" => "PANet",
                "fidelity + SRP + IQI (SRPNet)" => "SRPNet",
                n => n,
            }
        }
        for (a, ca) in METHOD_COLORS {
            for (b, cb) in METHOD_COLORS {
                assert_eq!(
                    method(a) == method(b),
                    ca == cb,
                    "{a:?} and {b:?}: colours {ca:?} and {cb:?}"
                );
            }
            assert_ne!(ca, GROUND_TRUTH, "{a} has the ground truth's colour");
        }
        assert_eq!(method_color("panet"), method_color(" PANet "));
        // Names outside the table never take a table colour.
        for c in OTHER_COLORS {
            assert!(METHOD_COLORS.iter().all(|(_, t)| *t != c), "{c:?}");
        }
        // A name outside the table always gets the same colour.
        assert_eq!(method_color("T = 3"), method_color("T = 3"));
    }

    #[test]
    fn the_methods_of_the_figure_reproductions_have_their_own_colours() {
        // Every method named by a reproduction that draws figures is in the table.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions");
        for id in ["fig1", "fig-bound", "table1"] {
            let text = std::fs::read_to_string(root.join(format!("{id}.toml"))).unwrap();
            let value: toml::Value = toml::from_str(&text).unwrap();
            for m in value["methods"].as_array().unwrap() {
                let name = m["name"].as_str().unwrap();
                assert!(
                    METHOD_COLORS
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(name)),
                    "{id}: method {name:?} has no entry in METHOD_COLORS"
                );
            }
        }
    }

    #[test]
    fn percentages_round_but_never_to_the_ends() {
        assert_eq!(percent(71, 100), "71%");
        assert_eq!(percent(1, 8), "13%");
        assert_eq!(percent(7, 8), "88%");
        assert_eq!(percent(1, 1000), "<1%");
        assert_eq!(percent(999, 1000), ">99%");
        assert_eq!(percent(0, 5), "0%");
        assert_eq!(percent(5, 5), "100%");
        assert_eq!(percent(0, 0), "n/a");
    }

    #[test]
    fn bins_count_every_value_once() {
        let c = bin_counts(
            [0.0, 0.1, 0.5, 0.99, 1.0, -3.0, 7.0].into_iter(),
            (0.0, 1.0),
            4,
        );
        assert_eq!(c, vec![3, 0, 1, 3]);
        assert_eq!(c.iter().sum::<usize>(), 7);
    }
}
