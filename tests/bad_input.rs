//! Bad input, every command, one table: each row is a command line, the exit code it must end
//! with, words its message must contain (the file or argument, and the fix), and the files it
//! must not create or change. No row may panic, and no message may repeat a cause.

use std::path::{Path, PathBuf};
use std::process::Command;

use srpnet::data::Split;
use srpnet::data::images::{save_mask, save_rgb};
use srpnet::data::synthetic::render_scene;

/// One bad input: `args` run by `binary`; `exit` the expected exit code; `words` must all
/// appear in stderr; `untouched` paths must be, after the run, exactly as before (absent stays
/// absent).
struct Case {
    name: &'static str,
    binary: &'static str,
    args: Vec<String>,
    exit: i32,
    words: Vec<String>,
    untouched: Vec<PathBuf>,
}

fn case(
    name: &'static str,
    binary: &'static str,
    args: &[&str],
    exit: i32,
    words: &[&str],
) -> Case {
    Case {
        name,
        binary,
        args: args.iter().map(|s| s.to_string()).collect(),
        exit,
        words: words.iter().map(|s| s.to_string()).collect(),
        untouched: Vec::new(),
    }
}

impl Case {
    fn untouched(mut self, paths: &[&Path]) -> Self {
        self.untouched = paths.iter().map(|p| p.to_path_buf()).collect();
        self
    }
}

/// A synthetic-5i photo of class 3 with its 0/255 mask, at `size` (mask at `mask_size`).
fn photo(dir: &Path, name: &str, size: usize, mask_size: usize) -> (String, String) {
    let scene = render_scene(3, Split::Test, 0, size);
    let (img, mask) = (
        dir.join(format!("{name}.png")),
        dir.join(format!("{name}-mask.png")),
    );
    save_rgb(&img, &scene.image).unwrap();
    let other = render_scene(3, Split::Test, 0, mask_size);
    let mut m = other.labels.binary_for(3);
    m.data
        .iter_mut()
        .for_each(|v| *v = if *v == 1 { 255 } else { 0 });
    save_mask(&mask, &m).unwrap();
    (s(&img), s(&mask))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A file's bytes, or None if it does not exist (what "untouched" compares).
fn snapshot(path: &Path) -> Option<Vec<u8>> {
    if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        return Some(names.join("\n").into_bytes());
    }
    std::fs::read(path).ok()
}

