//! PANet's prototype alignment regularisation (PAR) on a case small enough to compute by hand:
//! prototypes pooled from the query under its predicted mask segment the support, and the loss is
//! the cross-entropy over the support's labelled pixels (255 ignored).

mod common;

use burn::tensor::Tensor;
use common::{device, tensor, values};
use srpnet::model::fidelity::{Metric, MetricConfig};
use srpnet::model::panet::prototype_alignment_loss;

/// `ln(1 + e^x)`: the cross-entropy of a two-class softmax whose wrong logit leads by `x`.
fn softplus(x: f64) -> f64 {
    x.exp().ln_1p()
}

/// PAR's loss on one case against the value computed by hand for each metric.
fn assert_alignment_loss(
    tensors: [&Tensor<4>; 3],
    masks: &Tensor<3>,
    scale: f64,
    by_hand: &[(Metric, f64)],
) {
    let [query, low_res, support] = tensors;
    for &(metric, expect) in by_hand {
        let config = MetricConfig { metric, scale };
        let loss = prototype_alignment_loss(
            &config,
            query.clone(),
            low_res.clone(),
            support.clone(),
            masks.clone(),
        )
        .unwrap()
        .expect("foreground and background are both predicted");
        let got = values(loss)[0] as f64;
        assert!(
            (got - expect).abs() < 1e-4 * expect,
            "{metric:?}: PAR loss {got}, by hand {expect}"
        );
    }
}

#[test]
fn alignment_loss_by_hand() {
    let d = device();
    // Query, 2 channels x 2x2 pixels: (1, 0), (0, 1), (0, 2), (3, 0).
    let query = tensor(
        vec![1.0, 0.0, 0.0, 3.0, 0.0, 1.0, 2.0, 0.0],
        [1, 2, 2, 2],
        &d,
    );
    // Query logits (background, foreground): foreground predicted at pixels 0 and 3, so the
    // query prototypes are fg = mean((1, 0), (3, 0)) = (2, 0), bg = mean((0, 1), (0, 2)) = (0, 1.5).
    let low_res = tensor(
        vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        [1, 2, 2, 2],
        &d,
    );
    // Support pixels (1, 1), (2, 0), (0, 1), (1, 2), labelled ignore, fg, bg, fg.
    let support = tensor(
        vec![1.0, 2.0, 0.0, 1.0, 1.0, 0.0, 1.0, 2.0],
        [1, 2, 2, 2],
        &d,
    );
    let masks = tensor(vec![255.0, 1.0, 0.0, 1.0], [1, 2, 2], &d);
    // Similarity to (bg, fg) = directions (e1, e0):
    //   cosine:   (2, 0) -> (0, 1); (0, 1) -> (1, 0); (1, 2) -> (2/sqrt5, 1/sqrt5)
    //   fidelity: the squares: (0, 1), (1, 0), (4/5, 1/5)
    // Pixel 0 is ignored; pixels 1 and 2 are right by a margin of 20 x 1; pixel 3 (fg) is
    // wrong by 20 x (bg - fg).
    let s5 = 5f64.sqrt();
    let cases = [
        (Metric::Cosine, 2.0 / s5 - 1.0 / s5),
        (Metric::Fidelity, 4.0 / 5.0 - 1.0 / 5.0),
    ];
    let by_hand = cases.map(|(metric, margin)| {
        (
            metric,
            (2.0 * softplus(-20.0) + softplus(20.0 * margin)) / 3.0,
        )
    });
    assert_alignment_loss([&query, &low_res, &support], &masks, 20.0, &by_hand);
}

#[test]
fn no_predicted_foreground_skips_the_episode() {
    let d = device();
    let query = tensor(vec![1.0; 8], [1, 2, 2, 2], &d);
    // Background wins everywhere.
    let low_res = tensor(
        vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [1, 2, 2, 2],
        &d,
    );
    let support = tensor(vec![1.0; 8], [1, 2, 2, 2], &d);
    let masks = tensor(vec![0.0, 1.0, 0.0, 1.0], [1, 2, 2], &d);
    let loss =
        prototype_alignment_loss(&MetricConfig::default(), query, low_res, support, masks).unwrap();
    assert!(loss.is_none(), "an empty predicted foreground gave a loss");
}

/// The query prototypes are means, not sums or remainders: with a foreground mean off the axes,
/// (1.5, 0.5), a prototype pooled any other way points elsewhere. (Multiplying by the area instead
/// of dividing would pass: every metric is blind to a prototype's length, so that mutant is
/// equivalent; book: testing.md.)
#[test]
fn alignment_loss_with_a_prototype_off_the_axes() {
    let d = device();
    // Query pixels (1, 0), (0, 1), (0, 2), (2, 1); foreground predicted at pixels 0 and 3, so
    // fg = (1.5, 0.5), direction (3, 1) / sqrt10, and bg = (0, 1.5), direction (0, 1).
    let query = tensor(
        vec![1.0, 0.0, 0.0, 2.0, 0.0, 1.0, 2.0, 1.0],
        [1, 2, 2, 2],
        &d,
    );
    let low_res = tensor(
        vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        [1, 2, 2, 2],
        &d,
    );
    // Support pixels (1, 0) fg, (0, 1) bg, then two ignored ones.
    let support = tensor(
        vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
        [1, 2, 2, 2],
        &d,
    );
    let masks = tensor(vec![1.0, 0.0, 255.0, 255.0], [1, 2, 2], &d);
    // Right-class margins: cosine 3/sqrt10 (fg pixel) and 1 - 1/sqrt10 (bg pixel);
    // fidelity 9/10 and 1 - 1/10.
    let s10 = 10f64.sqrt();
    let scale = 5.0;
    let cases = [
        (Metric::Cosine, [3.0 / s10, 1.0 - 1.0 / s10]),
        (Metric::Fidelity, [0.9, 0.9]),
    ];
    let by_hand = cases.map(|(metric, margins)| {
        (
            metric,
            (softplus(-scale * margins[0]) + softplus(-scale * margins[1])) / 2.0,
        )
    });
    assert_alignment_loss([&query, &low_res, &support], &masks, scale, &by_hand);
}
