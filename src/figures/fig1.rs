//! The paper's Fig. 1: one row per test episode; the support recovered by the baseline's and by
//! SRP's prototypes, and the query predicted by both, the ground truth outlined on every panel.
//! The episodes are picked by a rule ([`quantile_rows`]), printed in the caption
//! ([`selection_rule`]), never by eye.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::encode::{Placed, Scene, write_figure};
use super::frame::{Frame, LegendEntry, Swatch, draw_text};
use super::{
    FigureError, GROUND_TRUTH, MARGIN, TEXT, caption_with_note, empty, err, invalid, line_height,
    method_color,
};

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

// ANCHOR: selection
/// The rows of Fig. 1, chosen by rule: `gains[i]` is episode i's support-recovery gain (SRP's
/// IoU minus the baseline's). Episodes are sorted by gain (non-finite gains left out) and cut
/// into `rows` groups of equal count; the episode at the middle of each group is picked, so the
/// rows sit at the (k + 0.5) / rows quantiles of the gain: for 4 rows the 12.5th, 37.5th, 62.5th
/// and 87.5th percentiles. Returned in order of increasing gain.
pub fn quantile_rows(gains: &[f64], rows: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..gains.len()).filter(|&i| gains[i].is_finite()).collect();
    order.sort_by(|&a, &b| gains[a].total_cmp(&gains[b]).then(a.cmp(&b)));
    let n = order.len();
    if n <= rows {
        return order;
    }
    (0..rows)
        .map(|k| order[((2 * k + 1) * n) / (2 * rows)])
        .collect()
}

/// The sentence that states [`quantile_rows`]'s rule, for the caption.
pub fn selection_rule(candidates: usize, rows: usize, fold: usize) -> String {
    let percentiles: Vec<String> = (0..rows)
        .map(|k| {
            let p = 100.0 * (k as f64 + 0.5) / rows as f64;
            format!("{}", (p * 10.0).round() / 10.0)
        })
        .collect();
    format!(
        "Rows chosen by rule: of the first {candidates} test episodes of fold {fold}, the episodes at the \
         {} percentiles of SRP's support-recovery gain (SRP IoU minus baseline IoU on the support), \
         lowest gain on top.",
        percentiles.join(", ")
    )
}
// ANCHOR_END: selection

const CELL: usize = 160;
const CELL_GAP: usize = 10;
const GROUP_GAP: usize = 26;
const HEADER_PX: u32 = 12;
const ROW_LABEL_PX: u32 = 14;
const IOU_PX: u32 = 13;
const IGNORE_GREY: [u8; 3] = [150, 150, 150];

fn column_x(col: usize) -> usize {
    MARGIN as usize + col * (CELL + CELL_GAP) + if col >= 3 { GROUP_GAP } else { 0 }
}

fn width() -> usize {
    column_x(5) + CELL + MARGIN as usize
}

fn header_h() -> usize {
    2 * line_height(HEADER_PX) as usize + 6
}

fn row_h() -> usize {
    line_height(ROW_LABEL_PX) as usize + 2 + CELL + line_height(IOU_PX) as usize + 10
}