#[test]
fn every_command_refuses_bad_input_with_a_message_that_names_it() {
    let dir = std::env::temp_dir().join(format!("srpnet-bad-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name);
    let (img, mask) = photo(&dir, "photo", 64, 64);
    let (_, wrong_size_mask) = photo(&dir, "small", 64, 40);
    let (query, _) = photo(&dir, "query", 64, 64);
    // A JPEG cut at 3,000 bytes, a text file called .png, an all-background and an all-foreground
    // mask, a mask with a class id where 0/255 are expected.
    let rgb = image::RgbImage::from_fn(128, 128, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, 90])
    });
    rgb.save(p("full.jpg")).unwrap();
    let jpeg = std::fs::read(p("full.jpg")).unwrap();
    std::fs::write(p("truncated.jpg"), &jpeg[..3000.min(jpeg.len() / 2)]).unwrap();
    std::fs::write(p("text.png"), b"this is not an image\n").unwrap();
    image::GrayImage::from_pixel(64, 64, image::Luma([0]))
        .save(p("empty-mask.png"))
        .unwrap();
    image::GrayImage::from_pixel(64, 64, image::Luma([255]))
        .save(p("full-mask.png"))
        .unwrap();
    image::GrayImage::from_fn(64, 64, |x, _| image::Luma([if x < 32 { 0 } else { 7 }]))
        .save(p("class-mask.png"))
        .unwrap();
    // Configs: an unknown field, a wrong type, a fold out of range.
    std::fs::write(p("unknown.toml"), "stepz = 10\n").unwrap();
    std::fs::write(p("wrong-type.toml"), "steps = \"many\"\n").unwrap();
    std::fs::write(p("fold.toml"), "fold = 7\n").unwrap();
    // A run folder without a checkpoint, a file where an output folder should be, an empty root.
    std::fs::create_dir_all(p("no-checkpoint")).unwrap();
    std::fs::write(p("no-checkpoint/config.json"), "{}").unwrap();
    std::fs::write(p("a-file"), b"not a folder").unwrap();
    std::fs::create_dir_all(p("empty-root")).unwrap();
    // Truncated weights: a TF.js manifest that does not parse, and one whose shard is cut short.
    std::fs::create_dir_all(p("bad-manifest")).unwrap();
    std::fs::write(p("bad-manifest/model.json"), b"{\"modelTopology\": ").unwrap();
    std::fs::write(
        p("bad.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\"",
    )
    .unwrap();

    let missing = s(&p("missing.png"));
    let out = s(&p("out"));
    let under_file = s(&p("a-file/out"));
    let support = |m: &str| -> Vec<String> {
        [
            "predict",
            "--support",
            &img,
            "--mask",
            m,
            "--query",
            &query,
            "--out",
            &out,
        ]
        .map(String::from)
        .to_vec()
    };
    let predict = |name: &'static str, args: Vec<String>, words: &[&str]| Case {
        name,
        binary: "srpnet",
        args,
        exit: 1,
        words: words.iter().map(|s| s.to_string()).collect(),
        untouched: vec![p("out")],
    };
    let with = |mut args: Vec<String>, i: usize, v: &str| {
        args[i] = v.to_string();
        args
    };
    let cases = vec![
        // predict: the user's own images and masks.
        predict(
            "predict: missing support",
            with(support(&mask), 2, &missing),
            &["missing.png"],
        ),
        predict(
            "predict: truncated support",
            with(support(&mask), 2, &s(&p("truncated.jpg"))),
            &["truncated.jpg", "end-of-image"],
        ),
        predict(
            "predict: not an image",
            with(support(&mask), 2, &s(&p("text.png"))),
            &["text.png", "not an image"],
        ),
        predict(
            "predict: truncated query",
            with(support(&mask), 6, &s(&p("truncated.jpg"))),
            &["truncated.jpg"],
        ),
        predict(
            "predict: mask of the wrong size",
            support(&wrong_size_mask),
            &["small-mask.png"],
        ),
        predict(
            "predict: mask with no foreground",
            support(&s(&p("empty-mask.png"))),
            &["empty-mask.png"],
        ),
        predict(
            "predict: mask with no background",
            support(&s(&p("full-mask.png"))),
            &["full-mask.png"],
        ),
        predict(
            "predict: a class id the mask does not hold",
            [
                support(&s(&p("class-mask.png"))),
                vec!["--class-id".into(), "9".into()],
            ]
            .concat(),
            &["class-mask.png", "--class-id"],
        ),
        predict(
            "predict: two supports, one mask",
            [
                &support(&mask)[..3],
                &["--support".to_string(), img.clone()],
                &support(&mask)[3..],
            ]
            .concat(),
            &["--mask"],
        ),
        predict(
            "predict: missing run",
            [
                &support(&mask)[..1],
                &["--run".to_string(), s(&p("no-run"))],
                &support(&mask)[1..],
            ]
            .concat(),
            &["no-run"],
        ),
        case(
            "predict: unwritable output",
            "srpnet",
            &[
                "predict",
                "--support",
                &img,
                "--mask",
                &mask,
                "--query",
                &query,
                "--out",
                &under_file,
            ],
            1,
            &["a-file"],
        ),
        // eval
        case(
            "eval: missing run",
            "srpnet",
            &["eval", "--run", &s(&p("no-run"))],
            1,
            &["no-run"],
        ),
        case(
            "eval: run without a checkpoint",
            "srpnet",
            &["eval", "--run", &s(&p("no-checkpoint"))],
            1,
            &["no-checkpoint"],
        ),
        case(
            "eval: fold out of range",
            "srpnet",
            &["eval", "--untrained", "--fold", "9", "--episodes", "1"],
            1,
            &["fold 9"],
        ),
        case(
            "eval: unknown protocol",
            "srpnet",
            &["eval", "--untrained", "--protocol", "fast"],
            2,
            &["fast", "possible values"],
        ),
        // train
        case(
            "train: unknown field",
            "srpnet",
            &["train", "--config", &s(&p("unknown.toml")), "--out", &out],
            1,
            &["unknown.toml", "stepz"],
        ),
        case(
            "train: wrong type",
            "srpnet",
            &[
                "train",
                "--config",
                &s(&p("wrong-type.toml")),
                "--out",
                &out,
            ],
            1,
            &["wrong-type.toml", "steps"],
        ),
        case(
            "train: missing config",
            "srpnet",
            &["train", "--config", &missing, "--out", &out],
            1,
            &["missing.png"],
        ),
        case(
            "train: fold out of range",
            "srpnet",
            &["train", "--config", &s(&p("fold.toml")), "--out", &out],
            1,
            &["fold", "7"],
        ),
        case(
            "train: resume without a checkpoint",
            "srpnet",
            &["train", "--out", &s(&p("empty-root")), "--resume"],
            1,
            &["empty-root", "resume"],
        ),
        case(
            "train: unwritable output",
            "srpnet",
            &["train", "--steps", "1", "--out", &under_file],
            1,
            &["a-file"],
        ),
        case(
            "train: steps not a number",
            "srpnet",
            &["train", "--steps", "ten", "--out", &out],
            2,
            &["ten", "--steps"],
        ),
        // data
        case(
            "data check pascal: empty root",
            "srpnet",
            &["data", "check", "pascal", "--root", &s(&p("empty-root"))],
            1,
            &["empty-root", "VOC"],
        ),
        case(
            "data check coco: empty root",
            "srpnet",
            &["data", "check", "coco", "--root", &s(&p("empty-root"))],
            1,
            &["empty-root", "coco"],
        ),
        case(
            "data check folder: no classes.txt",
            "srpnet",
            &["data", "check", "folder", "--root", &s(&p("empty-root"))],
            1,
            &["empty-root/classes.txt", "images/"],
        ),
        case(
            "data prepare pascal: missing archive",
            "srpnet",
            &[
                "data",
                "prepare",
                "pascal",
                "--voc",
                &s(&p("VOCtrainval.tar")),
                "--sbd",
                &s(&p("benchmark.tgz")),
                "--out",
                &out,
            ],
            1,
            &["VOCtrainval.tar", "downloaded archive"],
        )
        .untouched(&[&p("out")]),
        case(
            "data prepare pascal: not an archive",
            "srpnet",
            &[
                "data",
                "prepare",
                "pascal",
                "--voc",
                &s(&p("text.png")),
                "--sbd",
                &s(&p("text.png")),
                "--out",
                &s(&p("prepared")),
            ],
            1,
            &["text.png", "member", "download it again"],
        ),
        case(
            "eval --visualize: unwritable folder",
            "srpnet",
            &[
                "eval",
                "--untrained",
                "--episodes",
                "1",
                "--seeds",
                "1",
                "--out",
                &out,
                "--visualize",
                &under_file,
            ],
            1,
            &["a-file", "cannot create"],
        )
        .untouched(&[&p("out")]),
        case(
            "data check: unknown benchmark",
            "srpnet",
            &["data", "check", "imagenet", "--root", &s(&p("empty-root"))],
            2,
            &["imagenet", "possible values"],
        ),
        case(
            "data export: unwritable output",
            "srpnet",
            &[
                "data",
                "export",
                "synthetic-5i",
                "--out",
                &under_file,
                "--train-per-class",
                "1",
                "--val-per-class",
                "1",
            ],
            1,
            &["a-file"],
        ),
        // weights check
        case(
            "weights check: truncated image",
            "srpnet",
            &["weights", "check", "--image", &s(&p("truncated.jpg"))],
            1,
            &["truncated.jpg", "end-of-image"],
        ),
        case(
            "weights check: not an image",
            "srpnet",
            &["weights", "check", "--image", &s(&p("text.png"))],
            1,
            &["text.png"],
        ),
        case(
            "weights check: missing image",
            "srpnet",
            &["weights", "check", "--image", &missing],
            1,
            &["missing.png", "fetch-weights"],
        ),
        case(
            "weights check: truncated manifest",
            "srpnet",
            &[
                "weights",
                "check",
                "--image",
                &img,
                "--weights",
                &s(&p("bad-manifest/model.json")),
            ],
            1,
            &["model.json"],
        ),
        case(
            "weights check: truncated safetensors",
            "srpnet",
            &[
                "weights",
                "check",
                "--image",
                &img,
                "--weights",
                &s(&p("bad.safetensors")),
            ],
            1,
            &["bad.safetensors"],
        ),
        // reproduce
        case(
            "reproduce: unknown id",
            "reproduce",
            &["table9"],
            1,
            &["table9", "--list"],
        ),
        case(
            "reproduce: empty data root (named before the weights)",
            "reproduce",
            &[
                "table1",
                "--quiet",
                "--data-root",
                &s(&p("empty-root")),
                "--out",
                &out,
            ],
            1,
            &["empty-root", "VOC"],
        ),
        case(
            "reproduce: unwritable output",
            "reproduce",
            &["table1", "--quiet", "--steps", "1", "--out", &under_file],
            1,
            &["a-file"],
        ),
        case(
            "reproduce: zero jobs",
            "reproduce",
            &["table1", "--jobs", "0"],
            2,
            &["--jobs", "0"],
        ),
        case(
            "reproduce: training seeds not numbers",
            "reproduce",
            &["table1", "--train-seeds", "one,two"],
            2,
            &["one"],
        ),
    ]
    .into_iter()
    .map(|c| {
        if c.untouched.is_empty() {
            c.untouched(&[&p("out"), &p("a-file")])
        } else {
            c
        }
    })
    .collect::<Vec<_>>();
    assert!(cases.len() >= 25, "only {} rows", cases.len());

    let mut failures = Vec::new();
    for c in &cases {
        let before: Vec<_> = c.untouched.iter().map(|p| snapshot(p)).collect();
        let exe = match c.binary {
            "srpnet" => env!("CARGO_BIN_EXE_srpnet"),
            _ => env!("CARGO_BIN_EXE_reproduce"),
        };
        let output = Command::new(exe)
            .args(&c.args)
            .env("SRPNET_CACHE", dir.join("no-cache"))
            .env_remove("SRPNET_DATA")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let mut problems = Vec::new();
        if output.status.code() != Some(c.exit) {
            problems.push(format!(
                "exit {:?}, expected {}",
                output.status.code(),
                c.exit
            ));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("it panicked".into());
        }
        for w in &c.words {
            if !stderr.contains(w.as_str()) {
                problems.push(format!("no {w:?} in the message"));
            }
        }
        // Each cause once: no sentence of the message repeated after a ": ".
        let parts: Vec<&str> = stderr.trim().split(": ").collect();
        if let Some(w) = parts.windows(2).find(|w| w[0] == w[1] && w[0].len() > 8) {
            problems.push(format!("a cause printed twice: {:?}", w[0]));
        }
        for (path, was) in c.untouched.iter().zip(&before) {
            if &snapshot(path) != was {
                problems.push(format!("{} was created or changed", path.display()));
                let _ = std::fs::remove_dir_all(path);
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    stderr: {}",
                c.name,
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Training that diverges stops with an error naming the step, and keeps the last checkpoint it
/// wrote before the loss went non-finite.
#[test]
fn a_diverging_training_stops_at_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = std::env::temp_dir().join(format!("srpnet-nan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The embedded preset at a learning rate that overflows within a few steps.
    let mut c = srpnet::train::TrainConfig::preset(
        srpnet::model::ModelConfig::srpnet(srpnet::model::Profile::Embedded),
        srpnet::model::Profile::Embedded,
    );
    c.steps = 40;
    c.learning_rate = 1e30;
    c.checkpoint_every = 1;
    let config = dir.join("nan.json");
    std::fs::write(&config, serde_json::to_string(&c).unwrap()).unwrap();
    let run = dir.join("run");
    let output = Command::new(env!("CARGO_BIN_EXE_srpnet"))
        .args(["train", "--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("step"),
        "the message must name the step: {stderr}"
    );
    let state = std::fs::read_to_string(run.join("checkpoint/state.json"))
        .unwrap_or_else(|e| panic!("no checkpoint kept in {}: {e}", run.display()));
    assert!(state.contains("\"step\""), "{state}");
    let _ = std::fs::remove_dir_all(&dir);
}
