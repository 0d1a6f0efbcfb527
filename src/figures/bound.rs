//! The upper bound, measured: per episode, the support-recovery IoU (how well the prototypes
//! recover their own support mask) against the query IoU. One panel per method: a 2-D histogram
//! (no overplotting: a bin's shade is its episode count) with the diagonal y = x, and the two
//! marginal histograms. The title states what the data show ([`bound_title`]).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::encode::{Scene, write_figure};
use super::frame::{Frame, LegendEntry, Swatch, draw_text};
use super::{
    AXIS_PX, CAPTION, CAPTION_PX, Drawn, FigureError, MARGIN, TEXT, TICK_PX, bin_counts,
    caption_with_note, empty, err, finite_points, line_height, mesh_style, method_color, percent,
};

/// One method's episodes: (support-recovery IoU, query IoU), in [0, 1].
#[derive(Debug, Clone)]
pub struct BoundSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Bins per axis of the 2-D histogram and of the marginals (0.05 wide on [0, 1]).
const BINS: usize = 20;
const PANEL_W: i32 = 440;
const PANEL_H: i32 = 480;
const MARGINAL: i32 = 70;
const PANEL_TITLE_PX: u32 = 15;

// ANCHOR: title
/// The figure's title, computed from the data: the share of episodes whose query IoU lies below
/// their support-recovery IoU (the paper's upper bound holds for them), over all methods, then
/// per method. Non-finite points are left out.
pub fn bound_title(series: &[BoundSeries]) -> String {
    let below = |points: &[(f64, f64)]| points.iter().filter(|(x, y)| y < x).count();
    let (mut all_below, mut all) = (0, 0);
    let mut parts = Vec::new();
    for s in series {
        let (points, _) = finite_points(&s.points);
        if points.is_empty() {
            continue;
        }
        all_below += below(&points);
        all += points.len();
        parts.push(format!(
            "{} {}",
            s.label,
            percent(below(&points), points.len())
        ));
    }
    format!(
        "Query IoU below support recovery in {} of {all} episodes ({})",
        percent(all_below, all),
        parts.join(", ")
    )
}
// ANCHOR_END: title

struct Panel {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

struct BoundScene {
    frame: Frame,
    panels: Vec<Panel>,
    range: (f64, f64),
}

impl BoundScene {
    fn draw_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, p: &Panel) -> Drawn {
        let (lo, hi) = self.range;
        let below = p.points.iter().filter(|(x, y)| y < x).count();
        let title = format!(
            "{}: {} episodes, {} below y = x",
            p.label,
            p.points.len(),
            percent(below, p.points.len())
        );
        draw_text(area, &title, (MARGIN, 0), PANEL_TITLE_PX, &TEXT, false)?;

        // The 2-D histogram: each bin shaded by its count (the darkest bin holds `most`).
        let width = (hi - lo) / BINS as f64;
        let mut grid = vec![0usize; BINS * BINS];
        for &(x, y) in &p.points {
            let bx = (((x - lo) / width) as usize).min(BINS - 1);
            let by = (((y - lo) / width) as usize).min(BINS - 1);
            grid[by * BINS + bx] += 1;
        }
        let most = grid.iter().copied().max().unwrap_or(0).max(1);
        let note = format!("darkest bin: {most} episode(s)");
        let y = line_height(PANEL_TITLE_PX);
        draw_text(area, &note, (MARGIN, y), CAPTION_PX, &CAPTION, false)?;
        let (_, area) = area.split_vertically(y + line_height(CAPTION_PX) + 4);
        let (w, _) = area.dim_in_pixel();
        let (top, rest) = area.split_vertically(MARGINAL);
        let (main, right) = rest.split_horizontally(w as i32 - MARGINAL);
        let (top, _) = top.split_horizontally(w as i32 - MARGINAL);
        let mut chart = ChartBuilder::on(&main)
            .margin(6)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(err)?;
        mesh_style(
            &mut chart,
            ("support-recovery IoU", (lo, hi)),
            ("query IoU", (lo, hi)),
            (TICK_PX - 1, AXIS_PX - 1, 5),
        )?;
        chart
            .draw_series(
                grid.iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| {
                        let (x0, y0) = (
                            lo + (i % BINS) as f64 * width,
                            lo + (i / BINS) as f64 * width,
                        );
                        let shade = 0.12 + 0.88 * c as f64 / most as f64;
                        Rectangle::new(
                            [(x0, y0), (x0 + width, y0 + width)],
                            p.color.mix(shade).filled(),
                        )
                    }),
            )
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(lo, lo), (hi, hi)],
                8,
                5,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        // Marginals, on the main chart's axes: support recovery on top, query on the right.
        let xs = bin_counts(p.points.iter().map(|p| p.0), (lo, hi), BINS);
        let ys = bin_counts(p.points.iter().map(|p| p.1), (lo, hi), BINS);
        let top_count = xs.iter().chain(&ys).copied().max().unwrap_or(0).max(1) as f64 * 1.05;
        let mut chart = ChartBuilder::on(&top)
            .margin(6)
            .margin_bottom(0)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, 0.0..top_count)
            .map_err(err)?;
        chart
            .draw_series(xs.iter().enumerate().map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width, c as f64)],
                    p.color.mix(0.7).filled(),
                )
            }))
            .map_err(err)?;
        let mut chart = ChartBuilder::on(&right)
            .margin(6)
            .margin_left(0)
            .x_label_area_size(44)
            .build_cartesian_2d(0.0..top_count, lo..hi)
            .map_err(err)?;
        chart
            .draw_series(ys.iter().enumerate().map(|(b, &c)| {
                let y0 = lo + b as f64 * width;
                Rectangle::new(
                    [(0.0, y0), (c as f64, y0 + width)],
                    p.color.mix(0.7).filled(),
                )
            }))
            .map_err(err)?;
        Ok(())
    }
}