/// Picture with an optional predicted mask and the ground-truth outline drawn over it, resized
/// to fit a `CELL` x `CELL` box (aspect kept). Prediction: its colour at 45% over the picture
/// and a solid 1-pixel edge. Ground truth, on top: a 2-pixel outline in [`GROUND_TRUTH`] just
/// inside the object and a 1-pixel black edge just outside (visible on light and dark pictures);
/// without a prediction the object is also tinted lightly. Ignore (255): neutral grey.
fn composite(picture: &Picture, truth: &[u8], prediction: Option<(&[u8], RGBColor)>) -> Placed {
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
    // Nearest-neighbour masks at the panel size: 0 background, 1 foreground, 2 ignore.
    let labels = |mask: &[u8]| -> Vec<u8> {
        (0..ph * pw)
            .map(|i| {
                let sy = (((i / pw) as f64 + 0.5) / scale) as usize;
                let sx = (((i % pw) as f64 + 0.5) / scale) as usize;
                let (sy, sx) = (sy.min(picture.height - 1), sx.min(picture.width - 1));
                match mask[sy * picture.width + sx] {
                    0 => 0,
                    255 => 2,
                    _ => 1,
                }
            })
            .collect()
    };
    // Whether a pixel within `r` of (y, x) is (or is not) foreground in `l`.
    let near = |l: &[u8], y: usize, x: usize, r: usize, want_fg: bool| -> bool {
        let (y0, y1) = (y.saturating_sub(r), (y + r).min(ph - 1));
        let (x0, x1) = (x.saturating_sub(r), (x + r).min(pw - 1));
        (y0..=y1).any(|yy| (x0..=x1).any(|xx| (l[yy * pw + xx] == 1) == want_fg))
    };
    let blend = |p: [u8; 3], q: [u8; 3], a: f64| -> [u8; 3] {
        [0, 1, 2].map(|i| (p[i] as f64 * (1.0 - a) + q[i] as f64 * a).round() as u8)
    };
    let truth = labels(truth);
    let predicted = prediction.map(|(m, c)| (labels(m), [c.0, c.1, c.2]));
    let gt = [GROUND_TRUTH.0, GROUND_TRUTH.1, GROUND_TRUTH.2];
    let mut rgb = resized.into_raw();
    for y in 0..ph {
        for x in 0..pw {
            let i = y * pw + x;
            let mut p = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]];
            if truth[i] == 2 {
                p = blend(p, IGNORE_GREY, 0.7);
            }
            match &predicted {
                Some((l, c)) if l[i] == 1 && near(l, y, x, 1, false) => p = *c,
                Some((l, c)) if l[i] == 1 => p = blend(p, *c, 0.45),
                None if truth[i] == 1 => p = blend(p, gt, 0.25),
                _ => {}
            }
            if truth[i] == 1 && near(&truth, y, x, 2, false) {
                p = gt;
            } else if truth[i] != 1 && near(&truth, y, x, 1, true) {
                p = [0, 0, 0];
            }
            rgb[3 * i..3 * i + 3].copy_from_slice(&p);
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
    headers: [[String; 2]; 6],
    /// (row label, IoU texts of the six panels) per row.
    rows: Vec<(String, [String; 6])>,
    panels: Vec<Placed>,
}

