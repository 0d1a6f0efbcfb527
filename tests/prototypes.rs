//! Masked average pooling: the spatial mean for an all-ones mask, ignore pixels change nothing,
//! K identical shots give the 1-shot prototype, the K-shot prototype is the mean of the per-shot
//! means (not weighted by area), empty masks give the typed error, and pooling at feature
//! resolution with the transposed upsampling equals PANet's upsample-then-pool, and both equal an
//! f64 upsample-then-pool oracle at non-integer mask/feature size ratios (as 417 px masks on 53 px
//! features are), for K = 1..5 with ignore pixels; the prototypes do not depend on shot order.

mod common;

use burn::tensor::module::interpolate;
use common::{assert_close, device, max_abs_diff, noise, tensor, values};
use proptest::prelude::*;
use srpnet::model::ModelError;
use srpnet::model::prototype::{
    MaskPooling, interpolation_matrix, masked_average_pool, transposed_bilinear,
};
use srpnet::model::pyramid::bilinear_to;

const BOTH: [MaskPooling; 2] = [MaskPooling::Transposed, MaskPooling::Upsampled];

/// A mask of `h x w` with foreground in the left `split` columns and the given ignore columns.
fn stripe_mask(h: usize, w: usize, split: usize, ignore: &[usize]) -> Vec<f32> {
    (0..h * w)
        .map(|i| {
            let x = i % w;
            if ignore.contains(&x) {
                255.0
            } else if x < split {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn all_ones_mask_gives_the_spatial_mean() {
    // Two shots: the first all foreground, the second all background. Each region is empty in
    // one shot, so the foreground prototype is the mean of shot 1 and the background that of 2.
    let d = device();
    let (c, h, w) = (5, 6, 7);
    let f = noise(1, 2 * c * h * w);
    let mean = |shot: usize| -> Vec<f32> {
        (0..c)
            .map(|ch| {
                let start = (shot * c + ch) * h * w;
                f[start..start + h * w].iter().sum::<f32>() / (h * w) as f32
            })
            .collect()
    };
    // Mask at the feature resolution, and at twice it (an integer factor, where every feature
    // pixel gets the same total upsampling weight).
    for scale in [1, 2] {
        let area = h * scale * w * scale;
        let mut m = vec![1.0; area];
        m.extend(vec![0.0; area]);
        for pooling in BOTH {
            let p = masked_average_pool(
                tensor(f.clone(), [2, c, h, w], &d),
                tensor(m.clone(), [2, h * scale, w * scale], &d),
                pooling,
            )
            .unwrap();
            let p = values(p.0);
            assert!(
                max_abs_diff(&p[c..], &mean(0)) < 1e-5,
                "{pooling:?} x{scale} foreground"
            );
            assert!(
                max_abs_diff(&p[..c], &mean(1)) < 1e-5,
                "{pooling:?} x{scale} background"
            );
        }
    }
}

#[test]
fn ignore_pixels_change_nothing() {
    let d = device();
    let (c, h, w) = (4, 5, 8);
    let mask = stripe_mask(h, w, 3, &[3, 4]);
    let f1 = noise(2, c * h * w);
    // Change the features only where the mask says "ignore".
    let mut f2 = f1.clone();
    for ch in 0..c {
        for y in 0..h {
            for x in [3, 4] {
                f2[ch * h * w + y * w + x] += 10.0;
            }
        }
    }
    let pool = |f: Vec<f32>| {
        values(
            masked_average_pool(
                tensor(f, [1, c, h, w], &d),
                tensor(mask.clone(), [1, h, w], &d),
                MaskPooling::Upsampled,
            )
            .unwrap()
            .0,
        )
    };
    let (a, b) = (pool(f1.clone()), pool(f2));
    assert!(
        max_abs_diff(&a, &b) < 1e-6,
        "ignored pixels moved the prototypes"
    );
    // And the ignored pixels are not background either: treating them as background differs.
    let as_background: Vec<f32> = mask
        .iter()
        .map(|&v| if v == 255.0 { 0.0 } else { v })
        .collect();
    let c2 = values(
        masked_average_pool(
            tensor(f1, [1, c, h, w], &d),
            tensor(as_background, [1, h, w], &d),
            MaskPooling::Upsampled,
        )
        .unwrap()
        .0,
    );
    assert!(max_abs_diff(&a, &c2) > 1e-3);
}

#[test]
fn identical_shots_give_the_one_shot_prototype() {
    let d = device();
    let (c, h, w, big) = (6, 7, 7, 25);
    let f = noise(3, c * h * w);
    let m = stripe_mask(big, big, 11, &[12]);
    for pooling in BOTH {
        let one = values(
            masked_average_pool(
                tensor(f.clone(), [1, c, h, w], &d),
                tensor(m.clone(), [1, big, big], &d),
                pooling,
            )
            .unwrap()
            .0,
        );
        let five = values(
            masked_average_pool(
                tensor(f.repeat(5), [5, c, h, w], &d),
                tensor(m.repeat(5), [5, big, big], &d),
                pooling,
            )
            .unwrap()
            .0,
        );
        assert!(max_abs_diff(&one, &five) < 1e-5, "{pooling:?}");
    }
}

#[test]
fn empty_masks_are_a_typed_error() {
    let d = device();
    let (c, h, w) = (3, 4, 4);
    let f = tensor(noise(4, 2 * c * h * w), [2, c, h, w], &d);
    let cases = [
        (vec![0.0; 2 * h * w], "foreground"),
        (vec![1.0; 2 * h * w], "background"),
        (vec![255.0; 2 * h * w], "background"),
    ];
    for (mask, region) in cases {
        for pooling in BOTH {
            let err = masked_average_pool(f.clone(), tensor(mask.clone(), [2, h, w], &d), pooling)
                .unwrap_err();
            match err {
                ModelError::EmptyMask { region: r, shots } => {
                    assert_eq!((r, shots), (region, 2));
                    assert!(
                        ModelError::EmptyMask { region: r, shots }
                            .to_string()
                            .contains("support")
                    );
                }
                other => panic!("expected EmptyMask, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_shot_with_an_empty_region_is_skipped_not_averaged_as_zero() {
    let d = device();
    let (c, h, w) = (3, 4, 4);
    let f = noise(5, 2 * c * h * w);
    let good = stripe_mask(h, w, 2, &[]);
    let mut masks = good.clone();
    masks.extend(vec![0.0; h * w]); // shot 2: background only
    let two = values(
        masked_average_pool(
            tensor(f.clone(), [2, c, h, w], &d),
            tensor(masks, [2, h, w], &d),
            MaskPooling::Upsampled,
        )
        .unwrap()
        .0,
    );
    let first = values(
        masked_average_pool(
            tensor(f[..c * h * w].to_vec(), [1, c, h, w], &d),
            tensor(good, [1, h, w], &d),
            MaskPooling::Upsampled,
        )
        .unwrap()
        .0,
    );
    // The foreground prototype comes from shot 1 alone.
    assert!(max_abs_diff(&two[c..], &first[c..]) < 1e-6);
    assert!(two.iter().all(|v| v.is_finite()));
}

#[test]
fn transposed_pooling_equals_upsample_then_pool() {
    let d = device();
    // 13 -> 97 is not an integer factor: the border weights of U^T m are uneven.
    let (c, h, w, big) = (16, 13, 13, 97);
    let f = noise(6, 2 * c * h * w);
    let m: Vec<f32> = noise(7, 2 * big * big)
        .into_iter()
        .map(|v| {
            if v > 0.3 {
                1.0
            } else if v > 0.25 {
                255.0
            } else {
                0.0
            }
        })
        .collect();
    let pool = |pooling| {
        values(
            masked_average_pool(
                tensor(f.clone(), [2, c, h, w], &d),
                tensor(m.clone(), [2, big, big], &d),
                pooling,
            )
            .unwrap()
            .0,
        )
    };
    let a = pool(MaskPooling::Transposed);
    let b = pool(MaskPooling::Upsampled);
    assert!(
        max_abs_diff(&a, &b) < 1e-5,
        "max diff {}",
        max_abs_diff(&a, &b)
    );
}

#[test]
fn interpolation_matrix_matches_burn_bilinear_resize() {
    let d = device();
    for (h, w, big_h, big_w) in [(13, 13, 97, 97), (53, 40, 417, 321), (5, 9, 17, 4)] {
        let x = noise(8, h * w);
        let resized = values(interpolate(
            tensor(x.clone(), [1, 1, h, w], &d),
            bilinear_to([big_h, big_w]),
        ));
        let a_h = interpolation_matrix(h, big_h, &d);
        let a_w = interpolation_matrix(w, big_w, &d);
        let ours = values(a_h.matmul(tensor(x, [h, w], &d)).matmul(a_w.transpose()));
        assert!(
            max_abs_diff(&resized, &ours) < 1e-5,
            "{h}x{w} -> {big_h}x{big_w}: {}",
            max_abs_diff(&resized, &ours)
        );
    }
}

#[test]
fn transposed_bilinear_is_the_gradient_of_upsample_then_weight() {
    let d = device().autodiff();
    let (h, w, big) = (6, 5, 23);
    let m = noise(9, big * big);
    let x = tensor(vec![0.0; h * w], [1, 1, h, w], &d).require_grad();
    let weight = tensor(m.clone(), [1, 1, big, big], &d);
    let grads = (interpolate(x.clone(), bilinear_to([big, big])) * weight)
        .sum()
        .backward();
    let autodiff = values(x.grad(&grads).unwrap());
    let ours = values(transposed_bilinear(
        tensor(m, [1, 1, big, big], &device()),
        [h, w],
    ));
    assert!(
        max_abs_diff(&autodiff, &ours) < 1e-4,
        "{}",
        max_abs_diff(&autodiff, &ours)
    );
}

/// K shots of random features [K, C, h, w] and masks [K, h, w] at the feature resolution,
/// with 0, 1 and 255 pixels; shot 0 has at least one foreground and one background pixel.
fn shots() -> impl Strategy<Value = ([usize; 4], Vec<f32>, Vec<f32>)> {
    (1usize..=5, 1usize..5, 2usize..6, 2usize..6).prop_flat_map(|(k, c, h, w)| {
        let labels = prop::sample::select(vec![0.0f32, 1.0, 255.0]);
        (
            Just([k, c, h, w]),
            prop::collection::vec(-1.0f32..1.0, k * c * h * w),
            prop::collection::vec(labels, k * h * w).prop_map(|mut m| {
                m[0] = 1.0;
                m[1] = 0.0;
                m
            }),
        )
    })
}

/// MAP in f64 on the host: each shot's mean over its region, then the mean over the shots in
/// which the region is not empty. Rows: background, foreground.
fn pooled_by_hand([k, c, h, w]: [usize; 4], f: &[f64], m: &[f32]) -> Vec<f32> {
    let mut out = vec![];
    for label in [0.0, 1.0] {
        let mut sum_of_means = vec![0.0f64; c];
        let mut shots = 0;
        for s in 0..k {
            let pixels: Vec<usize> = (0..h * w).filter(|&p| m[s * h * w + p] == label).collect();
            if pixels.is_empty() {
                continue;
            }
            shots += 1;
            for (ch, total) in sum_of_means.iter_mut().enumerate() {
                let sum: f64 = pixels.iter().map(|&p| f[(s * c + ch) * h * w + p]).sum();
                *total += sum / pixels.len() as f64;
            }
        }
        out.extend(sum_of_means.iter().map(|v| (v / shots as f64) as f32));
    }
    out
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn k_shot_prototypes_are_the_mean_of_per_shot_means((dims, f, m) in shots()) {
        let d = device();
        let [k, c, h, w] = dims;
        let expect = pooled_by_hand(dims, &f.iter().map(|&x| x as f64).collect::<Vec<_>>(), &m);
        for pooling in BOTH {
            let got = masked_average_pool(
                tensor(f.clone(), [k, c, h, w], &d),
                tensor(m.clone(), [k, h, w], &d),
                pooling,
            )
            .unwrap();
            assert_close(&values(got.0), &expect, 1e-5, &format!("{pooling:?}, K = {k}"));
        }
    }
}

#[test]
fn k_shot_pooling_is_not_weighted_by_area() {
    // One channel. Shot 1: a single foreground pixel of value 10; shot 2: three of value 2.
    // Mean of the shot means: (10 + 2) / 2 = 6; weighting by area would give 16 / 4 = 4.
    let d = device();
    let f = vec![10.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0];
    let m = vec![1.0, 0.0, 0.0, 255.0, 1.0, 1.0, 1.0, 0.0];
    for pooling in BOTH {
        let p = masked_average_pool(
            tensor(f.clone(), [2, 1, 2, 2], &d),
            tensor(m.clone(), [2, 2, 2], &d),
            pooling,
        )
        .unwrap();
        // Background: shot 1 mean 0 (two pixels), shot 2 mean 0 (one pixel) -> 0.
        assert_close(&values(p.0), &[0.0, 6.0], 1e-5, &format!("{pooling:?}"));
    }
}

/// Bilinear upsampling in f64 with half-pixel centres (PyTorch's `align_corners=False`), written
/// out here as the oracle: [K, C, h, w] -> [K, C, H, W].
fn upsampled_f64([k, c, h, w]: [usize; 4], f: &[f32], [big_h, big_w]: [usize; 2]) -> Vec<f64> {
    // (lower index, upper index, weight of the upper) along one axis.
    let taps = |input: usize, output: usize| -> Vec<(usize, usize, f64)> {
        (0..output)
            .map(|o| {
                let src = ((o as f64 + 0.5) * input as f64 / output as f64 - 0.5).max(0.0);
                let lo = (src.floor() as usize).min(input - 1);
                (lo, (lo + 1).min(input - 1), src - lo as f64)
            })
            .collect()
    };
    let (rows, cols) = (taps(h, big_h), taps(w, big_w));
    let mut out = Vec::with_capacity(k * c * big_h * big_w);
    for plane in f.chunks(h * w) {
        let at = |y: usize, x: usize| plane[y * w + x] as f64;
        for &(y0, y1, fy) in &rows {
            for &(x0, x1, fx) in &cols {
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}

/// (dims [K, C, h, w], mask size [H, W], features, masks, shot order).
type RatioCase = ([usize; 4], [usize; 2], Vec<f32>, Vec<f32>, Vec<usize>);

/// K shots of features [K, C, h, w] and masks [K, H, W] with 0, 1 and 255 at any size ratio
/// (mostly not an integer; H > h), and a permutation of the shots.
fn shots_at_any_ratio() -> impl Strategy<Value = RatioCase> {
    (1usize..=5, 1usize..5, 1usize..7, 1usize..7)
        .prop_flat_map(|(k, c, h, w)| (Just((k, c, h, w)), h + 1..=5 * h + 3, w..=5 * w + 3))
        .prop_flat_map(|((k, c, h, w), big_h, big_w)| {
            let labels = prop::sample::select(vec![0.0f32, 1.0, 255.0]);
            (
                Just([k, c, h, w]),
                Just([big_h, big_w]),
                prop::collection::vec(-1.0f32..1.0, k * c * h * w),
                prop::collection::vec(labels, k * big_h * big_w).prop_map(|mut m| {
                    let last = m.len() - 1;
                    (m[0], m[last]) = (1.0, 0.0);
                    m
                }),
                Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn prototypes_equal_the_f64_upsample_then_pool_oracle_at_any_ratio(
        (dims, size, f, m, order) in shots_at_any_ratio()
    ) {
        let d = device();
        let [k, c, h, w] = dims;
        let [big_h, big_w] = size;
        let expect = pooled_by_hand([k, c, big_h, big_w], &upsampled_f64(dims, &f, size), &m);
        // The same shots in another order: the same prototypes.
        let reorder = |x: &[f32], per_shot: usize| -> Vec<f32> {
            order.iter().flat_map(|&s| x[s * per_shot..(s + 1) * per_shot].to_vec()).collect()
        };
        let inputs = [
            (f.clone(), m.clone()),
            (reorder(&f, c * h * w), reorder(&m, big_h * big_w)),
        ];
        for pooling in BOTH {
            for (f, m) in &inputs {
                let got = masked_average_pool(
                    tensor(f.clone(), [k, c, h, w], &d),
                    tensor(m.clone(), [k, big_h, big_w], &d),
                    pooling,
                )
                .unwrap();
                assert_close(
                    &values(got.0),
                    &expect,
                    2e-5,
                    &format!("{pooling:?}, K = {k}, {h}x{w} features, {big_h}x{big_w} masks, shots {order:?}"),
                );
            }
        }
    }
}

#[test]
fn prototypes_at_the_papers_sizes_equal_the_f64_oracle() {
    // 97 px masks on 13 px features (the embedded profile) and 417 on 53 (the paper's), K = 2.
    let d = device();
    for (h, big) in [(13, 97), (53, 417)] {
        let (k, c) = (2, 3);
        let f = noise(h as u64, k * c * h * h);
        let m = noise(big as u64, k * big * big)
            .into_iter()
            .map(|v| match v {
                v if v > 0.3 => 1.0,
                v if v > 0.2 => 255.0,
                _ => 0.0,
            })
            .collect::<Vec<f32>>();
        let expect = pooled_by_hand(
            [k, c, big, big],
            &upsampled_f64([k, c, h, h], &f, [big, big]),
            &m,
        );
        for pooling in BOTH {
            let got = masked_average_pool(
                tensor(f.clone(), [k, c, h, h], &d),
                tensor(m.clone(), [k, big, big], &d),
                pooling,
            )
            .unwrap();
            assert_close(
                &values(got.0),
                &expect,
                2e-5,
                &format!("{pooling:?}, {h} -> {big}"),
            );
        }
    }
}
