//! The `folder` benchmark: a user's own images, masks and classes.txt, read like PASCAL-5i
//! (same sampler, same folds), with folds stated in folds.txt or made by the rule, and bad input
//! named by file and line.

use std::path::{Path, PathBuf};

use srpnet::data::cli::{RootArgs, check_folder};
use srpnet::data::export::{ExportLayout, ExportOptions, export_synthetic};
use srpnet::data::folder::FolderBenchmark;
use srpnet::data::folds::{FoldConvention, test_classes};
use srpnet::data::images::{load_class_map, save_mask, save_rgb};
use srpnet::data::pascal::PascalProtocol;
use srpnet::data::{Benchmark, DataError, EpisodeSpec, IGNORE, Image, Mask, Split};
use srpnet::experiment::{BenchmarkName, DataConfig};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srpnet-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("images")).expect("temp dir");
    std::fs::create_dir_all(d.join("masks")).expect("temp dir");
    d
}

/// Writes image `name` (h x w) with class `c` in its left `cols` columns, a 255 column after.
fn pair(root: &Path, name: &str, h: usize, w: usize, c: u8, cols: usize) {
    let rgb: Vec<u8> = (0..h * w * 3).map(|i| (i * 7 % 256) as u8).collect();
    save_rgb(
        &root.join("images").join(format!("{name}.jpg")),
        &Image::from_rgb8(h, w, &rgb),
    )
    .unwrap();
    let mut m = Mask::filled(h, w, 0);
    for (i, v) in m.data.iter_mut().enumerate() {
        let x = i % w;
        *v = if x < cols {
            c
        } else if x == cols {
            IGNORE
        } else {
            0
        };
    }
    save_mask(&root.join("masks").join(format!("{name}.png")), &m).unwrap();
}

/// Four classes, two images each.
fn small_folder(name: &str) -> PathBuf {
    let root = temp_dir(name);
    std::fs::write(
        root.join("classes.txt"),
        "# my classes\ncat\ndog\ncup\npen\n",
    )
    .unwrap();
    for c in 1..=4u8 {
        for k in 0..2 {
            pair(&root, &format!("img_c{c}_{k}"), 12, 16, c, 3 + k);
        }
    }
    root
}

fn root_args(root: &Path) -> RootArgs {
    RootArgs {
        root: Some(root.to_path_buf()),
        protocol: PascalProtocol::Panet,
        min_object_pixels: None,
        folds: FoldConvention::Interleaved,
    }
}

fn spec(fold: usize, split: Split) -> EpisodeSpec {
    EpisodeSpec {
        fold,
        split,
        shots: 1,
        seed: 0,
    }
}

#[test]
fn an_exported_synthetic_folder_reads_like_synthetic_5i() {
    let out = temp_dir("folder-export");
    export_synthetic(&ExportOptions {
        out: out.clone(),
        size: 40,
        train_per_class: 3,
        val_per_class: 2,
        layout: ExportLayout::Folder,
    })
    .unwrap();
    check_folder(&root_args(&out)).unwrap();
    let bench = FolderBenchmark::open(&out).unwrap();
    assert_eq!(bench.records.len(), 100);
    assert_eq!(bench.num_classes(), 20);
    assert!(bench.test_list);
    // The rule gives synthetic-5i's (and PASCAL-5i's) consecutive folds.
    for fold in 0..4 {
        assert_eq!(
            bench.classes(fold, Split::Test),
            test_classes(20, FoldConvention::Consecutive, fold)
        );
    }
    for fold in 0..4 {
        for split in [Split::Test, Split::Train] {
            for i in 0..6 {
                let ep = bench.episode(&spec(fold, split), i).unwrap();
                assert!(bench.classes(fold, split).contains(&ep.class_id));
                // test.txt holds the val pool: test episodes only from it, training never.
                for id in ep.supports.iter().map(|s| &s.id).chain([&ep.query.id]) {
                    assert_eq!(id.contains("_val_"), split == Split::Test, "{id}");
                }
                // The query mask is the file's class map, made binary for the episode's class.
                let file = out.join("masks").join(format!("{}.png", ep.query.id));
                let classes = load_class_map(&file, 20, "folder").unwrap();
                assert_eq!(ep.query.mask, classes.binary_for(ep.class_id));
                assert!(ep.query.mask.count(1) > 0);
            }
        }
    }
    // Fixed seed, fixed episodes.
    let a = bench.plan(&spec(2, Split::Test), 5).unwrap();
    let b = FolderBenchmark::open(&out)
        .unwrap()
        .plan(&spec(2, Split::Test), 5)
        .unwrap();
    assert_eq!((a.class_id, a.query.id), (b.class_id, b.query.id));
}

