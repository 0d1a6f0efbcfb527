//! Bad input: impossible configs, mismatched episode tensors, bad mask values, NaN images and a
//! backend that is not compiled in each give a typed error that says what to do, never a panic.

mod common;

use common::{device, tensor};
use srpnet::backend::{BackendError, BackendKind};
use srpnet::model::{EpisodeTensors, ModelConfig, ModelError, Profile};

fn invalid_field(config: &ModelConfig) -> &'static str {
    match config.init(&device()) {
        Err(ModelError::InvalidConfig { field, .. }) => field,
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(_) => panic!("an impossible config was accepted"),
    }
}

#[test]
fn impossible_configs_name_the_field() {
    let base = ModelConfig::srpnet(Profile::Embedded);
    let mut c = base.clone();
    c.pyramid.channels = 0;
    assert_eq!(invalid_field(&c), "pyramid.channels");
    let mut c = base.clone();
    c.pyramid.levels = vec![2, 5];
    assert_eq!(invalid_field(&c), "pyramid.levels");
    let mut c = base.clone();
    c.pyramid.levels = vec![];
    assert_eq!(invalid_field(&c), "pyramid.levels");
    let mut c = base.clone();
    c.metric.scale = -20.0;
    assert_eq!(invalid_field(&c), "metric.scale");
    let mut c = base.clone();
    c.backbone.base_width = 0;
    assert_eq!(invalid_field(&c), "backbone.base_width");
    let mut c = base.clone();
    c.backbone.output_stride = 12;
    assert_eq!(invalid_field(&c), "backbone.output_stride");
    let mut c = base.clone();
    c.backbone.blocks = [1, 0, 1, 1];
    assert_eq!(invalid_field(&c), "backbone.blocks");
    let mut c = base.clone();
    c.srp.lambda = f64::NAN;
    assert_eq!(invalid_field(&c), "srp.lambda");
    let mut c = base.clone();
    c.iqi.alpha = 1.5;
    assert_eq!(invalid_field(&c), "iqi.alpha");
    let mut c = base;
    c.par.lambda = -1.0;
    assert_eq!(invalid_field(&c), "par.lambda");
}

