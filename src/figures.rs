//! The figures of the reproductions, drawn with plotters: the paper's Fig. 1 (support recovery and
//! query predictions of the baseline and SRPNet), the upper-bound scatter (support-recovery IoU
//! against query IoU), training curves of the loss terms, and histograms of similarity scores.
//!
//! Every figure is written twice from the same drawing code: a PNG (plotters' bitmap backend,
//! encoded with `image`) and an SVG (plotters' SVG backend). Plotters' SVG backend cannot embed
//! bitmaps in this build, so the pictures of Fig. 1 are composited here (picture, translucent
//! mask, outline) and placed into both outputs ourselves: copied into the PNG's pixels, and
//! embedded into the SVG as base64 PNG `<image>` elements.
//!
//! Conventions shared by all figures:
//! - colours from the Okabe–Ito palette (readable with the common colour-vision deficiencies),
//!   and, where series are told apart, different marker shapes as well;
//! - a title line at the top, a legend strip under the plot (never on top of the data) and a
//!   small provenance caption at the bottom, both given by the caller;
//! - non-finite values (NaN, infinities) are skipped, and the caption says how many; input with
//!   nothing left to draw is a [`FigureError::Empty`], never a panic;
//! - files are written to a temporary file in the same folder and renamed, so a reader never
//!   sees a half-written figure.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// An RGB picture: `rgb` holds `height * width * 3` interleaved bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub height: usize,
    pub width: usize,
    pub rgb: Vec<u8>,
}

/// One row (episode) of Fig. 1. Masks are row-major, the size of their picture, and hold
/// 0 (background), 1 (foreground) or 255 (ignore; drawn neutral grey). Any other non-zero value
/// counts as foreground. An IoU that is not finite is shown as "n/a".
#[derive(Debug, Clone)]
pub struct Fig1Row {
    pub class_name: String,
    pub support: Picture,
    pub support_truth: Vec<u8>,
    /// The support mask recovered by the baseline's (PANet's) prototypes.
    pub support_baseline: Vec<u8>,
    pub support_baseline_iou: f64,
    /// The support mask recovered by the SRP prototypes.
    pub support_srp: Vec<u8>,
    pub support_srp_iou: f64,
    pub query: Picture,
    pub query_truth: Vec<u8>,
    pub query_baseline: Vec<u8>,
    pub query_baseline_iou: f64,
    pub query_srpnet: Vec<u8>,
    pub query_srpnet_iou: f64,
}

/// One method's episodes for the upper-bound plot: (support-recovery IoU, query IoU), in [0, 1].
#[derive(Debug, Clone)]
pub struct BoundSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One training curve: (step, value).
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Similarity scores to the foreground prototype of foreground and of background pixels, for one
/// metric (e.g. "fidelity" or "cosine").
#[derive(Debug, Clone)]
pub struct ScoreSample {
    pub label: String,
    pub foreground: Vec<f32>,
    pub background: Vec<f32>,
}

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
// Palette, fonts, sizes
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

/// Series colours in order (black and yellow left out: black is the diagonal, yellow is faint on
/// white).
const SERIES: [RGBColor; 6] = [
    oi::BLUE,
    oi::VERMILLION,
    oi::BLUISH_GREEN,
    oi::REDDISH_PURPLE,
    oi::ORANGE,
    oi::SKY_BLUE,
];
const TEXT: RGBColor = RGBColor(20, 20, 20);
const CAPTION: RGBColor = RGBColor(80, 80, 80);
const IGNORE_GREY: [u8; 3] = [150, 150, 150];

const FONT: &str = "sans-serif";
const TITLE_PX: u32 = 18;
const LEGEND_PX: u32 = 13;
const CAPTION_PX: u32 = 12;
const MARGIN: i32 = 12;

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (there are no system fonts here).
/// Called by every figure function; call it yourself before drawing text with plotters elsewhere.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error would only mean the bundled font bytes are bad; text would then fail to draw
        // and the figure functions report that as `FigureError::Draw`.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

fn text_width(text: &str, px: u32) -> u32 {
    (FONT, px)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_else(|_| (text.chars().count() as f64 * px as f64 * 0.6) as u32)
}

/// Greedy word wrap to `max_px` pixels; explicit newlines start new lines.
fn wrap(text: &str, px: u32, max_px: u32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if !line.is_empty() && text_width(&candidate, px) > max_px {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

fn line_height(px: u32) -> i32 {
    (px as f64 * 1.35).ceil() as i32
}

/// The caption plus a note on skipped values.
fn caption_with_note(caption: &str, skipped: usize) -> String {
    if skipped == 0 {
        caption.to_string()
    } else {
        format!("{caption}\nNote: {skipped} non-finite value(s) (NaN or infinite) were skipped.")
    }
}

// ---------------------------------------------------------------------------------------------
// Backend-independent pieces: text, legend, frame
// ---------------------------------------------------------------------------------------------

type Drawn = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    px: u32,
    color: &RGBColor,
    centred: bool,
) -> Drawn {
    let h = if centred { HPos::Center } else { HPos::Left };
    let style = (FONT, px)
        .into_font()
        .color(color)
        .pos(Pos::new(h, VPos::Top));
    area.draw(&Text::new(text.to_string(), (x, y), style))
        .map_err(err)
}

/// The shape that stands for a series in the plot and in the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swatch {
    Circle,
    Triangle,
    Square,
    Diamond,
    /// A short solid line with a marker on it (curves).
    Line(usize),
    /// A dashed line (the diagonal).
    Dashed,
    /// A filled box (mask overlays, histogram bars).
    Patch,
}

const MARKERS: [Swatch; 4] = [
    Swatch::Circle,
    Swatch::Triangle,
    Swatch::Square,
    Swatch::Diamond,
];

fn marker_of(i: usize) -> Swatch {
    MARKERS[i % MARKERS.len()]
}

