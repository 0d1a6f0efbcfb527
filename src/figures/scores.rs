//! Score margins of matched models: for every query pixel, its similarity to the foreground
//! prototype minus its similarity to the background prototype, split by the pixel's true label.
//! A pixel is predicted foreground exactly when its margin is above 0 (whatever the logit
//! scale), so the figure shows how each metric separates the two classes. One panel per model,
//! all on the same axes.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::encode::{Scene, write_figure};
use super::frame::{Frame, LegendEntry, Swatch, draw_text};
use super::{
    AXIS_PX, CAPTION, CAPTION_PX, Drawn, FigureError, MARGIN, TEXT, TICK_PX, bin_counts,
    caption_with_note, empty, err, line_height, mesh_style, method_color, padded_range, percent,
};

/// The margins `s(x, P_fg) - s(x, P_bg)` of one model's query pixels, split by true label.
/// `label` names the model (its method colour is used).
#[derive(Debug, Clone)]
pub struct ScoreSample {
    pub label: String,
    pub foreground: Vec<f32>,
    pub background: Vec<f32>,
}

const BINS: usize = 40;
const PANEL_W: i32 = 470;
const PANEL_H: i32 = 380;
const BACKGROUND_COLOR: RGBColor = RGBColor(120, 120, 120);

/// Normalised densities (integrating to 1) over `BINS` equal bins of `range`.
fn density(values: &[f64], range: (f64, f64)) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let width = (range.1 - range.0) / BINS as f64;
    let n = values.len() as f64;
    bin_counts(values.iter().copied(), range, BINS)
        .into_iter()
        .map(|c| c as f64 / (n * width))
        .collect()
}

struct Panel {
    label: String,
    color: RGBColor,
    stats: String,
    /// Foreground then background densities.
    densities: [Vec<f64>; 2],
}

struct ScoresScene {
    frame: Frame,
    panels: Vec<Panel>,
    x: (f64, f64),
    top: f64,
}

impl ScoresScene {
    fn draw_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, p: &Panel) -> Drawn {
        let area = area.margin(4, 4, MARGIN, 4);
        draw_text(&area, &p.label, (0, 0), 15, &TEXT, false)?;
        draw_text(
            &area,
            &p.stats,
            (0, line_height(15)),
            CAPTION_PX,
            &CAPTION,
            false,
        )?;
        let (_, area) = area.split_vertically(line_height(15) + line_height(CAPTION_PX) + 4);
        let (lo, hi) = self.x;
        let mut chart = ChartBuilder::on(&area)
            .margin(4)
            .margin_right(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, 0.0..self.top)
            .map_err(err)?;
        mesh_style(
            &mut chart,
            ("margin s(x, P_fg) - s(x, P_bg)", (lo, hi)),
            ("density (1 / margin unit)", (0.0, self.top)),
            (TICK_PX - 1, AXIS_PX - 1, 6),
        )?;
        let width = (hi - lo) / BINS as f64;
        for (d, (color, fill)) in p
            .densities
            .iter()
            .zip([(p.color, 0.45), (BACKGROUND_COLOR, 0.15)])
        {
            if d.is_empty() {
                continue;
            }
            chart
                .draw_series(d.iter().enumerate().map(|(b, &v)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, v)], color.mix(fill).filled())
                }))
                .map_err(err)?;
            // The outline of the histogram as a step line over the translucent bars.
            let mut steps = vec![(lo, 0.0)];
            for (b, &v) in d.iter().enumerate() {
                let x0 = lo + b as f64 * width;
                steps.extend([(x0, v), (x0 + width, v)]);
            }
            steps.push((hi, 0.0));
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))
                .map_err(err)?;
        }
        if lo < 0.0 && hi > 0.0 {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, 0.0), (0.0, self.top)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
        }
        if p.densities.iter().all(|d| d.is_empty()) {
            let (w, h) = chart.plotting_area().dim_in_pixel();
            let plot = chart.plotting_area().strip_coord_spec();
            let at = (w as i32 / 2, h as i32 / 2 - 8);
            draw_text(&plot, "no finite scores", at, 14, &CAPTION, true)?;
        }
        Ok(())
    }
}

impl Scene for ScoresScene {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        let areas = body.split_evenly((1, self.panels.len()));
        for (panel, area) in self.panels.iter().zip(areas) {
            self.draw_panel(&area, panel)?;
        }
        Ok(())
    }
}