#[test]
fn config_limits_are_exact() {
    // Each limit on both sides: the last value accepted and the first rejected (and non-finite).
    let base = ModelConfig::srpnet(Profile::Embedded);
    type Edit = fn(&mut ModelConfig);
    let cases: [(&str, Edit, Edit); 13] = [
        (
            "metric.scale",
            |c| c.metric.scale = 1e-6,
            |c| c.metric.scale = 0.0,
        ),
        (
            "metric.scale",
            |c| c.metric.scale = 1e6,
            |c| c.metric.scale = f64::INFINITY,
        ),
        (
            "srp.lambda",
            |c| c.srp.lambda = 0.0,
            |c| c.srp.lambda = -1e-9,
        ),
        (
            "srp.lambda",
            |c| c.srp.lambda = 1e6,
            |c| c.srp.lambda = f64::INFINITY,
        ),
        (
            "par.lambda",
            |c| c.par.lambda = 0.0,
            |c| c.par.lambda = -1e-9,
        ),
        (
            "par.lambda",
            |c| c.par.lambda = 1e6,
            |c| c.par.lambda = f64::NAN,
        ),
        ("iqi.alpha", |c| c.iqi.alpha = 0.0, |c| c.iqi.alpha = -1e-9),
        (
            "iqi.alpha",
            |c| c.iqi.alpha = 1.0,
            |c| c.iqi.alpha = 1.0 + 1e-9,
        ),
        (
            "iqi.alpha",
            |c| c.iqi.alpha = 0.5,
            |c| c.iqi.alpha = f64::NAN,
        ),
        (
            "iqi.iterations",
            |c| c.iqi.iterations = 100,
            |c| c.iqi.iterations = 101,
        ),
        (
            "backbone.frozen_stages",
            |c| c.backbone.frozen_stages = 5,
            |c| c.backbone.frozen_stages = 6,
        ),
        (
            "backbone.batch_norm_epsilon",
            |c| c.backbone.batch_norm_epsilon = 1e-12,
            |c| c.backbone.batch_norm_epsilon = 0.0,
        ),
        (
            "backbone.batch_norm_epsilon",
            |c| c.backbone.batch_norm_epsilon = 1.0,
            |c| c.backbone.batch_norm_epsilon = f64::INFINITY,
        ),
    ];
    for (field, accepted, rejected) in cases {
        let mut c = base.clone();
        accepted(&mut c);
        assert!(c.validate().is_ok(), "{field}: {:?}", c.validate());
        let mut c = base.clone();
        rejected(&mut c);
        match c.validate() {
            Err(ModelError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn config_files_reject_unknown_fields_and_fill_defaults() {
    let err = serde_json::from_str::<ModelConfig>(r#"{"pyramid": {"chanels": 256}}"#).unwrap_err();
    assert!(err.to_string().contains("chanels"), "{err}");
    let err = toml::from_str::<ModelConfig>("[metric]\nmetric = \"manhattan\"\n").unwrap_err();
    assert!(err.to_string().contains("manhattan"), "{err}");
    let c: ModelConfig = toml::from_str("[pyramid]\nchannels = 256\n").unwrap();
    assert_eq!(c.pyramid.channels, 256);
    assert_eq!(c.pyramid.levels, vec![2, 3, 4]);
    assert_eq!(c.backbone, ModelConfig::default().backbone);
}

#[test]
fn mismatched_episode_shapes_are_a_shape_error() {
    let d = device();
    let img = |n, h, w| tensor(vec![0.0; n * 3 * h * w], [n, 3, h, w], &d);
    let mask = |n, h, w| tensor(vec![0.0; n * h * w], [n, h, w], &d);
    let cases = [
        EpisodeTensors::new(img(1, 8, 8), mask(1, 8, 9), img(1, 8, 8), None),
        EpisodeTensors::new(img(2, 8, 8), mask(1, 8, 8), img(1, 8, 8), None),
        EpisodeTensors::new(img(1, 8, 8), mask(1, 8, 8), img(1, 9, 8), None),
        EpisodeTensors::new(
            img(1, 8, 8),
            mask(1, 8, 8),
            img(1, 8, 8),
            Some(mask(1, 4, 4)),
        ),
        EpisodeTensors::new(
            tensor(vec![0.0; 64], [1, 1, 8, 8], &d),
            mask(1, 8, 8),
            img(1, 8, 8),
            None,
        ),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        match case {
            Err(ModelError::Shape(msg)) => assert!(!msg.is_empty()),
            other => panic!("case {i}: expected a shape error, got {other:?}"),
        }
    }
}

#[test]
fn host_buffers_are_checked() {
    let d = device();
    let (h, w) = (4, 4);
    let image = vec![0.5; 3 * h * w];
    let mask = vec![0u8; h * w];
    // Wrong length.
    let r = EpisodeTensors::from_host(1, [h, w], &image[1..], &mask, &image, None, &d);
    assert!(matches!(r, Err(ModelError::Shape(_))));
    // A class id where a binary mask belongs.
    let mut bad = mask.clone();
    bad[3] = 7;
    match EpisodeTensors::from_host(1, [h, w], &image, &bad, &image, None, &d) {
        Err(ModelError::Shape(msg)) => assert!(msg.contains('7'), "{msg}"),
        other => panic!("expected a mask-value error, got {other:?}"),
    }
    // NaN pixels.
    let mut nan = image.clone();
    nan[0] = f32::NAN;
    let r = EpisodeTensors::from_host(1, [h, w], &nan, &mask, &image, None, &d);
    assert!(matches!(r, Err(ModelError::NonFinite(_))));
}

#[test]
fn a_backend_not_compiled_in_says_which_feature_to_build() {
    for backend in BackendKind::ALL {
        match backend.device(false) {
            Ok(_) => assert!(backend.is_compiled()),
            Err(BackendError::Unavailable { .. }) => assert!(backend.is_compiled()),
            Err(BackendError::NotCompiled { feature, .. }) => {
                assert!(!backend.is_compiled());
                let msg = BackendError::NotCompiled {
                    backend: backend.name(),
                    feature,
                }
                .to_string();
                assert!(msg.contains("--features"), "{msg}");
            }
        }
    }
}

#[test]
fn config_files_load_from_toml_and_json_and_name_the_file_on_error() {
    use srpnet::experiment::{ConfigFileError, load_config};
    let dir = std::env::temp_dir().join(format!("srpnet-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("model.toml");
    std::fs::write(&toml_path, "[iqi]\niterations = 5\n").unwrap();
    let c: ModelConfig = load_config(&toml_path).unwrap();
    assert_eq!(c.iqi.iterations, 5);
    let json_path = dir.join("model.json");
    std::fs::write(&json_path, r#"{"metric": {"scale": 10.0}}"#).unwrap();
    let c: ModelConfig = load_config(&json_path).unwrap();
    assert_eq!(c.metric.scale, 10.0);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[pyramid]\nchanels = 3\n").unwrap();
    let err = load_config::<ModelConfig>(&bad).unwrap_err();
    assert!(matches!(err, ConfigFileError::Toml { .. }));
    assert!(
        err.to_string().contains("bad.toml") && err.to_string().contains("chanels"),
        "{err}"
    );
    let missing = load_config::<ModelConfig>(&dir.join("missing.toml")).unwrap_err();
    assert!(matches!(missing, ConfigFileError::Read { .. }));
    let yaml = load_config::<ModelConfig>(&dir.join("model.yaml")).unwrap_err();
    assert!(matches!(
        yaml,
        ConfigFileError::Read { .. } | ConfigFileError::Extension { .. }
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
