//! `srpnet predict` on the user's own files: masks and overlays are written at the query's size,
//! the support-recovery IoU is printed, and bad input fails with a message.

use std::path::Path;
use std::process::Command;

use srpnet::data::Split;
use srpnet::data::images::{save_mask, save_rgb};
use srpnet::data::synthetic::render_scene;

/// Writes a synthetic-5i image of class 3 and its 0/255 mask; returns (image, mask) paths.
fn own_files(dir: &Path, index: u64, size: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let scene = render_scene(3, Split::Test, index, size);
    let mut mask = scene.labels.binary_for(3);
    mask.data
        .iter_mut()
        .for_each(|v| *v = if *v == 1 { 255 } else { 0 });
    let (img, m) = (
        dir.join(format!("photo{index}.png")),
        dir.join(format!("photo{index}-mask.png")),
    );
    save_rgb(&img, &scene.image).unwrap();
    save_mask(&m, &mask).unwrap();
    (img, m)
}

#[test]
fn predict_writes_masks_and_overlays() {
    let dir = std::env::temp_dir().join(format!("srpnet-predict-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (s1, m1) = own_files(&dir, 0, 80);
    let (s2, m2) = own_files(&dir, 1, 80);
    let (query, _) = own_files(&dir, 2, 120);
    let out_dir = dir.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_srpnet"))
        .args(["predict", "--support"])
        .arg(&s1)
        .arg("--mask")
        .arg(&m1)
        .arg("--support")
        .arg(&s2)
        .arg("--mask")
        .arg(&m2)
        .arg("--query")
        .arg(&query)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("support-recovery IoU"), "{stdout}");
    for name in ["photo2-mask.png", "photo2-overlay.png"] {
        let img = image::open(out_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (img.width(), img.height()),
            (120, 120),
            "{name} is not at the query's size"
        );
    }
    // One mask too few: a message, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_srpnet"))
        .args(["predict", "--support"])
        .arg(&s1)
        .arg("--support")
        .arg(&s2)
        .arg("--mask")
        .arg(&m1)
        .arg("--query")
        .arg(&query)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one mask per support"));
    std::fs::remove_dir_all(&dir).unwrap();
}