impl Scene for BoundScene {
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

/// One panel per series: the 2-D histogram of (support-recovery IoU, query IoU) with y = x and
/// the marginal histograms, all panels on the same axes. The title is [`bound_title`] followed
/// by `context` (e.g. "1-shot, synthetic-5i"), so it says what the data show.
///
/// Non-finite points are skipped (the caption says how many). No series, or no finite point in
/// any series, is [`FigureError::Empty`]; a series without points gets no panel. The axes span
/// [0, 1], widened if a point lies outside.
pub fn draw_bound(
    series: &[BoundSeries],
    context: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if series.is_empty() {
        return Err(empty(stem, "no series were given"));
    }
    let mut skipped = 0;
    let mut panels = Vec::with_capacity(series.len());
    for s in series {
        let (points, dropped) = finite_points(&s.points);
        skipped += dropped;
        if !points.is_empty() {
            panels.push(Panel {
                label: s.label.clone(),
                color: method_color(&s.label),
                points,
            });
        }
    }
    if panels.is_empty() {
        return Err(empty(stem, "no series has a finite point"));
    }
    let all = panels
        .iter()
        .flat_map(|p| &p.points)
        .flat_map(|&(x, y)| [x, y]);
    let range = all.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let legend = vec![
        LegendEntry::new(
            Swatch::Line(1),
            BLACK,
            "y = x: query IoU equal to support recovery",
        ),
        LegendEntry::new(
            Swatch::Patch,
            RGBColor(120, 120, 120),
            format!(
                "bins of {:.2} x {:.2}; darker = more episodes; bars: marginal counts",
                (range.1 - range.0) / BINS as f64,
                (range.1 - range.0) / BINS as f64
            ),
        ),
    ];
    let title = format!("{} - {context}", bound_title(series));
    let frame = Frame::new(
        (panels.len() as i32 * PANEL_W + 2 * MARGIN).max(PANEL_W + 2 * MARGIN),
        &title,
        PANEL_H,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &BoundScene {
            frame,
            panels,
            range,
        },
        stem,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{TempDir, check_outputs};
    use super::*;

    fn series() -> Vec<BoundSeries> {
        vec![
            BoundSeries {
                label: "PANet".into(),
                // 40 points below the diagonal, and one NaN.
                points: (0..40)
                    .map(|i| {
                        let x = (i as f64 + 1.0) / 41.0;
                        (x, x * 0.8)
                    })
                    .chain([(f64::NAN, 0.5)])
                    .collect(),
            },
            BoundSeries {
                label: "SRPNet".into(),
                // 10 of 40 above the diagonal.
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
        ]
    }

    #[test]
    fn the_title_states_the_share_below_the_diagonal_computed_from_the_data() {
        // 40 + 30 of 80 below: 88% (87.5 rounds to 88).
        assert_eq!(
            bound_title(&series()),
            "Query IoU below support recovery in 88% of 80 episodes (PANet 100%, SRPNet 75%)"
        );
        let mut flipped = series();
        for s in &mut flipped {
            for p in &mut s.points {
                *p = (p.1, p.0);
            }
        }
        assert!(bound_title(&flipped).starts_with("Query IoU below support recovery in 13% of"));
    }

    #[test]
    fn bound_plot_draws_a_panel_per_method_and_skips_nans() {
        let dir = TempDir::new("bound");
        let paths = draw_bound(
            &series(),
            "1-shot, test",
            "provenance",
            &dir.0.join("bound"),
        )
        .unwrap();
        let (_, svg) = check_outputs(&paths, (2 * PANEL_W + 2 * MARGIN) as u32, "88%");
        assert!(svg.contains("PANet: 40 episodes, 100% below y = x"));
        assert!(svg.contains("SRPNet: 40 episodes, 75% below y = x"));
        assert!(
            !svg.contains("empty:"),
            "no panel for a series without points"
        );
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
}
