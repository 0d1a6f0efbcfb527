//! synthetic-5i: golden episodes, determinism, what a scene holds, that it is not trivial, and
//! its export to the VOC layout read back by the PASCAL loader.

use std::collections::BTreeSet;

use srpnet::data::baseline::{BaselineReport, fixed_feature_baseline};
use srpnet::data::cli::{RootArgs, check_pascal};
use srpnet::data::export::{ExportLayout, ExportOptions, export_synthetic};
use srpnet::data::folds::{FoldConvention, test_classes};
use srpnet::data::pascal::{Pascal5i, PascalConfig, PascalProtocol};
use srpnet::data::synthetic::{SYNTHETIC_CLASSES, Synthetic5i, render_scene};
use srpnet::data::{Benchmark, EpisodeSpec, Episodes, IGNORE, Normalization, Split, Transform};

fn plans(
    bench: &dyn Benchmark,
    fold: usize,
    split: Split,
    shots: usize,
    seed: u64,
    n: u64,
) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = bench
                .plan(
                    &EpisodeSpec {
                        fold,
                        split,
                        shots,
                        seed,
                    },
                    i,
                )
                .unwrap();
            format!(
                "{}:{}>{}",
                p.class_id,
                p.support_ids().join(","),
                p.query.id
            )
        })
        .collect()
}

#[test]
fn golden_episodes_per_fold() {
    let bench = Synthetic5i::default();
    let got: Vec<Vec<String>> = (0..4)
        .map(|f| plans(&bench, f, Split::Test, 1, 0, 3))
        .collect();
    assert_eq!(got, GOLDEN_TEST, "golden episodes changed");
    assert_eq!(
        plans(&bench, 0, Split::Train, 5, 7, 1),
        GOLDEN_TRAIN_5SHOT,
        "golden episodes changed"
    );
}

const GOLDEN_TEST: [[&str; 3]; 4] = [
    [
        "4:test-c04-00199>test-c04-00290",
        "2:test-c02-00286>test-c02-00337",
        "5:test-c05-00046>test-c05-00968",
    ],
    [
        "7:test-c07-00412>test-c07-00437",
        "7:test-c07-00002>test-c07-00315",
        "8:test-c08-00995>test-c08-00714",
    ],
    [
        "13:test-c13-00488>test-c13-00242",
        "12:test-c12-00434>test-c12-00346",
        "15:test-c15-00722>test-c15-00579",
    ],
    [
        "19:test-c19-00402>test-c19-00871",
        "17:test-c17-00231>test-c17-00388",
        "16:test-c16-00390>test-c16-00510",
    ],
];
const GOLDEN_TRAIN_5SHOT: [&str; 1] = [
    "6:train-c06-08545,train-c06-03550,train-c06-09914,train-c06-03163,train-c06-07797>train-c06-02397",
];
const GOLDEN_EXPORT: [&str; 4] = [
    "4:s5i_train_c03_00002>s5i_train_c04_00000",
    "7:s5i_train_c01_00001>s5i_train_c07_00001",
    "13:s5i_train_c13_00002>s5i_train_c13_00000",
    "19:s5i_train_c09_00001>s5i_train_c19_00001",
];

#[test]
fn folds_and_classes_are_named_constants() {
    let bench = Synthetic5i::default();
    assert_eq!(bench.classes(0, Split::Test), vec![1, 2, 3, 4, 5]);
    assert_eq!(bench.classes(3, Split::Test), vec![16, 17, 18, 19, 20]);
    assert_eq!(bench.classes(1, Split::Train).len(), 15);
    assert!(!bench.classes(1, Split::Train).contains(&7));
    assert_eq!(SYNTHETIC_CLASSES[0], "disc");
    assert_eq!(
        test_classes(80, FoldConvention::Interleaved, 1)[..3],
        [2, 6, 10]
    );
    assert_eq!(
        test_classes(80, FoldConvention::Consecutive, 1)[..3],
        [21, 22, 23]
    );
}

#[test]
fn episodes_are_deterministic_and_well_formed() {
    let bench = Synthetic5i::with_size(64);
    let spec = EpisodeSpec {
        fold: 2,
        split: Split::Test,
        shots: 5,
        seed: 11,
    };
    let a = bench.episode(&spec, 3).unwrap();
    let b = bench.episode(&spec, 3).unwrap();
    assert_eq!(a.query.image, b.query.image);
    assert_eq!(a.query.mask, b.query.mask);
    assert_eq!(a.supports.len(), 5);
    let ids: BTreeSet<&str> = a
        .support_ids()
        .into_iter()
        .chain([a.query.id.as_str()])
        .collect();
    assert_eq!(ids.len(), 6, "support and query images are distinct");
    for s in a.supports.iter().chain([&a.query]) {
        assert_eq!(s.image.size(), (64, 64));
        assert!(s.mask.data.iter().all(|&v| v <= 1 || v == IGNORE));
        assert!(
            s.mask.count(1) > 64 * 64 / 80,
            "the object is visible ({} px)",
            s.mask.count(1)
        );
        assert!(s.mask.count(IGNORE) > 0, "objects have an ignore band");
        assert!(s.image.data.iter().all(|&v| (0.0..=255.0).contains(&v)));
    }
    // Support and query of one class differ.
    assert_ne!(a.supports[0].image, a.query.image);
    // Episodes are random access: index 3 does not depend on 0..2 having been drawn.
    let mut stream = Episodes::new(&bench, spec, Transform::default());
    let third = stream.nth(3).unwrap().unwrap();
    assert_eq!(third.query.id, a.query.id);
}