#[test]
fn folds_txt_states_the_folds_by_id_or_name() {
    let root = small_folder("folder-folds");
    std::fs::write(root.join("folds.txt"), "pen\n1\ndog  # a comment\n3\n").unwrap();
    let bench = FolderBenchmark::open(&root).unwrap();
    assert_eq!(bench.folds, vec![vec![4], vec![1], vec![2], vec![3]]);
    assert_eq!(bench.classes(0, Split::Train), vec![1, 2, 3]);
    assert!(!bench.test_list);
    let ep = bench.episode(&spec(0, Split::Test), 0).unwrap();
    assert_eq!((ep.class_id, ep.class_name.as_str()), (4, "pen"));
    // Without test.txt both splits use every image (PANet's protocol).
    assert_eq!(bench.test_index.count(4), 2);
    assert_eq!(bench.train_index.count(4), 2);
    // Through the config the train and eval commands use.
    let data = DataConfig {
        benchmark: BenchmarkName::Folder,
        root: Some(root.clone()),
        ..DataConfig::default()
    };
    data.check_root().unwrap();
    let opened = data.open(64, &[Split::Test]).unwrap();
    assert_eq!(opened.name(), "folder");
    assert_eq!(data.label(), "folder");
    check_folder(&root_args(&root)).unwrap();
}

#[track_caller]
fn assert_names(err: impl std::fmt::Display, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not name {p:?}");
    }
}

#[test]
fn bad_classes_or_folds_name_the_file_and_line() {
    let root = small_folder("folder-bad-folds");
    let folds = root.join("folds.txt");
    for (text, line, what) in [
        ("cat\ndog\ncup\nowl\n", "line 4", "\"owl\""),
        ("cat\ndog cat\ncup\npen\n", "line 2", "two folds"),
        ("cat\ndog\ncup\n", "line 3", "give exactly 4"),
        ("cat\ndog\ncup\n9\n", "line 4", "\"9\""),
    ] {
        std::fs::write(&folds, text).unwrap();
        let err = FolderBenchmark::open(&root).unwrap_err();
        assert!(matches!(err, DataError::BadTextFile { .. }), "{err}");
        assert_names(err, &["folds.txt", line, what, "classes.txt"]);
    }
    std::fs::remove_file(&folds).unwrap();
    std::fs::write(root.join("classes.txt"), "cat\ndog\n").unwrap();
    assert_names(
        FolderBenchmark::open(&root).unwrap_err(),
        &["classes.txt", "2 classes", "at least 4"],
    );
    std::fs::remove_file(root.join("classes.txt")).unwrap();
    let err = FolderBenchmark::open(&root).unwrap_err();
    assert_names(&err, &["classes.txt", "--data-root"]);
    let data = DataConfig {
        benchmark: BenchmarkName::Folder,
        root: Some(root),
        ..DataConfig::default()
    };
    assert_names(data.check_root().unwrap_err(), &["classes.txt"]);
}

#[test]
fn bad_images_are_skipped_by_name_and_a_thin_class_fails_the_check() {
    let root = small_folder("folder-bad-files");
    // An image without a mask, a mask of the wrong size, and a class id outside classes.txt.
    pair(&root, "orphan", 12, 16, 1, 3);
    std::fs::remove_file(root.join("masks/orphan.png")).unwrap();
    pair(&root, "resized", 12, 16, 1, 3);
    save_mask(&root.join("masks/resized.png"), &Mask::filled(6, 8, 1)).unwrap();
    pair(&root, "stray", 12, 16, 7, 3);
    let bench = FolderBenchmark::open(&root).unwrap();
    assert_eq!(bench.records.len(), 8);
    let skipped = bench.skipped().skipped.join("\n");
    for part in [
        "masks/orphan.png",
        "masks/resized.png",
        "class id 7",
        "stray.png",
    ] {
        assert!(skipped.contains(part), "{skipped} does not name {part}");
    }
    // `data check folder` passes with skipped files listed, fails when a class has one image.
    check_folder(&root_args(&root)).unwrap();
    std::fs::remove_file(root.join("images/img_c2_1.jpg")).unwrap();
    assert_names(
        check_folder(&root_args(&root)).unwrap_err(),
        &["4 problem", "classes.txt"],
    );
    let err = FolderBenchmark::open(&root)
        .unwrap()
        .plan(&spec(1, Split::Test), 0)
        .unwrap_err();
    assert_names(err, &["dog", "fewer than 2", "folds.txt"]);
}
