//! Training runs: the kill/resume guarantee (a child process killed mid-run and resumed ends
//! with the same weights as an uninterrupted run), and the errors that protect a run folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use common::max_abs_diff;
use srpnet::backend::BackendKind;
use srpnet::data::synthetic::Synthetic5i;
use srpnet::model::{ModelConfig, Profile};
use srpnet::train::{RunDir, TrainConfig, TrainError, TrainOptions, load_checkpoint, train};

fn tiny_config(steps: u64, checkpoint_every: u64) -> TrainConfig {
    let mut model = ModelConfig::srpnet(Profile::Embedded);
    model.backbone.base_width = 4;
    model.pyramid.channels = 16;
    let mut c = TrainConfig::preset(model, Profile::Embedded);
    c.image_size = 33;
    c.steps = steps;
    c.checkpoint_every = checkpoint_every;
    c.log_every = 1;
    c.lr_milestones = vec![steps / 2];
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srpnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every float parameter and running statistic of a model, flattened in module order.
fn weights(dir: &Path, config: &TrainConfig) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.try_into_vec::<f32>().unwrap());
        }
    }
    let model = config.model.init(&Device::flex()).unwrap();
    let (model, _) = load_checkpoint(&dir.join("checkpoint"), model).unwrap();
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn srpnet_train(run: &Path, config: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_srpnet"));
    cmd.args(["train", "--quiet", "--out"])
        .arg(run)
        .arg("--config")
        .arg(config);
    if resume {
        cmd.arg("--resume");
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("checkpoint/state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["step"].as_u64()
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let dir = temp_dir("resume");
    let config = tiny_config(120, 10);
    let config_path = dir.join("train.json");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();

    let straight = dir.join("straight");
    let out = srpnet_train(&straight, &config_path, false)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Start again, kill the child (SIGKILL: no chance to clean up) once it has checkpointed.
    let killed = dir.join("killed");
    let mut child = srpnet_train(&killed, &config_path, false).spawn().unwrap();
    let start = Instant::now();
    let mut killed_at = None;
    while start.elapsed() < Duration::from_secs(120) {
        if let Some(step) = checkpoint_step(&killed) {
            if step < config.steps {
                child.kill().unwrap();
                killed_at = Some(step);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    let killed_at = killed_at.expect("the child finished before it could be killed");
    assert!(checkpoint_step(&killed).unwrap() < config.steps);
    println!("killed after the checkpoint of step {killed_at}");

    let out = srpnet_train(&killed, &config_path, true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checkpoint_step(&killed), Some(config.steps));
    let (a, b) = (weights(&straight, &config), weights(&killed, &config));
    assert_eq!(a.len(), b.len());
    // NaN-aware: a NaN weight in either run fails here instead of vanishing in a max.
    let diff = max_abs_diff(&a, &b);
    assert_eq!(
        diff, 0.0,
        "resumed weights differ from the uninterrupted run by {diff}"
    );
    // The log has every step once.
    let log = std::fs::read_to_string(killed.join("train-log.csv")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=config.steps).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn options(resume: bool, flag: &AtomicBool) -> TrainOptions<'_> {
    TrainOptions {
        backend: BackendKind::Flex,
        resume,
        progress: false,
        interrupt: flag,
        on_step: None,
    }
}

#[test]
fn run_folders_are_protected() {
    let dir = temp_dir("protect");
    let bench = Synthetic5i::with_size(33);
    let flag = AtomicBool::new(false);
    let config = tiny_config(4, 2);
    let run = RunDir::new(dir.join("run"));

    // Nothing to resume yet.
    let err = train(&config, &run, &bench, &options(true, &flag)).unwrap_err();
    assert!(matches!(err, TrainError::NothingToResume { .. }), "{err}");

    train(&config, &run, &bench, &options(false, &flag)).unwrap();
    let weights_before = std::fs::read(run.checkpoint().join("model.bpk")).unwrap();

    // Training again into the same folder without --resume would overwrite it: refused.
    let err = train(&config, &run, &bench, &options(false, &flag)).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");

    // Another config into the same folder: refused.
    let mut other = config.clone();
    other.learning_rate *= 2.0;
    let err = train(&other, &run, &bench, &options(true, &flag)).unwrap_err();
    assert!(matches!(err, TrainError::ConfigMismatch { .. }), "{err}");

    // A checkpoint from another model config: a clear error.
    let mut wider = config.clone();
    wider.model.pyramid.channels = 24;
    let model = wider.model.init(&Device::flex()).unwrap();
    let err = load_checkpoint(&run.checkpoint(), model).unwrap_err();
    assert!(err.to_string().contains("model.bpk"), "{err}");

    // Nothing was lost along the way.
    assert_eq!(
        std::fs::read(run.checkpoint().join("model.bpk")).unwrap(),
        weights_before
    );

    // A truncated weights file: an error naming it, not a panic.
    let bpk = run.checkpoint().join("model.bpk");
    std::fs::write(&bpk, &weights_before[..weights_before.len() / 3]).unwrap();
    let model = config.model.init(&Device::flex()).unwrap();
    let err = load_checkpoint(&run.checkpoint(), model).unwrap_err();
    assert!(err.to_string().contains("model.bpk"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_interrupt_flag_saves_a_checkpoint_and_stops() {
    let dir = temp_dir("interrupt");
    let bench = Synthetic5i::with_size(33);
    let flag = AtomicBool::new(true);
    let run = RunDir::new(dir.join("run"));
    let outcome = train(&tiny_config(50, 25), &run, &bench, &options(false, &flag)).unwrap();
    assert!(outcome.interrupted);
    assert_eq!(outcome.state.step, 0);
    assert!(run.latest_checkpoint().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_training_configs_name_the_field() {
    let mut c = tiny_config(10, 5);
    c.momentum = 1.5;
    match c.validate() {
        Err(TrainError::InvalidConfig { field, .. }) => assert_eq!(field, "momentum"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let mut c = tiny_config(10, 5);
    c.fold = 4;
    assert!(matches!(
        c.validate(),
        Err(TrainError::InvalidConfig { field: "fold", .. })
    ));
    let err = serde_json::from_str::<TrainConfig>(r#"{"stepz": 3}"#).unwrap_err();
    assert!(err.to_string().contains("stepz"));
}

#[test]
fn learning_rate_steps_down_at_milestones() {
    let mut c = tiny_config(100, 50);
    c.learning_rate = 1.0;
    c.lr_milestones = vec![10, 20];
    c.lr_gamma = 0.1;
    assert_eq!(c.learning_rate_at(9), 1.0);
    assert!((c.learning_rate_at(10) - 0.1).abs() < 1e-12);
    assert!((c.learning_rate_at(25) - 0.01).abs() < 1e-12);
}
