//! Training curves: the loss terms of every method, one panel per fold, on shared axes, with
//! the learning-rate drops marked. Colour = method ([`method_color`]), dash = loss term.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::encode::{Scene, write_figure};
use super::frame::{Frame, LegendEntry, Swatch, draw_text};
use super::{
    AXIS_PX, CAPTION, CAPTION_PX, Drawn, FigureError, MARGIN, TEXT, TICK_PX, caption_with_note,
    empty, err, finite_points, line_height, mesh_style, method_color, padded_range,
};

/// One training curve: a loss `term` of a `method`, as (step, value).
#[derive(Debug, Clone)]
pub struct Curve {
    pub method: String,
    pub term: String,
    pub points: Vec<(f64, f64)>,
}

/// The curves of one panel (e.g. one fold).
#[derive(Debug, Clone)]
pub struct CurvePanel {
    pub label: String,
    pub curves: Vec<Curve>,
}

const PANEL_W: i32 = 480;
const PANEL_H: i32 = 330;
const COLUMNS: usize = 2;
const LR_COLOR: RGBColor = RGBColor(110, 110, 110);

/// A curve ready to draw: colour, dash pattern (0 solid, 1 dashed, 2 dotted) and points.
type Line = (RGBColor, usize, Vec<(f64, f64)>);

struct Prepared {
    label: String,
    lines: Vec<Line>,
}

struct CurvesScene {
    frame: Frame,
    panels: Vec<Prepared>,
    x: (f64, f64),
    y: (f64, f64),
    y_label: String,
    lr_drops: Vec<f64>,
}

impl CurvesScene {
    fn draw_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, p: &Prepared) -> Drawn {
        draw_text(area, &p.label, (MARGIN, 0), 15, &TEXT, false)?;
        let (_, area) = area.split_vertically(line_height(15));
        let mut chart = ChartBuilder::on(&area)
            .margin(6)
            .margin_right(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)
            .map_err(err)?;
        mesh_style(
            &mut chart,
            ("training step (episodes)", self.x),
            (&self.y_label, self.y),
            (TICK_PX - 1, AXIS_PX - 1, 6),
        )?;
        for &step in &self.lr_drops {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(step, self.y.0), (step, self.y.1)],
                    6,
                    4,
                    LR_COLOR.stroke_width(1),
                ))
                .map_err(err)?;
            let (x, y) = chart.backend_coord(&(step, self.y.1));
            let plot = chart.plotting_area().strip_coord_spec();
            let (ox, oy) = plot.get_base_pixel();
            draw_text(
                &plot,
                "lr drop",
                (x - ox + 3, y - oy + 2),
                CAPTION_PX,
                &CAPTION,
                false,
            )?;
        }
        for (color, dash, points) in &p.lines {
            let style = color.stroke_width(2);
            if *dash == 0 {
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), style))
                    .map_err(err)?;
            } else {
                let (on, off) = if *dash == 1 { (8, 5) } else { (2, 4) };
                chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().copied(),
                        on,
                        off,
                        style,
                    ))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

impl Scene for CurvesScene {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = self.frame.draw(root)?;
        let columns = self.panels.len().min(COLUMNS);
        let rows = self.panels.len().div_ceil(columns);
        for (panel, area) in self.panels.iter().zip(body.split_evenly((rows, columns))) {
            self.draw_panel(&area, panel)?;
        }
        Ok(())
    }
}

