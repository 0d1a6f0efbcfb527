//! The paper profile on real pixels, with the fetched ImageNet weights: a smoke run of
//! `reproduce` end to end, its `--plan`, a resume that never reloads the weights, and the test
//! that the ImageNet start matters. These need `scripts/fetch-weights.sh`'s weights and photos:
//! without them they skip loudly (stderr), and with `SRPNET_REQUIRE_ASSETS=1` (CI) they fail.
//!
//! Cost on a 2-core CPU: ResNet-50 at 97-129 px instead of 417 (about 2-4 s a training step
//! instead of 33 s).

mod common;
mod paper_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use srpnet::backend::BackendKind;
use srpnet::data::pascal::{Pascal5i, PascalConfig, PascalProtocol};
use srpnet::eval::{EvalSettings, evaluate};
use srpnet::model::{ModelConfig, Profile};
use srpnet::train::TrainConfig;
use srpnet::weights::WeightsFormat;
use srpnet::weights::init::{BackboneInit, fingerprint, load_backbone_into};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srpnet-smoke-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The fixture data root (20 classes x `per_class` images of `size` px) under a new temp dir.
fn fixture(name: &str, photos: &Path, per_class: usize, size: u32) -> PathBuf {
    let root = temp(name).join("data");
    paper_fixture::build(&root, photos, per_class, size);
    root
}

fn sha_of_fetched(weights: &Path) -> String {
    fingerprint(&weights.join("model.json"), WeightsFormat::TfjsLayers).unwrap()
}

// ANCHOR: imagenet_matters
/// 1-shot mIoU of the untrained-pyramid SRPNet (paper profile, fidelity, no training) on the
/// real-pixel fixture: ImageNet backbone against the same model with random backbone weights.
#[test]
fn the_imagenet_start_matters_on_real_pixels() {
    let Some((_, photos)) = paper_fixture::assets("the_imagenet_start_matters_on_real_pixels")
    else {
        return;
    };
    let root = fixture("iou", &photos, 3, 160);
    let bench = Pascal5i::open(&PascalConfig {
        root,
        protocol: PascalProtocol::Panet,
        min_object_pixels: None,
    })
    .unwrap();
    let device = BackendKind::Flex.device(false).unwrap();
    let miou = |init: BackboneInit| {
        let mut config = TrainConfig::preset(ModelConfig::srpnet(Profile::Paper), Profile::Paper);
        config.image_size = 129;
        config.backbone = init;
        let (config, weights) = config.resolved().unwrap();
        let _rng = common::seed(&device, config.seed);
        let mut model = config.model.init(&device).unwrap();
        if let Some(w) = &weights {
            model = load_backbone_into(model, w, &device).unwrap().0;
        }
        let mut per_fold = Vec::new();
        for fold in [0, 1, 2, 3] {
            let settings = EvalSettings {
                fold,
                shots: 1,
                episodes: 6,
                seeds: vec![1234],
                image_size: config.image_size,
                normalization: config.normalization,
                original_size: false,
            };
            let report = evaluate(&model, &bench, &settings, |_, _| {}).unwrap();
            per_fold.push(report.seeds[0].miou);
        }
        per_fold.iter().sum::<f64>() / per_fold.len() as f64
    };
    let imagenet = miou(BackboneInit::fetched());
    let random = miou(BackboneInit::default());
    eprintln!(
        "1-shot mIoU, untrained pyramid, 4 folds x 6 episodes at 129 px: ImageNet backbone \
         {:.1}%, random backbone {:.1}%",
        100.0 * imagenet,
        100.0 * random
    );
    assert!(imagenet.is_finite() && random.is_finite());
    assert!(
        imagenet > random + 0.10,
        "ImageNet {imagenet:.3} is not clearly above random {random:.3}"
    );
}
// ANCHOR_END: imagenet_matters