/// Histograms (normalised densities) of the margins of foreground pixels (filled, in the
/// model's method colour) and background pixels (grey), one panel per sample side by side,
/// every panel on the same x and y axes; a dashed line marks margin 0, the decision boundary.
/// Each panel states the share of foreground pixels above 0 and of background pixels below.
///
/// Non-finite values are skipped (the caption says how many). No samples, or no finite value in
/// any sample, is [`FigureError::Empty`]; a sample without values gets a panel that says so.
pub fn draw_score_margins(
    samples: &[ScoreSample],
    title: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if samples.is_empty() {
        return Err(empty(stem, "no score samples were given"));
    }
    let mut skipped = 0;
    let mut finite = |v: &[f32]| -> Vec<f64> {
        let kept: Vec<f64> = v
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        skipped += v.len() - kept.len();
        kept
    };
    let values: Vec<[Vec<f64>; 2]> = samples
        .iter()
        .map(|s| [finite(&s.foreground), finite(&s.background)])
        .collect();
    if values.iter().all(|[f, b]| f.is_empty() && b.is_empty()) {
        return Err(empty(stem, "no sample has a finite score"));
    }
    // Shared axes: one x range over every sample, one density scale.
    let x = padded_range(values.iter().flatten().flatten().copied(), 0.02);
    let mut panels = Vec::with_capacity(samples.len());
    for (s, [fg, bg]) in samples.iter().zip(&values) {
        let right = fg.iter().filter(|&&v| v > 0.0).count();
        let left = bg.iter().filter(|&&v| v < 0.0).count();
        let stats = format!(
            "foreground: n = {}, {} above 0; background: n = {}, {} below 0",
            fg.len(),
            percent(right, fg.len()),
            bg.len(),
            percent(left, bg.len())
        );
        panels.push(Panel {
            label: s.label.clone(),
            color: method_color(&s.label),
            stats,
            densities: [density(fg, x), density(bg, x)],
        });
    }
    let top = panels
        .iter()
        .flat_map(|p| p.densities.iter().flatten().copied())
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.08 } else { 1.0 };
    let mut legend: Vec<LegendEntry> = panels
        .iter()
        .map(|p| {
            LegendEntry::new(
                Swatch::Patch,
                p.color,
                format!("{}: foreground pixels", p.label),
            )
        })
        .collect();
    legend.push(LegendEntry::new(
        Swatch::Patch,
        BACKGROUND_COLOR,
        "background pixels",
    ));
    legend.push(LegendEntry::new(
        Swatch::Line(1),
        BLACK,
        "margin 0: the decision boundary",
    ));
    let frame = Frame::new(
        panels.len() as i32 * PANEL_W + 2 * MARGIN,
        title,
        PANEL_H,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &ScoresScene {
            frame,
            panels,
            x,
            top,
        },
        stem,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{TempDir, check_outputs};
    use super::*;

    fn wave(n: usize, centre: f32, spread: f32) -> Vec<f32> {
        (0..n)
            .map(|i| centre + spread * ((i as f32 * 0.37).sin() + (i as f32 * 0.11).cos()) / 2.0)
            .collect()
    }

    #[test]
    fn score_margins_one_panel_per_model_on_shared_axes() {
        let dir = TempDir::new("scores");
        let mut cosine_fg = wave(500, 0.3, 0.3);
        cosine_fg.push(f32::NAN);
        let samples = vec![
            ScoreSample {
                label: "fidelity".into(),
                foreground: wave(500, 0.6, 0.15),
                background: wave(3000, -0.4, 0.18),
            },
            ScoreSample {
                label: "cosine".into(),
                foreground: cosine_fg,
                background: wave(3000, -0.1, 0.3),
            },
            ScoreSample {
                label: "missing".into(),
                foreground: vec![],
                background: vec![f32::INFINITY],
            },
        ];
        let paths =
            draw_score_margins(&samples, "Margins test", "provenance", &dir.0.join("s")).unwrap();
        let (_, svg) = check_outputs(&paths, (3 * PANEL_W + 2 * MARGIN) as u32, "Margins test");
        assert!(svg.contains("2 non-finite value(s)"));
        assert!(svg.contains("no finite scores"));
        assert!(
            svg.contains("foreground: n = 500, 100% above 0; background: n = 3000, 100% below 0")
        );

        let stem = dir.0.join("none");
        assert!(matches!(
            draw_score_margins(&[], "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
        let nan = [ScoreSample {
            label: "x".into(),
            foreground: vec![f32::NAN],
            background: vec![],
        }];
        assert!(matches!(
            draw_score_margins(&nan, "t", "c", &stem),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn densities_integrate_to_one() {
        let values: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.7).sin()).collect();
        let range = padded_range(values.iter().copied(), 0.0);
        let d = density(&values, range);
        let area: f64 = d.iter().sum::<f64>() * (range.1 - range.0) / BINS as f64;
        assert!((area - 1.0).abs() < 1e-9, "{area}");
    }
}