/// Training curves, one panel per [`CurvePanel`] (two per row), all on the same axes; a
/// vertical dashed line at every step in `lr_drops` marks a learning-rate drop. Colour names
/// the method, the dash pattern the loss term (solid, dashed, dotted, in order of first
/// appearance).
///
/// Non-finite points are skipped (the caption says how many). No panels, or no finite point,
/// is [`FigureError::Empty`].
pub fn draw_curves(
    panels: &[CurvePanel],
    lr_drops: &[f64],
    title: &str,
    y_label: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    let mut methods: Vec<&str> = Vec::new();
    let mut terms: Vec<&str> = Vec::new();
    let mut skipped = 0;
    let mut prepared = Vec::with_capacity(panels.len());
    for panel in panels {
        let mut lines = Vec::new();
        for c in &panel.curves {
            let (points, dropped) = finite_points(&c.points);
            skipped += dropped;
            if !methods.contains(&c.method.as_str()) {
                methods.push(&c.method);
            }
            if !terms.contains(&c.term.as_str()) {
                terms.push(&c.term);
            }
            let dash = terms.iter().position(|t| *t == c.term).unwrap_or(0);
            if !points.is_empty() {
                lines.push((method_color(&c.method), dash, points));
            }
        }
        prepared.push(Prepared {
            label: panel.label.clone(),
            lines,
        });
    }
    let all = || {
        prepared
            .iter()
            .flat_map(|p| p.lines.iter().flat_map(|l| l.2.iter()))
    };
    if all().next().is_none() {
        return Err(empty(stem, "no curve has a finite point"));
    }
    let x = padded_range(all().map(|p| p.0), 0.0);
    let y = padded_range(all().map(|p| p.1), 0.05);
    let lr_drops: Vec<f64> = lr_drops
        .iter()
        .copied()
        .filter(|s| s.is_finite() && *s > x.0 && *s < x.1)
        .collect();
    let mut legend: Vec<LegendEntry> = methods
        .iter()
        .map(|m| LegendEntry::new(Swatch::Line(0), method_color(m), *m))
        .collect();
    legend.extend(
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| LegendEntry::new(Swatch::Line(i), BLACK, *t)),
    );
    if !lr_drops.is_empty() {
        legend.push(LegendEntry::new(
            Swatch::Line(1),
            LR_COLOR,
            "learning-rate drop",
        ));
    }
    let columns = prepared.len().min(COLUMNS);
    let rows = prepared.len().div_ceil(columns);
    let frame = Frame::new(
        columns as i32 * PANEL_W + 2 * MARGIN,
        title,
        rows as i32 * PANEL_H,
        legend,
        &caption_with_note(caption, skipped),
    );
    write_figure(
        &CurvesScene {
            frame,
            panels: prepared,
            x,
            y,
            y_label: y_label.to_string(),
            lr_drops,
        },
        stem,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{TempDir, check_outputs};
    use super::*;

    fn curve(method: &str, term: &str, scale: f64) -> Curve {
        Curve {
            method: method.into(),
            term: term.into(),
            points: (0..300)
                .map(|s| {
                    (
                        s as f64 * 2.0,
                        scale * (1.0 + 2.0 / (1.0 + s as f64 / 20.0)),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn curves_draw_a_panel_per_fold_with_the_lr_drop() {
        let dir = TempDir::new("curves");
        let mut panels: Vec<CurvePanel> = (0..4)
            .map(|f| CurvePanel {
                label: format!("fold {f}"),
                curves: vec![
                    curve("PANet", "L_que", 0.6),
                    curve("SRPNet", "L_que", 0.5),
                    curve("SRPNet", "L_sup", 0.4),
                ],
            })
            .collect();
        panels[2].curves[0].points[7].1 = f64::NAN;
        let paths = draw_curves(
            &panels,
            &[450.0, 10_000.0],
            "Training curves test",
            "cross-entropy (nats per pixel)",
            "provenance",
            &dir.0.join("curves"),
        )
        .unwrap();
        let (_, svg) = check_outputs(
            &paths,
            (2 * PANEL_W + 2 * MARGIN) as u32,
            "Training curves test",
        );
        assert!(svg.contains("1 non-finite value(s)"));
        for f in 0..4 {
            assert!(svg.contains(&format!("fold {f}")));
        }
        // One drop lies inside the steps drawn, one beyond: one mark per panel.
        assert_eq!(svg.matches("lr drop").count(), 4);
        assert!(svg.contains("learning-rate drop"));
        // Markup in labels is escaped, so the SVG stays well-formed.
        let odd = [CurvePanel {
            label: "a < b & c".into(),
            curves: vec![Curve {
                method: "L_que & <L_sup>".into(),
                term: "t".into(),
                points: vec![(0.0, 1.0), (1.0, 0.5)],
            }],
        }];
        let paths = draw_curves(&odd, &[], "t", "loss", "c", &dir.0.join("odd")).unwrap();
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("a &lt; b &amp; c") && svg.contains("L_que &amp; &lt;L_sup&gt;"));
        // One constant point is still a drawable (degenerate) range.
        let flat = [CurvePanel {
            label: "flat".into(),
            curves: vec![Curve {
                method: "m".into(),
                term: "t".into(),
                points: vec![(5.0, 2.0)],
            }],
        }];
        draw_curves(&flat, &[], "flat", "loss", "c", &dir.0.join("flat")).unwrap();
        assert!(matches!(
            draw_curves(&[], &[], "t", "y", "c", &dir.0.join("none")),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn unwritable_folder_is_an_io_error_naming_the_path() {
        let dir = TempDir::new("io");
        let blocker = dir.0.join("file");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let panels = [CurvePanel {
            label: "p".into(),
            curves: vec![curve("a", "t", 1.0)],
        }];
        let stem = blocker.join("sub").join("curves");
        let e = draw_curves(&panels, &[], "t", "y", "c", &stem).unwrap_err();
        assert!(matches!(e, FigureError::Io { .. }), "{e}");
        assert!(e.to_string().contains("curves.png"), "{e}");
    }
}