/// `reproduce smoke`: the paper profile (ResNet-50 from the fetched ImageNet weights, frozen
/// batch norm) trained a few steps on the real-pixel fixture and evaluated, end to end.
#[test]
fn smoke_reproduction_trains_from_imagenet_on_real_pixels_and_records_the_weights() {
    let Some((weights, photos)) = paper_fixture::assets(
        "smoke_reproduction_trains_from_imagenet_on_real_pixels_and_records_the_weights",
    ) else {
        return;
    };
    let root = fixture("reproduce", &photos, 3, 160);
    let out = root.parent().unwrap().join("out");
    let sha = sha_of_fetched(&weights);

    // The plan first: every model, the episodes, and a measured projection.
    let plan = Command::new(env!("CARGO_BIN_EXE_reproduce"))
        .args(["smoke", "--profile", "paper", "--plan", "--data-root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&plan.stdout).to_string();
    eprintln!("{text}{}", String::from_utf8_lossy(&plan.stderr));
    assert!(plan.status.success());
    for expected in [
        "models (2 rows, 2 distinct trainings",
        "evaluations",
        "timed",
        "projection:",
        "peak memory",
    ] {
        assert!(
            text.contains(expected),
            "the plan lacks `{expected}`: {text}"
        );
    }
    assert!(
        !out.join("runs").exists() || std::fs::read_dir(out.join("runs")).unwrap().count() == 0,
        "--plan trains nothing"
    );

    let run = Command::new(env!("CARGO_BIN_EXE_reproduce"))
        .args(["smoke", "--profile", "paper", "--quiet", "--data-root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout).to_string();
    eprintln!("{text}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success());
    let csv = std::fs::read_to_string(out.join("smoke.pascal-5i-panet.csv")).unwrap();
    assert!(
        csv.contains("smoke run"),
        "the outputs must say smoke run: {csv}"
    );
    assert!(
        csv.contains(&sha),
        "the outputs must name the weights' sha256: {csv}"
    );
    let md = std::fs::read_to_string(out.join("smoke.pascal-5i-panet.md")).unwrap();
    assert!(md.contains(&sha) && md.contains("smoke run"));
    // Every trained run records the resolved config: weights, their sha256, frozen BN, v1.
    let mut runs = 0;
    for entry in std::fs::read_dir(out.join("runs")).unwrap() {
        let config = std::fs::read_to_string(entry.unwrap().path().join("config.json")).unwrap();
        let config: TrainConfig = serde_json::from_str(&config).unwrap();
        assert_eq!(config.backbone.sha256.as_deref(), Some(sha.as_str()));
        assert!(config.model.backbone.frozen_batch_norm);
        runs += 1;
    }
    assert_eq!(runs, 2, "SRPNet and PANet, one fold");
    // The numbers are finite (a smoke run's values mean nothing else).
    let mut rows = csv.lines().filter(|l| !l.starts_with('#'));
    let header = rows.next().expect("a header row");
    let column = header
        .split(',')
        .position(|c| c == "miou")
        .unwrap_or_else(|| panic!("no miou column in {header}"));
    for line in rows {
        let miou: f64 = line.split(',').nth(column).unwrap().parse().unwrap();
        assert!(miou.is_finite() && (0.0..=1.0).contains(&miou), "{line}");
    }
}

/// A run started from ImageNet weights resumes from its checkpoint without reading them: the
/// weights may even be gone. Frozen batch norm keeps ImageNet's statistics through training.
#[test]
fn resume_never_reloads_the_imagenet_weights() {
    let Some((weights, photos)) =
        paper_fixture::assets("resume_never_reloads_the_imagenet_weights")
    else {
        return;
    };
    let root = fixture("resume", &photos, 3, 128);
    let dir = root.parent().unwrap().to_path_buf();
    // A private copy of the weights: model.json copied, shards linked.
    let copy = dir.join("weights");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&weights).unwrap() {
        let path = entry.unwrap().path();
        let target = copy.join(path.file_name().unwrap());
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, &target).unwrap();
        } else {
            std::os::unix::fs::symlink(&path, &target).unwrap();
        }
    }
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "image_size = 97\nsteps = 1\ncheckpoint_every = 1\n[data]\nbenchmark = \"pascal-5i\"\n\
             root = {:?}\n[backbone]\nweights = {:?}\n",
            root.display().to_string(),
            copy.display().to_string()
        ),
    )
    .unwrap();
    let run_dir = dir.join("run");
    let train = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_srpnet"))
            .args(["train", "--quiet", "--out"])
            .arg(&run_dir)
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text
    };
    let first = train(&["--config", config.to_str().unwrap()]);
    assert!(first.contains("ImageNet weights"), "{first}");
    std::fs::remove_dir_all(&copy).unwrap();
    // Resuming the finished run: it must not need the (now deleted) weights.
    let second = train(&["--resume"]);
    assert!(second.contains("not reloaded"), "{second}");
    let saved: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved.backbone.sha256.as_deref(),
        Some(sha_of_fetched(&weights).as_str())
    );

    // Frozen batch norm: the stem's statistics and affine are still ImageNet's after a step.
    let device = BackendKind::Flex.device(false).unwrap();
    let fresh = {
        let mut c = saved.clone();
        c.backbone.weights = Some("fetched".into());
        c.backbone.sha256 = None;
        let (c, w) = c.resolved().unwrap();
        load_backbone_into(c.model.init(&device).unwrap(), &w.unwrap(), &device)
            .unwrap()
            .0
    };
    let (trained, state) = srpnet::train::load_checkpoint(
        &run_dir.join("checkpoint"),
        saved.model.init(&device).unwrap(),
    )
    .unwrap();
    assert_eq!(state.step, 1);
    let stem_bn = |m: &srpnet::model::SrpNet| {
        let bn = &m.backbone.stem.bn;
        let v = |t: burn::tensor::Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        (
            v(bn.running_mean.value_sync()),
            v(bn.gamma.val()),
            v(bn.beta.val()),
        )
    };
    assert_eq!(
        stem_bn(&fresh),
        stem_bn(&trained),
        "frozen batch norm moved"
    );
    // The convolutions did train.
    let conv = |m: &srpnet::model::SrpNet| {
        m.backbone.layer4[0]
            .conv1
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_ne!(
        conv(&fresh),
        conv(&trained),
        "the backbone's convolutions must train"
    );
}

/// Not a check: writes the real-pixel fixture (6 images per class, 160 px) to
/// `$SRPNET_FIXTURE_OUT`, for trying the paper profile by hand, e.g.
/// `SRPNET_FIXTURE_OUT=/tmp/fixture cargo test --test paper_smoke write_the_fixture -- --ignored`
/// then `reproduce table1 --data-root /tmp/fixture --plan`.
#[test]
#[ignore = "writes a data root for manual runs"]
fn write_the_fixture() {
    let out = PathBuf::from(std::env::var("SRPNET_FIXTURE_OUT").expect("set SRPNET_FIXTURE_OUT"));
    let (_, photos) = paper_fixture::assets("write_the_fixture").expect("the photos are needed");
    let names = paper_fixture::build(&out, &photos, 6, 160);
    eprintln!("wrote {} images under {}", names.len(), out.display());
}
