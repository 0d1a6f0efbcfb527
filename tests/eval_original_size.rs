//! `eval --original-size`: predictions upsampled to the query's original label size and scored
//! there (PFENet's `ori_resize`, HSNet's `--use_original_imgsize`), checked against numbers
//! worked out by hand; the default (network size) is unchanged. And `eval --visualize`: the
//! pictures of the first episodes.

mod common;

use srpnet::data::rng::Rng;
use srpnet::data::synthetic::Synthetic5i;
use srpnet::data::{Episode, Image, Mask, Normalization, Shot, Split, Transform};
use srpnet::eval::{EvalSettings, evaluate, scored_query, upsampled_labels, visualize};
use srpnet::metrics::Evaluator;
use srpnet::model::{ModelConfig, Profile};

/// A 4x4 query whose label is foreground in columns 0..3 and background in column 3; at the
/// network size 2x2 (nearest) it keeps columns 0 and 2 of the label: [1, 0] per row.
fn hand_episode() -> Episode {
    let row = [1u8, 1, 1, 0];
    let label = Mask {
        height: 4,
        width: 4,
        data: row.repeat(4),
    };
    let shot = |id: &str| Shot {
        id: id.into(),
        image: Image::zeros(4, 4),
        mask: label.clone(),
        original_size: (4, 4),
    };
    Episode {
        benchmark: "hand".into(),
        fold: 0,
        split: Split::Test,
        index: 0,
        class_id: 1,
        class_name: "object".into(),
        supports: vec![shot("support")],
        query: shot("query"),
        query_original_mask: None,
    }
}

/// Foreground probability 0.9 in the left column and 0.1 in the right one, at 2x2: [1, 2, 2, 2].
fn probabilities() -> burn::tensor::Tensor<4> {
    let fg = [0.9f32, 0.1, 0.9, 0.1];
    let bg: Vec<f32> = fg.iter().map(|p| 1.0 - p).collect();
    common::tensor([bg, fg.to_vec()].concat(), [1, 2, 2, 2], &common::device())
}

/// An untrained (seeded) embedded SRPNet.
fn untrained() -> srpnet::model::SrpNet {
    let device = common::device();
    let _rng = common::seed(&device, 7);
    ModelConfig::srpnet(Profile::Embedded)
        .init(&device)
        .unwrap()
}

/// Evaluation settings of `episodes` 1-shot episodes of `fold` at 65 px, one seed.
fn settings(fold: usize, episodes: u64, original_size: bool) -> EvalSettings {
    EvalSettings {
        fold,
        shots: 1,
        episodes,
        seeds: vec![1234],
        image_size: 65,
        normalization: Normalization::Unit,
        original_size,
    }
}

/// (mIoU, FB-IoU) of one episode.
fn scores(predicted: &[u8], truth: &[u8]) -> (f64, f64) {
    let mut e = Evaluator::default();
    e.add(1, predicted, truth);
    (e.miou().unwrap(), e.fb_iou().unwrap())
}

#[test]
fn bilinear_upsampling_of_a_two_by_two_prediction_matches_the_hand_computation() {
    // Half-pixel centres: the four output columns sample source x = 0, 0.25, 0.75, 1, so the
    // foreground probability is 0.9, 0.7, 0.3, 0.1 along every row.
    let fg = [0.9f32, 0.1, 0.9, 0.1];
    let bg: Vec<f32> = fg.iter().map(|p| 1.0 - p).collect();
    let labels = upsampled_labels(&bg, &fg, (2, 2), (4, 4));
    assert_eq!(labels, [1u8, 1, 0, 0].repeat(4));
    // A tie goes to background, as argmax takes the first class.
    assert_eq!(upsampled_labels(&[0.5], &[0.5], (1, 1), (1, 2)), vec![0, 0]);
}