#[test]
fn scenes_hold_distractors_of_other_classes_and_keep_their_layout_across_sizes() {
    let mut other_classes = 0;
    for class in 1..=20u8 {
        let s = render_scene(class, Split::Train, 5, 96);
        let labels: BTreeSet<u8> = s.labels.data.iter().copied().collect();
        assert!(labels.contains(&class) && labels.contains(&0) && labels.contains(&IGNORE));
        other_classes += labels
            .iter()
            .filter(|&&l| l != 0 && l != class && l != IGNORE)
            .count();
        // The same scene at another size: the class covers about the same fraction.
        let big = render_scene(class, Split::Train, 5, 192);
        let (f96, f192) = (
            s.labels.count(class) as f64 / (96.0 * 96.0),
            big.labels.count(class) as f64 / (192.0 * 192.0),
        );
        assert!((f96 - f192).abs() < 0.05, "class {class}: {f96} vs {f192}");
    }
    assert!(
        other_classes >= 20,
        "distractors are present ({other_classes})"
    );
}

#[test]
fn a_fixed_feature_baseline_is_far_from_solving_it() {
    let bench = Synthetic5i::with_size(64);
    let r = fixed_feature_baseline(&bench, 1, 12, 0, &Transform::default()).unwrap();
    let (fixed, fg) = (
        BaselineReport::mean(&r.fixed_feature_miou),
        BaselineReport::mean(&r.all_foreground_miou),
    );
    assert!(
        fixed < 60.0,
        "fixed-feature baseline {fixed:.1} mIoU: synthetic-5i is too easy"
    );
    assert!(
        fixed > fg,
        "the baseline ({fixed:.1}) beats predicting everything ({fg:.1})"
    );
}

#[test]
fn export_feeds_the_pascal_loader_and_check() {
    let out = std::env::temp_dir().join(format!("srpnet-test-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let m = export_synthetic(&ExportOptions {
        out: out.clone(),
        size: 48,
        train_per_class: 3,
        val_per_class: 2,
        layout: ExportLayout::Voc,
    })
    .unwrap();
    assert_eq!(m.expected[0].1, 100);
    let args = RootArgs {
        root: Some(out.clone()),
        protocol: PascalProtocol::Panet,
        min_object_pixels: None,
        folds: FoldConvention::Interleaved,
    };
    check_pascal(&args).unwrap();
    let bench = Pascal5i::open(&PascalConfig {
        root: out.clone(),
        protocol: PascalProtocol::Panet,
        min_object_pixels: None,
    })
    .unwrap();
    assert_eq!(bench.records.len(), 60);
    assert_eq!(bench.records[0].name, "s5i_train_c01_00000");
    // The golden episodes of the exported tree.
    let got: Vec<String> = (0..4)
        .flat_map(|f| plans(&bench, f, Split::Test, 1, 0, 1))
        .collect();
    assert_eq!(got, GOLDEN_EXPORT, "golden episodes changed");
    // Exported masks hold the same labels as the generator (PNG is lossless).
    let ep = bench
        .episode(
            &EpisodeSpec {
                fold: 0,
                split: Split::Test,
                shots: 1,
                seed: 0,
            },
            0,
        )
        .unwrap();
    let (class, key) = {
        let n = &ep.query.id; // s5i_train_cCC_IIIII
        (
            n[11..13].parse::<u8>().unwrap(),
            n[14..].parse::<u64>().unwrap(),
        )
    };
    let scene = render_scene(class, Split::Train, key, 48);
    assert_eq!(ep.query.mask, scene.labels.binary_for(ep.class_id));
    // oslsm on 48-pixel images: the 2048-pixel filter empties the classes, and check says so.
    let strict = RootArgs {
        protocol: PascalProtocol::Oslsm,
        ..args
    };
    let err = check_pascal(&strict).unwrap_err();
    assert!(err.to_string().contains("incomplete"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn transformed_stream_has_network_size_and_normalisation() {
    let bench = Synthetic5i::with_size(64);
    let spec = EpisodeSpec {
        fold: 0,
        split: Split::Train,
        shots: 1,
        seed: 1,
    };
    for ep in Episodes::new(&bench, spec, Transform::train(33, Normalization::CaffeBgr)).take(4) {
        let ep = ep.unwrap();
        assert!(ep.class_id > 5);
        assert_eq!(ep.query.image.size(), (33, 33));
        assert_eq!(ep.query.image.normalization, Normalization::CaffeBgr);
        assert_eq!(ep.query.original_size, (64, 64));
    }
}

#[test]
fn the_sample_figure_draws() {
    let (w, h, rgb) = srpnet::data::figure::samples_figure(24).unwrap();
    assert_eq!(rgb.len(), w * h * 3);
    assert!(w > 5 * 48 && h > 4 * 24);
    // Not blank: the images and the labels are drawn.
    assert!(rgb.iter().filter(|&&v| v < 128).count() > w * h / 10);
}