/// Draws a marker of `kind` centred at pixel `(x, y)`, on any drawing area in pixel coordinates.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    kind: Swatch,
    (x, y): (i32, i32),
    r: i32,
    color: &RGBColor,
) -> Drawn {
    let fill = color.mix(0.75).filled();
    let edge = color.stroke_width(1);
    match kind {
        Swatch::Circle => {
            area.draw(&Circle::new((x, y), r, fill)).map_err(err)?;
            area.draw(&Circle::new((x, y), r, edge)).map_err(err)
        }
        Swatch::Triangle => {
            let pts = vec![(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)];
            area.draw(&Polygon::new(pts.clone(), fill)).map_err(err)?;
            let mut closed = pts;
            closed.push(closed[0]);
            area.draw(&PathElement::new(closed, edge)).map_err(err)
        }
        Swatch::Square => {
            let rr = r - 1;
            area.draw(&Rectangle::new([(x - rr, y - rr), (x + rr, y + rr)], fill))
                .map_err(err)?;
            area.draw(&Rectangle::new([(x - rr, y - rr), (x + rr, y + rr)], edge))
                .map_err(err)
        }
        Swatch::Diamond => {
            let r = r + 1;
            let pts = vec![(x, y - r), (x + r, y), (x, y + r), (x - r, y)];
            area.draw(&Polygon::new(pts.clone(), fill)).map_err(err)?;
            let mut closed = pts;
            closed.push(closed[0]);
            area.draw(&PathElement::new(closed, edge)).map_err(err)
        }
        Swatch::Line(m) => {
            area.draw(&PathElement::new(
                vec![(x - 14, y), (x + 14, y)],
                color.stroke_width(2),
            ))
            .map_err(err)?;
            draw_marker(area, marker_of(m), (x, y), r, color)
        }
        Swatch::Dashed => {
            for i in 0..3 {
                let x0 = x - 14 + i * 10;
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 6, y)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            }
            Ok(())
        }
        Swatch::Patch => {
            area.draw(&Rectangle::new(
                [(x - 12, y - 7), (x + 12, y + 7)],
                color.mix(0.55).filled(),
            ))
            .map_err(err)?;
            area.draw(&Rectangle::new(
                [(x - 12, y - 7), (x + 12, y + 7)],
                color.stroke_width(2),
            ))
            .map_err(err)
        }
    }
}

#[derive(Debug, Clone)]
struct LegendEntry {
    swatch: Swatch,
    color: RGBColor,
    label: String,
}

/// Legend entries flowed left to right, wrapping at `max_px`: positions relative to the strip.
#[derive(Debug, Clone, Default)]
struct LegendLayout {
    entries: Vec<(LegendEntry, (i32, i32))>,
    height: i32,
}

const SWATCH_W: i32 = 32;