#[test]
fn network_and_original_size_give_the_hand_computed_numbers() {
    let mut rng = Rng::new(0);
    let at_network = Transform::eval(2, Normalization::None).apply(hand_episode(), &mut rng);
    let (predicted, truth) = scored_query(probabilities(), &at_network).unwrap();
    assert_eq!(
        (predicted.as_slice(), truth),
        (&[1u8, 0, 1, 0][..], &[1u8, 0, 1, 0][..])
    );
    // Everything right at 2x2: foreground and background IoU 1.
    assert_eq!(scores(&predicted, truth), (1.0, 1.0));

    let at_original =
        Transform::eval_original_size(2, Normalization::None).apply(hand_episode(), &mut rng);
    let (predicted, truth) = scored_query(probabilities(), &at_original).unwrap();
    assert_eq!(predicted, [1u8, 1, 0, 0].repeat(4));
    assert_eq!(truth, [1u8, 1, 1, 0].repeat(4).as_slice());
    // Foreground: 8 hits, 4 misses (column 2), no false alarm -> 8/12. Background: 4 hits
    // (column 3), 4 false alarms (column 2) -> 4/8. FB-IoU = (2/3 + 1/2) / 2 = 7/12.
    let (miou, fb) = scores(&predicted, truth);
    assert!((miou - 2.0 / 3.0).abs() < 1e-12, "mIoU {miou}");
    assert!((fb - 7.0 / 12.0).abs() < 1e-12, "FB-IoU {fb}");
}

/// An untrained embedded model on synthetic-5i: the two modes agree exactly where the images are
/// generated at the network size, and differ (upsampled predictions, more pixels) where not.
#[test]
fn evaluate_scores_at_the_original_size_only_when_asked() {
    let model = untrained();
    let run = |generated: usize, original_size: bool| {
        evaluate(
            &model,
            &Synthetic5i::with_size(generated),
            &settings(0, 3, original_size),
            |_, _| {},
        )
        .unwrap()
    };
    let pixels = |r: &srpnet::eval::EvalReport| -> Vec<u64> {
        r.episodes
            .iter()
            .map(|e| e.foreground.tp + e.foreground.fp + e.foreground.fn_ + e.background.tp)
            .collect()
    };
    let (net, orig) = (run(65, false), run(65, true));
    assert_eq!(pixels(&net), pixels(&orig));
    assert_eq!(net.seeds[0].miou.to_bits(), orig.seeds[0].miou.to_bits());

    let (net, orig) = (run(97, false), run(97, true));
    let (np, op) = (pixels(&net), pixels(&orig));
    assert_eq!(np.len(), 3);
    assert_eq!(op.len(), 3);
    for (n, o) in np.iter().zip(&op) {
        // Scored over the 97x97 label instead of the 65x65 one (minus ignored border pixels).
        assert!(*n <= 65 * 65 && *o > 65 * 65 && *o <= 97 * 97, "{n} vs {o}");
    }
    assert!(orig.seeds[0].miou.is_finite());
}

/// `visualize` writes one picture per episode: support, query with prediction, query with ground
/// truth side by side at the original size; the ground-truth panel is the query image, tinted
/// exactly where the label is foreground.
#[test]
fn visualize_draws_support_prediction_and_ground_truth() {
    let model = untrained();
    let bench = Synthetic5i::with_size(48);
    let settings = settings(1, 2, false);
    let dir = std::env::temp_dir().join(format!("srpnet-test-visualize-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = visualize(&model, &bench, &settings, 2, &dir).unwrap();
    assert_eq!(files.len(), 2);
    let spec = srpnet::data::EpisodeSpec {
        fold: 1,
        split: Split::Test,
        shots: 1,
        seed: 1234,
    };
    for (i, file) in files.iter().enumerate() {
        let raw = srpnet::data::Benchmark::episode(&bench, &spec, i as u64).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("seed1234-episode{i:04}-")),
            "{name}"
        );
        let picture = image::open(file).unwrap().to_rgb8();
        assert_eq!((picture.width(), picture.height()), (3 * 48, 48));
        let query = raw.query.image.to_rgb8();
        let (mut tinted, mut foreground) = (0, 0);
        for y in 0..48u32 {
            for x in 0..48u32 {
                let k = (y * 48 + x) as usize;
                let shown = picture.get_pixel(2 * 48 + x, y).0;
                let original = [query[3 * k], query[3 * k + 1], query[3 * k + 2]];
                if raw.query.mask.data[k] == 1 {
                    foreground += 1;
                    tinted += usize::from(shown != original);
                } else {
                    assert_eq!(
                        shown, original,
                        "pixel ({x}, {y}) outside the label changed"
                    );
                }
            }
        }
        assert!(
            foreground > 0 && tinted * 10 >= foreground * 9,
            "{tinted} of {foreground}"
        );
    }
}