impl Scene for Fig1Scene {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let body = self.frame.draw(root)?;
        for (col, lines) in self.headers.iter().enumerate() {
            let cx = (column_x(col) + CELL / 2) as i32;
            for (j, line) in lines.iter().enumerate() {
                let y = j as i32 * line_height(HEADER_PX);
                draw_text(&body, line, (cx, y), HEADER_PX, &TEXT, true)?;
            }
        }
        // A thin rule between the support and the query halves.
        let rule_x = (column_x(3) - (GROUP_GAP + CELL_GAP) / 2) as i32;
        body.draw(&PathElement::new(
            vec![(rule_x, 0), (rule_x, self.frame.body_h - 4)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))
        .map_err(err)?;
        for (r, (label, ious)) in self.rows.iter().enumerate() {
            let top = (header_h() + r * row_h()) as i32;
            draw_text(&body, label, (MARGIN, top), ROW_LABEL_PX, &TEXT, false)?;
            let img_top = top + line_height(ROW_LABEL_PX) + 2;
            for (col, iou) in ious.iter().enumerate() {
                let x = column_x(col) as i32;
                body.draw(&Rectangle::new(
                    [
                        (x - 1, img_top - 1),
                        (x + CELL as i32, img_top + CELL as i32),
                    ],
                    RGBColor(200, 200, 200).stroke_width(1),
                ))
                .map_err(err)?;
                let at = (x + CELL as i32 / 2, img_top + CELL as i32 + 3);
                draw_text(&body, iou, at, IOU_PX, &TEXT, true)?;
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

/// Paper Fig. 1 style: one row per episode; columns: support with its ground truth, support
/// recovered by the baseline's prototypes and by SRP's (IoU under each panel), query with its
/// ground truth, baseline prediction, SRPNet prediction (IoU). `methods` names the baseline and
/// SRPNet (their colours come from [`method_color`]); `rule` says how the rows were chosen and
/// opens the caption (see [`selection_rule`]).
///
/// Writes `stem.png` and `stem.svg` and returns both paths. No rows is [`FigureError::Empty`]; a
/// picture or mask of the wrong length is [`FigureError::InvalidInput`]; a non-finite IoU is
/// shown as "n/a" and counted in the caption's note.
pub fn draw_fig1(
    rows: &[Fig1Row],
    (baseline, srpnet): (&str, &str),
    rule: &str,
    title: &str,
    caption: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    if rows.is_empty() {
        return Err(empty(stem, "no episodes (rows) were given"));
    }
    let (baseline_color, srp_color) = (method_color(baseline), method_color(srpnet));
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
        let gain = row.support_srp_iou - row.support_baseline_iou;
        let gain = if gain.is_finite() {
            format!(" (support-recovery gain {gain:+.3})")
        } else {
            String::new()
        };
        labels.push((
            format!("{}. {}{gain}", r + 1, row.class_name),
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
            (&row.support, &row.support_truth, None),
            (
                &row.support,
                &row.support_truth,
                Some((&row.support_baseline, baseline_color)),
            ),
            (
                &row.support,
                &row.support_truth,
                Some((&row.support_srp, srp_color)),
            ),
            (&row.query, &row.query_truth, None),
            (
                &row.query,
                &row.query_truth,
                Some((&row.query_baseline, baseline_color)),
            ),
            (
                &row.query,
                &row.query_truth,
                Some((&row.query_srpnet, srp_color)),
            ),
        ];
        for (col, (picture, truth, prediction)) in cells.into_iter().enumerate() {
            let prediction = prediction.map(|(m, c)| (m.as_slice(), c));
            panels.push((r, col, composite(picture, truth, prediction)));
        }
    }
    let legend = vec![
        LegendEntry::new(Swatch::Outline, GROUND_TRUTH, "ground truth (outline)"),
        LegendEntry::new(
            Swatch::Patch,
            baseline_color,
            format!("{baseline} prototypes"),
        ),
        LegendEntry::new(
            Swatch::Patch,
            srp_color,
            format!("{srpnet} (SRP) prototypes"),
        ),
        LegendEntry::new(
            Swatch::Patch,
            RGBColor(IGNORE_GREY[0], IGNORE_GREY[1], IGNORE_GREY[2]),
            "ignored pixels (255)",
        ),
    ];
    let body_h = (header_h() + rows.len() * row_h()) as i32;
    let frame = Frame::new(
        width() as i32,
        title,
        body_h,
        legend,
        &caption_with_note(&format!("{rule}\n{caption}"), skipped),
    );
    // Place the panels: centred in their cells, in root coordinates.
    let body_top = frame.body_top() as usize;
    let panels = panels
        .into_iter()
        .map(|(r, col, mut p)| {
            let top = body_top + header_h() + r * row_h() + line_height(ROW_LABEL_PX) as usize + 2;
            p.x = column_x(col) + (CELL - p.width) / 2;
            p.y = top + (CELL - p.height) / 2;
            p
        })
        .collect();
    let s = |a: &str, b: &str| [a.to_string(), b.to_string()];
    let headers = [
        s("support", "with its ground truth"),
        s("support recovered by", &format!("{baseline} prototypes")),
        s(
            "support recovered by",
            &format!("{srpnet} (SRP) prototypes"),
        ),
        s("query", "with its ground truth"),
        s("query predicted by", baseline),
        s("query predicted by", srpnet),
    ];
    write_figure(
        &Fig1Scene {
            frame,
            headers,
            rows: labels,
            panels,
        },
        stem,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{TempDir, check_outputs};
    use super::*;

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

    fn row(name: &str, iou: f64) -> Fig1Row {
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

    const METHODS: (&str, &str) = ("PANet", "SRPNet");

    #[test]
    fn fig1_writes_png_and_svg_with_embedded_pictures_and_states_its_rule() {
        let dir = TempDir::new("fig1");
        let rows = vec![row("cat", 0.87), row("bus", f64::NAN)];
        let rule = selection_rule(40, 2, 0);
        let paths = draw_fig1(
            &rows,
            METHODS,
            &rule,
            "Fig 1 test",
            "seed 0",
            &dir.0.join("fig1"),
        )
        .unwrap();
        let ((_, h), svg) = check_outputs(&paths, width() as u32, "Fig 1 test");
        assert!(h as usize > 2 * row_h());
        assert_eq!(svg.matches("<image ").count(), 12);
        assert!(svg.contains("data:image/png;base64,"));
        assert!(svg.contains("IoU n/a"));
        assert!(svg.contains("non-finite"));
        assert!(
            svg.contains("support-recovery gain +0.320"),
            "the row states its gain"
        );
        // The caption states the rule (wrapped over lines: compare word by word).
        for word in [
            "Rows",
            "chosen",
            "rule:",
            "first",
            "40",
            "25,",
            "75",
            "percentiles",
        ] {
            assert!(svg.contains(word), "the caption lacks {word:?}");
        }
        let img = image::open(&paths[0]).unwrap().to_rgb8();
        let mid = column_x(0) as u32 + CELL as u32 / 2;
        assert!((0..h).any(|y| *img.get_pixel(mid, y) != image::Rgb([255, 255, 255])));
    }

    #[test]
    fn the_ground_truth_is_outlined_on_every_panel() {
        let r = row("cat", 0.5);
        let gt = [GROUND_TRUTH.0, GROUND_TRUTH.1, GROUND_TRUTH.2];
        let count = |p: &Placed| p.rgb.chunks(3).filter(|c| *c == gt).count();
        let plain = composite(&r.query, &r.query_truth, None);
        let predicted = composite(
            &r.query,
            &r.query_truth,
            Some((&r.query_srpnet, method_color("SRPNet"))),
        );
        let blank = composite(&r.query, &vec![0; 24 * 24], Some((&r.query_srpnet, BLUE)));
        assert!(count(&plain) > 20, "outline on the ground-truth panel");
        assert!(count(&predicted) > 20, "outline on the prediction panel");
        assert_eq!(count(&blank), 0, "no outline without a ground-truth object");
    }

    #[test]
    fn rows_sit_at_the_quantiles_of_the_gain() {
        // Eight episodes, gains 0.0..0.7 shuffled; the middles of four groups of two are the
        // 2nd, 4th, 6th and 8th smallest (0-based sorted positions 1, 3, 5, 7).
        let gains = [0.5, 0.1, 0.7, 0.0, f64::NAN, 0.3, 0.6, 0.2, 0.4];
        let picked = quantile_rows(&gains, 4);
        let values: Vec<f64> = picked.iter().map(|&i| gains[i]).collect();
        assert_eq!(values, vec![0.1, 0.3, 0.5, 0.7]);
        // Fewer candidates than rows: all of them, sorted.
        assert_eq!(quantile_rows(&[0.2, -0.1], 4), vec![1, 0]);
        assert!(quantile_rows(&[f64::NAN], 4).is_empty());
        assert_eq!(
            selection_rule(100, 4, 2),
            "Rows chosen by rule: of the first 100 test episodes of fold 2, the episodes at the \
             12.5, 37.5, 62.5, 87.5 percentiles of SRP's support-recovery gain (SRP IoU minus \
             baseline IoU on the support), lowest gain on top."
        );
    }

    #[test]
    fn fig1_rejects_empty_rows_and_bad_masks() {
        let dir = TempDir::new("fig1-bad");
        let stem = dir.0.join("fig1");
        let draw = |rows: &[Fig1Row]| draw_fig1(rows, METHODS, "rule", "t", "c", &stem);
        assert!(matches!(draw(&[]), Err(FigureError::Empty { .. })));
        let mut r = row("cat", 0.5);
        r.query_srpnet.pop();
        let e = draw(&[r]).unwrap_err();
        assert!(matches!(e, FigureError::InvalidInput { .. }), "{e}");
        assert!(e.to_string().contains("query SRPNet"), "{e}");
        let mut r = row("cat", 0.5);
        r.support.rgb.truncate(5);
        assert!(matches!(draw(&[r]), Err(FigureError::InvalidInput { .. })));
        let mut r = row("cat", 0.5);
        r.query = Picture {
            height: 0,
            width: 0,
            rgb: vec![],
        };
        r.query_truth.clear();
        assert!(draw(&[r]).is_err());
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            0,
            "nothing is written on error"
        );
    }
}