fn layout_legend(entries: Vec<LegendEntry>, max_px: i32) -> LegendLayout {
    if entries.is_empty() {
        return LegendLayout::default();
    }
    let row_h = line_height(LEGEND_PX) + 6;
    let widths: Vec<i32> = entries
        .iter()
        .map(|e| SWATCH_W + 6 + text_width(&e.label, LEGEND_PX) as i32 + 22)
        .collect();
    // One line when everything fits; otherwise a grid of equal columns, so entries line up.
    let columns = if widths.iter().sum::<i32>() <= max_px {
        entries.len()
    } else {
        let widest = widths.iter().copied().max().unwrap_or(1).max(1);
        ((max_px / widest) as usize).clamp(1, entries.len())
    };
    let column_w = widths.iter().copied().max().unwrap_or(0);
    let one_line = columns == entries.len();
    let mut x = 0;
    let mut placed = Vec::with_capacity(entries.len());
    for (i, (e, w)) in entries.into_iter().zip(widths).enumerate() {
        let (row, col) = (i / columns, i % columns);
        let pos = if one_line {
            let p = (x, 0);
            x += w;
            p
        } else {
            (col as i32 * column_w, row as i32 * row_h)
        };
        placed.push((e, pos));
    }
    let rows = placed.len().div_ceil(columns) as i32;
    LegendLayout {
        entries: placed,
        height: rows * row_h,
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &LegendLayout,
    (ox, oy): (i32, i32),
) -> Drawn {
    let mid = line_height(LEGEND_PX) / 2;
    for (e, (x, y)) in &legend.entries {
        let (x, y) = (ox + x, oy + y);
        draw_marker(area, e.swatch, (x + SWATCH_W / 2, y + mid), 5, &e.color)?;
        draw_text(
            area,
            &e.label,
            (x + SWATCH_W + 6, y),
            LEGEND_PX,
            &TEXT,
            false,
        )?;
    }
    Ok(())
}

/// The parts every figure has: title on top, then the body, then the legend and the caption.
#[derive(Debug, Clone)]
struct Frame {
    width: i32,
    title: Vec<String>,
    body_h: i32,
    legend: LegendLayout,
    caption: Vec<String>,
}

impl Frame {
    fn new(width: i32, title: &str, body_h: i32, legend: Vec<LegendEntry>, caption: &str) -> Self {
        let inner = (width - 2 * MARGIN).max(100);
        Self {
            width,
            title: wrap(title, TITLE_PX, inner as u32),
            body_h,
            legend: layout_legend(legend, inner),
            caption: wrap(caption, CAPTION_PX, inner as u32),
        }
    }

    fn title_h(&self) -> i32 {
        MARGIN + self.title.len() as i32 * line_height(TITLE_PX) + 4
    }

    fn body_top(&self) -> i32 {
        self.title_h()
    }

    fn height(&self) -> i32 {
        self.title_h()
            + self.body_h
            + 8
            + self.legend.height
            + 4
            + self.caption.len() as i32 * line_height(CAPTION_PX)
            + MARGIN
    }

    /// Draws title, legend and caption; returns the body area.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<DrawingArea<DB, Shift>, String> {
        let mut y = MARGIN;
        for line in &self.title {
            draw_text(root, line, (MARGIN, y), TITLE_PX, &TEXT, false)?;
            y += line_height(TITLE_PX);
        }
        let mut y = self.body_top() + self.body_h + 8;
        draw_legend(root, &self.legend, (MARGIN, y))?;
        y += self.legend.height + 4;
        for line in &self.caption {
            draw_text(root, line, (MARGIN, y), CAPTION_PX, &CAPTION, false)?;
            y += line_height(CAPTION_PX);
        }
        let body = root.clone().shrink(
            (0, self.body_top()),
            (self.width as u32, self.body_h.max(1) as u32),
        );
        Ok(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing both files
// ---------------------------------------------------------------------------------------------

/// A bitmap placed on top of the drawing at pixel `(x, y)`.
#[derive(Debug, Clone)]
struct Placed {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// A figure: its size, its vector drawing, and bitmaps to place on top.
trait Scene {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn;
    fn bitmaps(&self) -> &[Placed] {
        &[]
    }
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn png_bytes(width: usize, height: usize, rgb: &[u8], path: &Path) -> Result<Vec<u8>, FigureError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| FigureError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Renders `scene` into PNG bytes and SVG text (same drawing code), in memory.
fn render<S: Scene>(
    scene: &S,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(Vec<u8>, String), FigureError> {
    register_font();
    let (w, h) = scene.size();
    let draw_error = |path: &Path, reason: String| FigureError::Draw {
        path: path.to_path_buf(),
        reason,
    };
    // Plotters can panic on input we did not foresee; a figure must never take the run down.
    let guarded = |path: &Path, f: &mut dyn FnMut() -> Drawn| -> Result<(), FigureError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r.map_err(|e| draw_error(path, e)),
            Err(_) => Err(draw_error(path, "the plotting library panicked".into())),
        }
    };

    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    guarded(png_path, &mut || {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        scene.draw(&root)?;
        root.present().map_err(err)
    })?;
    for p in scene.bitmaps() {
        for row in 0..p.height {
            let y = p.y + row;
            if y >= h as usize {
                break;
            }
            let cols = p.width.min((w as usize).saturating_sub(p.x));
            let dst = (y * w as usize + p.x) * 3;
            let src = row * p.width * 3;
            pixels[dst..dst + cols * 3].copy_from_slice(&p.rgb[src..src + cols * 3]);
        }
    }
    let png = png_bytes(w as usize, h as usize, &pixels, png_path)?;

    let mut svg = String::new();
    guarded(svg_path, &mut || {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        scene.draw(&root)?;
        root.present().map_err(err)
    })?;
    if !scene.bitmaps().is_empty() {
        let mut images = String::new();
        for p in scene.bitmaps() {
            let bytes = png_bytes(p.width, p.height, &p.rgb, svg_path)?;
            let _ = writeln!(
                images,
                r#"<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none" xlink:href="data:image/png;base64,{}"/>"#,
                p.x,
                p.y,
                p.width,
                p.height,
                base64(&bytes)
            );
        }
        if !svg.contains("xmlns:xlink") {
            svg = svg.replacen(
                "<svg ",
                "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" ",
                1,
            );
        }
        match svg.rfind("</svg>") {
            Some(end) => svg.insert_str(end, &images),
            None => {
                return Err(draw_error(
                    svg_path,
                    "the SVG backend wrote no closing tag".into(),
                ));
            }
        }
    }
    Ok((png, svg))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FigureError> {
    let io = |source| FigureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "figure".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Renders both files in memory first, then writes them: an input or drawing error leaves
/// nothing behind.
fn write_figure<S: Scene>(scene: &S, stem: &Path) -> Result<Vec<PathBuf>, FigureError> {
    let png_path = with_suffix(stem, ".png");
    let svg_path = with_suffix(stem, ".svg");
    let (png, svg) = render(scene, &png_path, &svg_path)?;
    write_atomically(&png_path, &png)?;
    write_atomically(&svg_path, svg.as_bytes())?;
    Ok(vec![png_path, svg_path])
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

// ---------------------------------------------------------------------------------------------
// Fig. 1
// ---------------------------------------------------------------------------------------------

const CELL: usize = 160;
const CELL_GAP: usize = 10;
const GROUP_GAP: usize = 26;
const HEADER_PX: u32 = 12;
const ROW_LABEL_PX: u32 = 14;
const IOU_PX: u32 = 13;

/// Mask colours of Fig. 1: ground truth, baseline, SRP/SRPNet.
const TRUTH_COLOR: RGBColor = oi::BLUISH_GREEN;
const BASELINE_COLOR: RGBColor = oi::VERMILLION;
const SRP_COLOR: RGBColor = oi::BLUE;

const FIG1_HEADERS: [[&str; 2]; 6] = [
    ["support", "ground truth"],
    ["support recovered by", "baseline prototypes"],
    ["support recovered by", "SRP prototypes"],
    ["query", "ground truth"],
    ["query predicted by", "baseline (PANet)"],
    ["query predicted by", "SRPNet"],
];

fn fig1_column_x(col: usize) -> usize {
    MARGIN as usize + col * (CELL + CELL_GAP) + if col >= 3 { GROUP_GAP } else { 0 }
}

fn fig1_width() -> usize {
    fig1_column_x(5) + CELL + MARGIN as usize
}

fn fig1_header_h() -> usize {
    2 * line_height(HEADER_PX) as usize + 6
}

fn fig1_row_h() -> usize {
    line_height(ROW_LABEL_PX) as usize + 2 + CELL + line_height(IOU_PX) as usize + 10
}

/// Picture with a mask drawn over it, resized to fit a `CELL` x `CELL` box (aspect kept).
/// Foreground: `color` at 45% over the picture, a 2-pixel solid inner outline and a 1-pixel
/// white outer outline (contrast on dark and light pictures); ignore (255): neutral grey.
fn composite(picture: &Picture, mask: &[u8], color: RGBColor) -> Placed {
    let scale = CELL as f64 / picture.height.max(picture.width) as f64;
    let pw = ((picture.width as f64 * scale).round() as usize).clamp(1, CELL);
    let ph = ((picture.height as f64 * scale).round() as usize).clamp(1, CELL);
    let src = image::RgbImage::from_raw(
        picture.width as u32,
        picture.height as u32,
        picture.rgb.clone(),
    )
    .expect("the picture's length was checked");
    let resized = image::imageops::resize(
        &src,
        pw as u32,
        ph as u32,
        image::imageops::FilterType::Triangle,
    );
    // Nearest-neighbour mask at the panel size: 0 background, 1 foreground, 2 ignore.
    let label = |y: usize, x: usize| -> u8 {
        let sy = (((y as f64 + 0.5) / scale) as usize).min(picture.height - 1);
        let sx = (((x as f64 + 0.5) / scale) as usize).min(picture.width - 1);
        match mask[sy * picture.width + sx] {
            0 => 0,
            255 => 2,
            _ => 1,
        }
    };
    let labels: Vec<u8> = (0..ph * pw).map(|i| label(i / pw, i % pw)).collect();
    let near = |y: usize, x: usize, r: usize, want_fg: bool| -> bool {
        let (y0, y1) = (y.saturating_sub(r), (y + r).min(ph - 1));
        let (x0, x1) = (x.saturating_sub(r), (x + r).min(pw - 1));
        (y0..=y1).any(|yy| (x0..=x1).any(|xx| (labels[yy * pw + xx] == 1) == want_fg))
    };
    let c = [color.0, color.1, color.2];
    let blend = |p: [u8; 3], q: [u8; 3], a: f64| -> [u8; 3] {
        [0, 1, 2].map(|i| (p[i] as f64 * (1.0 - a) + q[i] as f64 * a).round() as u8)
    };
    let mut rgb = resized.into_raw();
    for y in 0..ph {
        for x in 0..pw {
            let i = y * pw + x;
            let p = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]];
            let out = match labels[i] {
                1 if near(y, x, 2, false) => c,
                1 => blend(p, c, 0.45),
                2 => blend(p, IGNORE_GREY, 0.7),
                _ if near(y, x, 1, true) => [255, 255, 255],
                _ => p,
            };
            rgb[3 * i..3 * i + 3].copy_from_slice(&out);
        }
    }
    Placed {
        x: 0,
        y: 0,
        width: pw,
        height: ph,
        rgb,
    }
}

struct Fig1Scene {
    frame: Frame,
    /// (row label, IoU texts of the six panels) per row.
    rows: Vec<(String, [String; 6])>,
    panels: Vec<Placed>,
}

impl Scene for Fig1Scene {
    fn size(&self) -> (u32, u32) {
        (self.frame.width as u32, self.frame.height() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        for (col, lines) in FIG1_HEADERS.iter().enumerate() {
            let cx = (fig1_column_x(col) + CELL / 2) as i32;
            for (j, line) in lines.iter().enumerate() {
                draw_text(
                    &body,
                    line,
                    (cx, j as i32 * line_height(HEADER_PX)),
                    HEADER_PX,
                    &TEXT,
                    true,
                )?;
            }
        }
        // A thin rule between the support and the query halves.
        let rule_x = (fig1_column_x(3) - (GROUP_GAP + CELL_GAP) / 2) as i32;
        let body_h = self.frame.body_h;
        body.draw(&PathElement::new(
            vec![(rule_x, 0), (rule_x, body_h - 4)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))
        .map_err(err)?;
        for (r, (label, ious)) in self.rows.iter().enumerate() {
            let top = (fig1_header_h() + r * fig1_row_h()) as i32;
            draw_text(&body, label, (MARGIN, top), ROW_LABEL_PX, &TEXT, false)?;
            let img_top = top + line_height(ROW_LABEL_PX) + 2;
            for (col, iou) in ious.iter().enumerate() {
                let x = fig1_column_x(col) as i32;
                body.draw(&Rectangle::new(
                    [
                        (x - 1, img_top - 1),
                        (x + CELL as i32, img_top + CELL as i32),
                    ],
                    RGBColor(200, 200, 200).stroke_width(1),
                ))
                .map_err(err)?;
                draw_text(
                    &body,
                    iou,
                    (x + CELL as i32 / 2, img_top + CELL as i32 + 3),
                    IOU_PX,
                    &TEXT,
                    true,
                )?;
            }
        }
        Ok(())
    }

    fn bitmaps(&self) -> &[Placed] {
        &self.panels
    }
}

fn iou_text(iou: f64) -> String {
    if iou.is_finite() {
        format!("IoU {iou:.3}")
    } else {
        "IoU n/a".into()
    }
}

fn check_picture(stem: &Path, row: usize, what: &str, p: &Picture) -> Result<(), FigureError> {
    if p.height == 0 || p.width == 0 {
        return Err(invalid(
            stem,
            format!(
                "row {row}: the {what} picture is {}x{}; it needs at least one pixel",
                p.height, p.width
            ),
        ));
    }
    let want = p.height.checked_mul(p.width).and_then(|n| n.checked_mul(3));
    if want != Some(p.rgb.len()) {
        return Err(invalid(
            stem,
            format!(
                "row {row}: the {what} picture is {}x{} but holds {} bytes; interleaved RGB8 needs height*width*3",
                p.height,
                p.width,
                p.rgb.len()
            ),
        ));
    }
    Ok(())
}

fn check_mask(
    stem: &Path,
    row: usize,
    what: &str,
    p: &Picture,
    m: &[u8],
) -> Result<(), FigureError> {
    if m.len() != p.height * p.width {
        return Err(invalid(
            stem,
            format!(
                "row {row}: the {what} mask holds {} values but its picture is {}x{}; give one value per pixel",
                m.len(),
                p.height,
                p.width
            ),
        ));
    }
    Ok(())
}

/// Paper Fig. 1 style: one row per episode; columns: support + GT mask, support recovered by
/// baseline prototypes, by SRP prototypes (IoU under each panel), query + GT, baseline
/// prediction, SRPNet prediction (IoU). Masks are drawn as a translucent colour overlay with a
/// contrasting outline on the picture; 255 pixels are shown neutral grey.
///
/// Writes `stem.png` and `stem.svg` and returns both paths. No rows is [`FigureError::Empty`]; a
/// picture or mask of the wrong length is [`FigureError::InvalidInput`]; a non-finite IoU is
/// shown as "n/a" and counted in the caption's note.
pub fn draw_fig1(
    rows: &[Fig1Row],
    title: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if rows.is_empty() {
        return Err(empty(stem, "no episodes (rows) were given"));
    }
    let mut skipped = 0;
    let mut labels = Vec::with_capacity(rows.len());
    let mut panels = Vec::with_capacity(rows.len() * 6);
    for (r, row) in rows.iter().enumerate() {
        check_picture(stem, r, "support", &row.support)?;
        check_picture(stem, r, "query", &row.query)?;
        for (what, m) in [
            ("support ground-truth", &row.support_truth),
            ("support baseline", &row.support_baseline),
            ("support SRP", &row.support_srp),
        ] {
            check_mask(stem, r, what, &row.support, m)?;
        }
        for (what, m) in [
            ("query ground-truth", &row.query_truth),
            ("query baseline", &row.query_baseline),
            ("query SRPNet", &row.query_srpnet),
        ] {
            check_mask(stem, r, what, &row.query, m)?;
        }
        let ious = [
            row.support_baseline_iou,
            row.support_srp_iou,
            row.query_baseline_iou,
            row.query_srpnet_iou,
        ];
        skipped += ious.iter().filter(|v| !v.is_finite()).count();
        labels.push((
            format!("{}. {}", r + 1, row.class_name),
            [
                String::new(),
                iou_text(row.support_baseline_iou),
                iou_text(row.support_srp_iou),
                String::new(),
                iou_text(row.query_baseline_iou),
                iou_text(row.query_srpnet_iou),
            ],
        ));
        let cells = [
            (&row.support, &row.support_truth, TRUTH_COLOR),
            (&row.support, &row.support_baseline, BASELINE_COLOR),
            (&row.support, &row.support_srp, SRP_COLOR),
            (&row.query, &row.query_truth, TRUTH_COLOR),
            (&row.query, &row.query_baseline, BASELINE_COLOR),
            (&row.query, &row.query_srpnet, SRP_COLOR),
        ];
        for (col, (picture, mask, color)) in cells.into_iter().enumerate() {
            panels.push((r, col, composite(picture, mask, color)));
        }
    }
    let legend = vec![
        LegendEntry {
            swatch: Swatch::Patch,
            color: TRUTH_COLOR,
            label: "ground truth".into(),
        },
        LegendEntry {
            swatch: Swatch::Patch,
            color: BASELINE_COLOR,
            label: "baseline (PANet) prototypes".into(),
        },
        LegendEntry {
            swatch: Swatch::Patch,
            color: SRP_COLOR,
            label: "SRP prototypes / SRPNet".into(),
        },
        LegendEntry {
            swatch: Swatch::Patch,
            color: RGBColor(IGNORE_GREY[0], IGNORE_GREY[1], IGNORE_GREY[2]),
            label: "ignored pixels (255)".into(),
        },
    ];
    let body_h = (fig1_header_h() + rows.len() * fig1_row_h()) as i32;
    let frame = Frame::new(
        fig1_width() as i32,
        title,
        body_h,
        legend,
        &caption_with_note(caption, skipped),
    );
    // Place the panels: centred in their cells, in root coordinates.
    let body_top = frame.body_top() as usize;
    let panels = panels
        .into_iter()
        .map(|(r, col, mut p)| {
            let top = body_top
                + fig1_header_h()
                + r * fig1_row_h()
                + line_height(ROW_LABEL_PX) as usize
                + 2;
            p.x = fig1_column_x(col) + (CELL - p.width) / 2;
            p.y = top + (CELL - p.height) / 2;
            p
        })
        .collect();
    write_figure(
        &Fig1Scene {
            frame,
            rows: labels,
            panels,
        },
        stem,
    )
}

// ---------------------------------------------------------------------------------------------
// Charts: shared pieces
// ---------------------------------------------------------------------------------------------

const CHART_W: i32 = 760;
const CHART_H: i32 = 560;
const TICK_PX: u32 = 13;
const AXIS_PX: u32 = 14;

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

/// Decimals that tell ticks apart over a span shown with about eight labels.
fn tick_decimals((lo, hi): (f64, f64)) -> usize {
    let step = (hi - lo).abs() / 8.0;
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

fn mesh_style<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    (x_desc, x_range): (&str, (f64, f64)),
    (y_desc, y_range): (&str, (f64, f64)),
    (tick_px, axis_px, labels): (u32, u32, usize),
) -> Drawn {
    let (xd, yd) = (tick_decimals(x_range), tick_decimals(y_range));
    let fx = move |v: &f64| format!("{v:.xd$}");
    let fy = move |v: &f64| format!("{v:.yd$}");
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, tick_px).into_font().color(&TEXT))
        .axis_desc_style((FONT, axis_px).into_font().color(&TEXT))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_labels(labels)
        .y_labels(labels)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .draw()
        .map_err(err)
}

// ---------------------------------------------------------------------------------------------
// The upper-bound scatter
// ---------------------------------------------------------------------------------------------

struct BoundScene {
    frame: Frame,
    series: Vec<Vec<(f64, f64)>>,
    range: (f64, f64),
}

impl Scene for BoundScene {
    fn size(&self) -> (u32, u32) {
        (self.frame.width as u32, self.frame.height() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        let (lo, hi) = self.range;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(err)?;
        mesh_style(
            &mut chart,
            ("support-recovery IoU (fraction, 0 to 1)", (lo, hi)),
            ("query IoU (fraction, 0 to 1)", (lo, hi)),
            (TICK_PX, AXIS_PX, 8),
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(lo, lo), (hi, hi)],
                8,
                5,
                oi::BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        for (i, points) in self.series.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            let kind = marker_of(i);
            let pixels: Vec<(i32, i32)> = points.iter().map(|&p| chart.backend_coord(&p)).collect();
            let plot = chart.plotting_area().strip_coord_spec();
            let (ox, oy) = plot.get_base_pixel();
            for (x, y) in pixels {
                draw_marker(&plot, kind, (x - ox, y - oy), 4, &color)?;
            }
        }
        Ok(())
    }
}

/// Scatter of query IoU (y) against support-recovery IoU (x), one point per episode, for every
/// series, with the diagonal y = x; each legend entry gives the series' episode count and the
/// share of its points above the diagonal (query IoU > support-recovery IoU).
///
/// Non-finite points are skipped (the caption says how many). No series, or no finite point in
/// any series, is [`FigureError::Empty`]; a series without points is listed as "no points".
/// The axes span [0, 1], widened if a point lies outside.
pub fn draw_bound(
    series: &[BoundSeries],
    title: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if series.is_empty() {
        return Err(empty(stem, "no series were given"));
    }
    let mut skipped = 0;
    let mut kept = Vec::with_capacity(series.len());
    let mut legend = Vec::with_capacity(series.len() + 1);
    for (i, s) in series.iter().enumerate() {
        let (points, dropped) = finite_points(&s.points);
        skipped += dropped;
        let label = if points.is_empty() {
            format!("{}: no points", s.label)
        } else {
            let above = points.iter().filter(|(x, y)| y > x).count();
            format!(
                "{}: {} episode(s), {:.0}% above y = x",
                s.label,
                points.len(),
                100.0 * above as f64 / points.len() as f64
            )
        };
        legend.push(LegendEntry {
            swatch: marker_of(i),
            color: SERIES[i % SERIES.len()],
            label,
        });
        kept.push(points);
    }
    if kept.iter().all(|p| p.is_empty()) {
        return Err(empty(stem, "no series has a finite point"));
    }
    legend.push(LegendEntry {
        swatch: Swatch::Dashed,
        color: oi::BLACK,
        label: "y = x: query as good as the support recovery".into(),
    });
    let all = kept.iter().flatten().flat_map(|&(x, y)| [x, y]);
    let (lo, hi) = all.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = (hi - lo) * 0.02;
    let frame = Frame::new(
        CHART_W,
        title,
        CHART_W - 120,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &BoundScene {
            frame,
            series: kept,
            range: (lo - pad, hi + pad),
        },
        stem,
    )
}

// ---------------------------------------------------------------------------------------------
// Training curves
// ---------------------------------------------------------------------------------------------

struct CurvesScene {
    frame: Frame,
    curves: Vec<Vec<(f64, f64)>>,
    x: (f64, f64),
    y: (f64, f64),
    y_label: String,
}

/// At most this many markers per curve (the line carries the data; markers tell curves apart).
const CURVE_MARKERS: usize = 12;

impl Scene for CurvesScene {
    fn size(&self) -> (u32, u32) {
        (self.frame.width as u32, self.frame.height() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)
            .map_err(err)?;
        mesh_style(
            &mut chart,
            ("training step (episodes)", self.x),
            (&self.y_label, self.y),
            (TICK_PX, AXIS_PX, 8),
        )?;
        for (i, points) in self.curves.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            let every = points.len().div_ceil(CURVE_MARKERS).max(1);
            // Offset the markers of each curve so that overlapping curves stay distinguishable.
            let start = (i * every / SERIES.len().max(1)).min(points.len().saturating_sub(1));
            let pixels: Vec<(i32, i32)> = points
                .iter()
                .skip(start)
                .step_by(every)
                .map(|p| chart.backend_coord(p))
                .collect();
            let plot = chart.plotting_area().strip_coord_spec();
            let (ox, oy) = plot.get_base_pixel();
            for (x, y) in pixels {
                draw_marker(&plot, marker_of(i), (x - ox, y - oy), 4, &color)?;
            }
        }
        Ok(())
    }
}

/// Training curves of the loss terms: one line per curve on one chart, x = training step.
/// Non-finite points are skipped (the caption says how many). No curves, or no finite point, is
/// [`FigureError::Empty`]; a curve without points is listed as "no points".
pub fn draw_curves(
    curves: &[Curve],
    title: &str,
    y_label: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if curves.is_empty() {
        return Err(empty(stem, "no curves were given"));
    }
    let mut skipped = 0;
    let mut kept = Vec::with_capacity(curves.len());
    let mut legend = Vec::with_capacity(curves.len());
    for (i, c) in curves.iter().enumerate() {
        let (points, dropped) = finite_points(&c.points);
        skipped += dropped;
        legend.push(LegendEntry {
            swatch: Swatch::Line(i),
            color: SERIES[i % SERIES.len()],
            label: if points.is_empty() {
                format!("{}: no points", c.label)
            } else {
                c.label.clone()
            },
        });
        kept.push(points);
    }
    if kept.iter().all(|p| p.is_empty()) {
        return Err(empty(stem, "no curve has a finite point"));
    }
    let x = padded_range(kept.iter().flatten().map(|p| p.0), 0.0);
    let y = padded_range(kept.iter().flatten().map(|p| p.1), 0.05);
    let frame = Frame::new(
        CHART_W,
        title,
        CHART_H - 80,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &CurvesScene {
            frame,
            curves: kept,
            x,
            y,
            y_label: y_label.to_string(),
        },
        stem,
    )
}

// ---------------------------------------------------------------------------------------------
// Score histograms
// ---------------------------------------------------------------------------------------------

const BINS: usize = 40;
const PANEL_W: i32 = 470;
const PANEL_H: i32 = 380;
const PANEL_COLUMNS: usize = 3;
const FOREGROUND_COLOR: RGBColor = oi::VERMILLION;
const BACKGROUND_COLOR: RGBColor = oi::BLUE;

struct Histogram {
    /// Normalised density per bin (integrates to 1), or empty when there are no values.
    density: Vec<f64>,
    count: usize,
    mean: f64,
}

fn histogram(values: &[f64], lo: f64, hi: f64) -> Histogram {
    if values.is_empty() {
        return Histogram {
            density: Vec::new(),
            count: 0,
            mean: f64::NAN,
        };
    }
    let width = (hi - lo) / BINS as f64;
    let mut counts = vec![0usize; BINS];
    for &v in values {
        let b = (((v - lo) / width) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let n = values.len() as f64;
    Histogram {
        density: counts.iter().map(|&c| c as f64 / (n * width)).collect(),
        count: values.len(),
        mean: values.iter().sum::<f64>() / n,
    }
}

struct Panel {
    label: String,
    stats: String,
    range: (f64, f64),
    /// Foreground then background.
    histograms: [Histogram; 2],
}

struct HistogramScene {
    frame: Frame,
    panels: Vec<Panel>,
    columns: usize,
}

fn stats_text(name: &str, h: &Histogram) -> String {
    if h.count == 0 {
        format!("{name}: none")
    } else {
        format!("{name}: n = {}, mean {:.3}", h.count, h.mean)
    }
}

impl Scene for HistogramScene {
    fn size(&self) -> (u32, u32) {
        (self.frame.width as u32, self.frame.height() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        let rows = self.panels.len().div_ceil(self.columns);
        let areas = body.split_evenly((rows, self.columns));
        for (panel, area) in self.panels.iter().zip(areas) {
            let area = area.margin(4, 4, MARGIN, 4);
            draw_text(&area, &panel.label, (PANEL_W / 2 - 10, 0), 15, &TEXT, true)?;
            draw_text(
                &area,
                &panel.stats,
                (PANEL_W / 2 - 10, line_height(15)),
                CAPTION_PX,
                &CAPTION,
                true,
            )?;
            let (_, plot_area) =
                area.split_vertically(line_height(15) + line_height(CAPTION_PX) + 4);
            let (lo, hi) = panel.range;
            let top = panel
                .histograms
                .iter()
                .flat_map(|h| h.density.iter().copied())
                .fold(0.0f64, f64::max);
            let top = if top > 0.0 { top * 1.08 } else { 1.0 };
            let mut chart = ChartBuilder::on(&plot_area)
                .margin(4)
                .margin_right(16)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(lo..hi, 0.0..top)
                .map_err(err)?;
            mesh_style(
                &mut chart,
                ("score to the foreground prototype (unitless)", (lo, hi)),
                ("density (1 / score unit)", (0.0, top)),
                (12, 13, 6),
            )?;
            let width = (hi - lo) / BINS as f64;
            for (h, color) in panel
                .histograms
                .iter()
                .zip([FOREGROUND_COLOR, BACKGROUND_COLOR])
            {
                if h.density.is_empty() {
                    continue;
                }
                chart
                    .draw_series(h.density.iter().enumerate().map(|(b, &d)| {
                        let x0 = lo + b as f64 * width;
                        Rectangle::new([(x0, 0.0), (x0 + width, d)], color.mix(0.35).filled())
                    }))
                    .map_err(err)?;
                // The outline of the histogram as a step line, solid, over the translucent bars.
                let mut steps = Vec::with_capacity(2 * BINS + 2);
                steps.push((lo, 0.0));
                for (b, &d) in h.density.iter().enumerate() {
                    let x0 = lo + b as f64 * width;
                    steps.push((x0, d));
                    steps.push((x0 + width, d));
                }
                steps.push((hi, 0.0));
                chart
                    .draw_series(LineSeries::new(steps, color.stroke_width(2)))
                    .map_err(err)?;
            }
            if panel.histograms.iter().all(|h| h.count == 0) {
                let (w, h) = chart.plotting_area().dim_in_pixel();
                let plot = chart.plotting_area().strip_coord_spec();
                draw_text(
                    &plot,
                    "no finite scores",
                    (w as i32 / 2, h as i32 / 2 - 8),
                    14,
                    &CAPTION,
                    true,
                )?;
            }
        }
        Ok(())
    }
}

/// Histograms (normalised densities) of the scores of foreground and background pixels, one
/// panel per sample (up to three per row), each panel's x range spanning its own data.
///
/// Non-finite scores are skipped (the caption says how many). No samples, or no finite score in
/// any sample, is [`FigureError::Empty`]; a sample without scores gets a panel that says so.
pub fn draw_score_histograms(
    samples: &[ScoreSample],
    title: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if samples.is_empty() {
        return Err(empty(stem, "no score samples were given"));
    }
    let mut skipped = 0;
    let mut panels = Vec::with_capacity(samples.len());
    for s in samples {
        let mut finite = |v: &[f32]| -> Vec<f64> {
            let kept: Vec<f64> = v
                .iter()
                .filter(|x| x.is_finite())
                .map(|&x| x as f64)
                .collect();
            skipped += v.len() - kept.len();
            kept
        };
        let (fg, bg) = (finite(&s.foreground), finite(&s.background));
        let range = padded_range(fg.iter().chain(&bg).copied(), 0.0);
        let histograms = [
            histogram(&fg, range.0, range.1),
            histogram(&bg, range.0, range.1),
        ];
        panels.push(Panel {
            label: s.label.clone(),
            stats: format!(
                "{}; {}",
                stats_text("foreground", &histograms[0]),
                stats_text("background", &histograms[1])
            ),
            range,
            histograms,
        });
    }
    if panels
        .iter()
        .all(|p| p.histograms.iter().all(|h| h.count == 0))
    {
        return Err(empty(stem, "no sample has a finite score"));
    }
    let columns = panels.len().min(PANEL_COLUMNS);
    let rows = panels.len().div_ceil(columns);
    let legend = vec![
        LegendEntry {
            swatch: Swatch::Patch,
            color: FOREGROUND_COLOR,
            label: "foreground pixels".into(),
        },
        LegendEntry {
            swatch: Swatch::Patch,
            color: BACKGROUND_COLOR,
            label: "background pixels".into(),
        },
    ];
    let frame = Frame::new(
        (columns as i32 * PANEL_W + 2 * MARGIN).max(CHART_W),
        title,
        rows as i32 * PANEL_H,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &HistogramScene {
            frame,
            panels,
            columns,
        },
        stem,
    )
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
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
    /// well-formed enough: it opens with `<svg`, closes, and contains the title.
    fn check_outputs(paths: &[PathBuf], width: u32, title: &str) -> (u32, u32) {
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
        assert!(svg.contains(title), "the SVG lacks the title");
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        // No temporary files are left behind.
        let dir = paths[0].parent().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(!name.to_string_lossy().contains(".tmp-"), "left {name:?}");
        }
        img.dimensions()
    }

    fn picture(h: usize, w: usize, seed: u8) -> Picture {
        let rgb = (0..h * w * 3)
            .map(|i| ((i / 3 % w) * 255 / w) as u8 ^ seed.wrapping_mul((i % 3) as u8 + 1))
            .collect();
        Picture {
            height: h,
            width: w,
            rgb,
        }
    }

    fn square(h: usize, w: usize, from: usize, to: usize) -> Vec<u8> {
        (0..h * w)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                if y == 0 || x == 0 {
                    255
                } else {
                    ((from..to).contains(&y) && (from..to).contains(&x)) as u8
                }
            })
            .collect()
    }

    fn fig1_row(name: &str, iou: f64) -> Fig1Row {
        let (h, w) = (33, 41);
        Fig1Row {
            class_name: name.into(),
            support: picture(h, w, 3),
            support_truth: square(h, w, 8, 24),
            support_baseline: square(h, w, 10, 28),
            support_baseline_iou: 0.61,
            support_srp: square(h, w, 8, 25),
            support_srp_iou: 0.93,
            query: picture(24, 24, 90),
            query_truth: square(24, 24, 4, 16),
            query_baseline: square(24, 24, 6, 20),
            query_baseline_iou: 0.41,
            query_srpnet: square(24, 24, 4, 17),
            query_srpnet_iou: iou,
        }
    }

    #[test]
    fn fig1_writes_png_and_svg_with_embedded_pictures() {
        let dir = TempDir::new("fig1");
        let rows = vec![fig1_row("cat", 0.87), fig1_row("bus", f64::NAN)];
        let paths = draw_fig1(
            &rows,
            "Fig 1 test",
            "synthetic-5i, embedded, seed 0",
            &dir.0.join("fig1"),
        )
        .unwrap();
        let (_, h) = check_outputs(&paths, fig1_width() as u32, "Fig 1 test");
        assert!(h as usize > 2 * fig1_row_h());
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert_eq!(svg.matches("<image ").count(), 12);
        assert!(svg.contains("data:image/png;base64,"));
        assert!(svg.contains("IoU n/a"));
        assert!(svg.contains("non-finite"));
        // The pixels of a panel landed in the PNG: its centre is not the white background.
        let img = image::open(&paths[0]).unwrap().to_rgb8();
        let mid = fig1_column_x(0) as u32 + CELL as u32 / 2;
        assert!((0..h).any(|y| *img.get_pixel(mid, y) != image::Rgb([255, 255, 255])));
    }

    #[test]
    fn fig1_rejects_empty_rows_and_bad_masks() {
        let dir = TempDir::new("fig1-bad");
        let stem = dir.0.join("fig1");
        assert!(matches!(
            draw_fig1(&[], "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
        let mut row = fig1_row("cat", 0.5);
        row.query_srpnet.pop();
        let e = draw_fig1(&[row], "t", "c", &stem).unwrap_err();
        assert!(matches!(e, FigureError::InvalidInput { .. }), "{e}");
        assert!(e.to_string().contains("query SRPNet"), "{e}");
        let mut row = fig1_row("cat", 0.5);
        row.support.rgb.truncate(5);
        assert!(matches!(
            draw_fig1(&[row], "t", "c", &stem),
            Err(FigureError::InvalidInput { .. })
        ));
        let mut row = fig1_row("cat", 0.5);
        row.query = Picture {
            height: 0,
            width: 0,
            rgb: vec![],
        };
        row.query_truth.clear();
        assert!(draw_fig1(&[row], "t", "c", &stem).is_err());
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            0,
            "nothing is written on error"
        );
    }

    #[test]
    fn bound_plot_counts_points_above_the_diagonal() {
        let dir = TempDir::new("bound");
        let series = vec![
            BoundSeries {
                label: "baseline (PANet)".into(),
                points: (0..40)
                    .map(|i| {
                        let x = i as f64 / 40.0;
                        (x, x * 0.8)
                    })
                    .chain([(f64::NAN, 0.5)])
                    .collect(),
            },
            BoundSeries {
                label: "SRPNet".into(),
                points: (0..40)
                    .map(|i| {
                        let x = 0.3 + i as f64 / 60.0;
                        (
                            x,
                            (x + if i % 4 == 0 { 0.05 } else { -0.1 }).clamp(0.0, 1.0),
                        )
                    })
                    .collect(),
            },
            BoundSeries {
                label: "empty".into(),
                points: vec![],
            },
        ];
        let paths = draw_bound(
            &series,
            "Upper bound test",
            "provenance",
            &dir.0.join("bound"),
        )
        .unwrap();
        check_outputs(&paths, CHART_W as u32, "Upper bound test");
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(
            svg.contains("baseline (PANet): 40 episode(s), 0% above y = x"),
            "legend"
        );
        assert!(
            svg.contains("SRPNet: 40 episode(s), 25% above y = x"),
            "legend"
        );
        assert!(svg.contains("empty: no points"));
        assert!(svg.contains("1 non-finite value(s)"));

        let stem = dir.0.join("none");
        assert!(matches!(
            draw_bound(&[], "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
        let nan = [BoundSeries {
            label: "x".into(),
            points: vec![(f64::NAN, 0.1)],
        }];
        assert!(matches!(
            draw_bound(&nan, "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn curves_draw_several_losses_and_skip_nans() {
        let dir = TempDir::new("curves");
        let curve = |label: &str, scale: f64| Curve {
            label: label.into(),
            points: (0..300)
                .map(|s| {
                    (
                        s as f64 * 10.0,
                        scale * (1.0 + 2.0 / (1.0 + s as f64 / 20.0)),
                    )
                })
                .collect(),
        };
        let mut total = curve("L_total", 1.0);
        total.points[7].1 = f64::NAN;
        let curves = vec![curve("L_que", 0.6), curve("L_sup", 0.4), total];
        let paths = draw_curves(
            &curves,
            "Training curves test",
            "cross-entropy (nats per pixel)",
            "provenance",
            &dir.0.join("curves"),
        )
        .unwrap();
        check_outputs(&paths, CHART_W as u32, "Training curves test");
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("1 non-finite value(s)"));
        // Markup in labels is escaped, so the SVG stays well-formed.
        let odd = [Curve {
            label: "L_que & <L_sup>".into(),
            points: vec![(0.0, 1.0), (1.0, 0.5)],
        }];
        let paths = draw_curves(&odd, "a < b & c", "loss", "c", &dir.0.join("odd")).unwrap();
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("a &lt; b &amp; c") && svg.contains("L_que &amp; &lt;L_sup&gt;"));
        assert!(!svg.contains("a < b"));
        // One constant point is still a drawable (degenerate) range.
        let flat = [Curve {
            label: "flat".into(),
            points: vec![(5.0, 2.0)],
        }];
        draw_curves(&flat, "flat", "loss", "c", &dir.0.join("flat")).unwrap();
        assert!(matches!(
            draw_curves(&[], "t", "y", "c", &dir.0.join("none")),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn score_histograms_one_panel_per_sample() {
        let dir = TempDir::new("hist");
        let wave = |n: usize, centre: f32, spread: f32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    centre + spread * ((i as f32 * 0.37).sin() + (i as f32 * 0.11).cos()) / 2.0
                })
                .collect()
        };
        let mut cosine_fg = wave(500, 0.6, 0.3);
        cosine_fg.push(f32::NAN);
        let samples = vec![
            ScoreSample {
                label: "fidelity".into(),
                foreground: wave(500, 0.8, 0.15),
                background: wave(3000, 0.2, 0.18),
            },
            ScoreSample {
                label: "cosine".into(),
                foreground: cosine_fg,
                background: wave(3000, 0.35, 0.3),
            },
            ScoreSample {
                label: "missing".into(),
                foreground: vec![],
                background: vec![f32::INFINITY],
            },
        ];
        let paths = draw_score_histograms(
            &samples,
            "Score histograms test",
            "provenance",
            &dir.0.join("hist"),
        )
        .unwrap();
        check_outputs(
            &paths,
            (3 * PANEL_W + 2 * MARGIN) as u32,
            "Score histograms test",
        );
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("2 non-finite value(s)"));
        assert!(svg.contains("no finite scores"));
        assert!(svg.contains("foreground: n = 500"));

        let stem = dir.0.join("none");
        assert!(matches!(
            draw_score_histograms(&[], "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
        let nan = [ScoreSample {
            label: "x".into(),
            foreground: vec![f32::NAN],
            background: vec![],
        }];
        assert!(matches!(
            draw_score_histograms(&nan, "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn histogram_densities_integrate_to_one() {
        let values: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.7).sin()).collect();
        let (lo, hi) = padded_range(values.iter().copied(), 0.0);
        let h = histogram(&values, lo, hi);
        let area: f64 = h.density.iter().sum::<f64>() * (hi - lo) / BINS as f64;
        assert!((area - 1.0).abs() < 1e-9, "{area}");
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn unwritable_folder_is_an_io_error_naming_the_path() {
        let dir = TempDir::new("io");
        let blocker = dir.0.join("file");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let curves = [Curve {
            label: "a".into(),
            points: vec![(0.0, 1.0), (1.0, 0.5)],
        }];
        let e =
            draw_curves(&curves, "t", "y", "c", &blocker.join("sub").join("curves")).unwrap_err();
        assert!(matches!(e, FigureError::Io { .. }), "{e}");
        assert!(e.to_string().contains("curves.png"), "{e}");
    }
}
