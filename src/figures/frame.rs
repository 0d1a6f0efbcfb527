//! The parts every figure shares: the title on top, the body, a legend strip and the caption.
//! Text extents come from plotters (`box_size`, the same measure its own layout uses).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::text::{FONT, text_width};
use super::{CAPTION, CAPTION_PX, Drawn, LEGEND_PX, MARGIN, TEXT, TITLE_PX, err, line_height};

/// Greedy word wrap to `max_px` pixels; explicit newlines start new lines.
pub(super) fn wrap(text: &str, px: u32, max_px: u32) -> Vec<String> {
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

/// Text with its top-left (or top-centre) corner at `(x, y)`.
pub(super) fn draw_text<DB: DrawingBackend>(
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

/// The shape that stands for a series in the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Swatch {
    /// A short line, solid (`0`), dashed (`1`) or dotted (`2`).
    Line(usize),
    /// A filled box (mask overlays, histogram bars).
    Patch,
    /// An outlined box with no fill (the ground truth's outline).
    Outline,
}

/// A short line in dash pattern `dash` (0 solid, 1 dashed, 2 dotted) from `x0` to `x1` at `y`.
pub(super) fn dashed_segment<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, x1, y): (i32, i32, i32),
    dash: usize,
    style: ShapeStyle,
) -> Drawn {
    let (on, off) = match dash % 3 {
        0 => (x1 - x0, 0),
        1 => (7, 4),
        _ => (2, 3),
    };
    let mut x = x0;
    while x < x1 {
        let end = (x + on).min(x1);
        area.draw(&PathElement::new(vec![(x, y), (end, y)], style))
            .map_err(err)?;
        x = end + off;
    }
    Ok(())
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    kind: Swatch,
    (x, y): (i32, i32),
    color: &RGBColor,
) -> Drawn {
    match kind {
        Swatch::Line(dash) => {
            dashed_segment(area, (x - 14, x + 14, y), dash, color.stroke_width(2))
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
        Swatch::Outline => {
            area.draw(&Rectangle::new(
                [(x - 13, y - 8), (x + 13, y + 8)],
                BLACK.stroke_width(1),
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
pub(super) struct LegendEntry {
    pub swatch: Swatch,
    pub color: RGBColor,
    pub label: String,
}

impl LegendEntry {
    pub fn new(swatch: Swatch, color: RGBColor, label: impl Into<String>) -> Self {
        Self {
            swatch,
            color,
            label: label.into(),
        }
    }
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
    let one_line = widths.iter().sum::<i32>() <= max_px;
    let columns = if one_line {
        entries.len()
    } else {
        let widest = widths.iter().copied().max().unwrap_or(1).max(1);
        ((max_px / widest) as usize).clamp(1, entries.len())
    };
    let column_w = widths.iter().copied().max().unwrap_or(0);
    let mut x = 0;
    let mut placed = Vec::with_capacity(entries.len());
    for (i, (e, w)) in entries.into_iter().zip(widths).enumerate() {
        let pos = if one_line {
            x += w;
            (x - w, 0)
        } else {
            (
                (i % columns) as i32 * column_w,
                (i / columns) as i32 * row_h,
            )
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
        draw_swatch(area, e.swatch, (x + SWATCH_W / 2, y + mid), &e.color)?;
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
pub(super) struct Frame {
    pub width: i32,
    title: Vec<String>,
    pub body_h: i32,
    legend: LegendLayout,
    caption: Vec<String>,
}

impl Frame {
    pub fn new(
        width: i32,
        title: &str,
        body_h: i32,
        legend: Vec<LegendEntry>,
        caption: &str,
    ) -> Self {
        let inner = (width - 2 * MARGIN).max(100);
        Self {
            width,
            title: wrap(title, TITLE_PX, inner as u32),
            body_h,
            legend: layout_legend(legend, inner),
            caption: wrap(caption, CAPTION_PX, inner as u32),
        }
    }

    pub fn body_top(&self) -> i32 {
        MARGIN + self.title.len() as i32 * line_height(TITLE_PX) + 4
    }

    pub fn height(&self) -> i32 {
        self.body_top()
            + self.body_h
            + 8
            + self.legend.height
            + 4
            + self.caption.len() as i32 * line_height(CAPTION_PX)
            + MARGIN
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width as u32, self.height() as u32)
    }

    /// Draws title, legend and caption; returns the body area.
    pub fn draw<DB: DrawingBackend>(
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
        Ok(root.clone().shrink(
            (0, self.body_top()),
            (self.width as u32, self.body_h.max(1) as u32),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_word_and_respects_the_width() {
        let text = "query IoU below support recovery in 71% of episodes, and more words here";
        let lines = wrap(text, 14, 200);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), text);
        assert!(
            lines
                .iter()
                .all(|l| text_width(l, 14) <= 200 || !l.contains(' '))
        );
    }

    #[test]
    fn a_legend_that_does_not_fit_becomes_a_grid() {
        let entry = |s: &str| LegendEntry::new(Swatch::Patch, BLACK, s);
        let one = layout_legend(vec![entry("a"), entry("b")], 1000);
        assert_eq!(one.height, line_height(LEGEND_PX) + 6);
        let many = layout_legend(
            (0..6)
                .map(|i| entry(&format!("entry {i} xxxxxxxx")))
                .collect(),
            300,
        );
        assert!(many.height > one.height);
        // Entries in one column line up.
        let xs: std::collections::BTreeSet<i32> = many.entries.iter().map(|e| e.1.0).collect();
        assert!(xs.len() < 6);
    }
}
