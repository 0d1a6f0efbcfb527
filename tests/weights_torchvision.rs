//! The torchvision-layout reader on tiny state dicts this test writes itself, as safetensors and
//! as a (legacy-format) `.pth`: values land in the right tensors (batch norm weight/bias as
//! gamma/beta, the fc weight transposed), `num_batches_tracked` is ignored, and broken files give
//! typed errors, never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Param;
use burn::tensor::Tensor;
use common::{device, noise, tensor, values};
use srpnet::model::backbone::{BackboneConfig, StrideVariant};
use srpnet::weights::{WeightsError, WeightsFormat, torchvision};

const CLASSES: usize = 10;

fn tiny_config() -> BackboneConfig {
    BackboneConfig {
        blocks: [1, 1, 1, 1],
        base_width: 4,
        variant: StrideVariant::V1_5,
        output_stride: 32,
        batch_norm_epsilon: 1e-5,
        ..BackboneConfig::resnet50()
    }
}

fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "srpnet-weights-tv-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A state-dict entry: float32 values, or the int64 scalar `num_batches_tracked`.
struct Entry {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
    long: bool,
}

/// torchvision `resnet` state dict for blocks [1, 1, 1, 1], base width 4, `CLASSES` classes.
fn state_dict(prefix: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, positive: bool| {
        let n = shape.iter().product();
        let mut values = noise(out.len() as u64 + 100, n);
        if positive {
            values.iter_mut().for_each(|x| *x = x.abs() + 0.5);
        }
        out.push(Entry {
            name: format!("{prefix}{name}"),
            shape,
            values,
            long: false,
        });
    };
    let mut conv_bn = |conv: &str, bn: &str, shape: [usize; 4]| {
        add(format!("{conv}.weight"), shape.to_vec(), false);
        for (p, positive) in [
            ("weight", false),
            ("bias", false),
            ("running_mean", false),
            ("running_var", true),
        ] {
            add(format!("{bn}.{p}"), vec![shape[0]], positive);
        }
    };
    conv_bn("conv1", "bn1", [4, 3, 7, 7]);
    let mut in_ch = 4;
    for l in 1..=4 {
        let w = 4 << (l - 1);
        let b = format!("layer{l}.0");
        conv_bn(&format!("{b}.conv1"), &format!("{b}.bn1"), [w, in_ch, 1, 1]);
        conv_bn(&format!("{b}.conv2"), &format!("{b}.bn2"), [w, w, 3, 3]);
        conv_bn(&format!("{b}.conv3"), &format!("{b}.bn3"), [4 * w, w, 1, 1]);
        conv_bn(
            &format!("{b}.downsample.0"),
            &format!("{b}.downsample.1"),
            [4 * w, in_ch, 1, 1],
        );
        in_ch = 4 * w;
    }
    add("fc.weight".into(), vec![CLASSES, 128], false);
    add("fc.bias".into(), vec![CLASSES], false);
    // Every batch norm carries a step counter.
    let counters: Vec<String> = out
        .iter()
        .filter(|e| e.name.ends_with("running_var"))
        .map(|e| e.name.replace("running_var", "num_batches_tracked"))
        .collect();
    for name in counters {
        out.push(Entry {
            name,
            shape: vec![],
            values: vec![7.0],
            long: true,
        });
    }
    out
}

fn entry_bytes(e: &Entry) -> Vec<u8> {
    if e.long {
        e.values
            .iter()
            .flat_map(|v| (*v as i64).to_le_bytes())
            .collect()
    } else {
        e.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// The safetensors layout, written by hand: u64 header length, JSON header, data.
fn write_safetensors(path: &Path, entries: &[Entry]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for e in entries {
        let bytes = entry_bytes(e);
        header.insert(
            e.name.clone(),
            serde_json::json!({
                "dtype": if e.long { "I64" } else { "F32" },
                "shape": e.shape,
                "data_offsets": [data.len(), data.len() + bytes.len()],
            }),
        );
        data.extend(bytes);
    }
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(data);
    std::fs::write(path, file).unwrap();
}

/// A minimal pickle writer, enough for a PyTorch legacy-format (pre-1.6, non-zip) state dict:
/// magic number, protocol version, system info, the dict of tensors (storages as persistent
/// ids), the storage key list, then each storage as an i64 element count and its bytes.
mod pickle {
    pub fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }

    pub fn int(out: &mut Vec<u8>, i: usize) {
        out.push(b'J');
        out.extend((i as i32).to_le_bytes());
    }

    pub fn ints(out: &mut Vec<u8>, values: &[usize]) {
        out.push(b'(');
        for &v in values {
            int(out, v);
        }
        out.push(b't');
    }

    pub fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80, 0x02];
        out.extend_from_slice(body);
        out.push(b'.');
        out
    }
}

fn write_pth(path: &Path, entries: &[Entry]) {
    use pickle::{framed, int, ints, string};
    // 0x1950a86a20f9469cfc6c as a LONG1.
    let magic = [
        0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
    ];
    let mut file = framed(&magic);
    file.extend(framed(&[b'M', 0xe9, 0x03])); // 1001
    let mut sys = vec![b'}', b'('];
    string(&mut sys, "little_endian");
    sys.extend([0x88, b'u']);
    file.extend(framed(&sys));

    let mut root = vec![b'}', b'('];
    for (key, e) in entries.iter().enumerate() {
        string(&mut root, &e.name);
        root.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        // Persistent id: ('storage', type, key, location, numel, None).
        root.push(b'(');
        string(&mut root, "storage");
        root.extend(if e.long {
            &b"ctorch\nLongStorage\n"[..]
        } else {
            &b"ctorch\nFloatStorage\n"[..]
        });
        string(&mut root, &key.to_string());
        string(&mut root, "cpu");
        int(&mut root, e.values.len());
        root.extend([b'N', b't', b'Q']);
        int(&mut root, 0);
        ints(&mut root, &e.shape);
        let strides: Vec<usize> = (0..e.shape.len())
            .map(|d| e.shape[d + 1..].iter().product())
            .collect();
        ints(&mut root, &strides);
        root.push(0x89); // requires_grad False
        root.extend(b"ccollections\nOrderedDict\n)R");
        root.extend([b't', b'R']);
    }
    root.push(b'u');
    file.extend(framed(&root));

    let mut keys = vec![b']', b'('];
    for key in 0..entries.len() {
        string(&mut keys, &key.to_string());
    }
    keys.push(b'e');
    file.extend(framed(&keys));
    for e in entries {
        file.extend((e.values.len() as i64).to_le_bytes());
        file.extend(entry_bytes(e));
    }
    std::fs::write(path, file).unwrap();
}

fn get<'a>(entries: &'a [Entry], name: &str) -> &'a [f32] {
    &entries.iter().find(|e| e.name == name).unwrap().values
}

fn param<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    values(p.val())
}

fn check_round_trip(path: &Path, entries: &[Entry], format: WeightsFormat) {
    let (model, report) = torchvision::load_classifier(path, &tiny_config(), &device()).unwrap();
    assert_eq!(report.format, format);
    assert_eq!(report.applied.len(), 17 * 5 + 2, "{report}");
    assert!(report.missing.is_empty(), "{report}");
    assert!(report.unused.is_empty(), "{report}");
    assert_eq!(
        report.ignored.len(),
        17,
        "one num_batches_tracked per batch norm"
    );
    assert_eq!(report.folded_biases, 0);

    let stem = &model.backbone.stem;
    assert_eq!(param(&stem.conv.weight), get(entries, "conv1.weight"));
    assert_eq!(param(&stem.bn.gamma), get(entries, "bn1.weight"));
    assert_eq!(param(&stem.bn.beta), get(entries, "bn1.bias"));
    assert_eq!(
        values(stem.bn.running_mean.value()),
        get(entries, "bn1.running_mean")
    );
    assert_eq!(
        values(stem.bn.running_var.value()),
        get(entries, "bn1.running_var")
    );
    let block = &model.backbone.layer2[0];
    assert_eq!(
        param(&block.conv2.weight),
        get(entries, "layer2.0.conv2.weight")
    );
    assert_eq!(param(&block.bn3.gamma), get(entries, "layer2.0.bn3.weight"));
    let down = block.downsample.as_ref().unwrap();
    assert_eq!(
        param(&down.conv.weight),
        get(entries, "layer2.0.downsample.0.weight")
    );
    assert_eq!(
        values(down.bn.running_var.value()),
        get(entries, "layer2.0.downsample.1.running_var")
    );
    // fc: torch [out, in] -> Burn [in, out].
    let fc = get(entries, "fc.weight");
    let ours = param(&model.fc.weight);
    for o in 0..CLASSES {
        for i in 0..128 {
            assert_eq!(ours[i * CLASSES + o], fc[o * 128 + i]);
        }
    }
    assert_eq!(
        param(model.fc.bias.as_ref().unwrap()),
        get(entries, "fc.bias")
    );
}

#[test]
fn safetensors_round_trips_exactly() {
    let dir = scratch("st");
    let entries = state_dict("");
    let path = dir.join("resnet.safetensors");
    write_safetensors(&path, &entries);
    check_round_trip(&path, &entries, WeightsFormat::Safetensors);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pth_round_trips_exactly_through_burn_store() {
    let dir = scratch("pth");
    let entries = state_dict("");
    let path = dir.join("resnet.pth");
    write_pth(&path, &entries);
    check_round_trip(&path, &entries, WeightsFormat::Pytorch);

    // The same weights from both formats give the same network.
    let st = dir.join("resnet.safetensors");
    write_safetensors(&st, &entries);
    let images = tensor(noise(3, 3 * 32 * 32), [1, 3, 32, 32], &device());
    let (a, _) = torchvision::load_classifier(&path, &tiny_config(), &device()).unwrap();
    let (b, _) = torchvision::load_classifier(&st, &tiny_config(), &device()).unwrap();
    assert_eq!(values(a.forward(images.clone())), values(b.forward(images)));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn data_parallel_prefixes_and_backbone_only_loads() {
    let dir = scratch("prefix");
    let entries = state_dict("module.");
    let path = dir.join("resnet.safetensors");
    write_safetensors(&path, &entries);
    let (backbone, report) = torchvision::load_backbone(&path, &tiny_config(), &device()).unwrap();
    assert!(report.missing.is_empty(), "{report}");
    assert_eq!(report.unused, ["module.fc.bias", "module.fc.weight"]);
    assert_eq!(
        param(&backbone.layer4[0].conv1.weight),
        get(&entries, "module.layer4.0.conv1.weight")
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn load_err(path: &Path) -> WeightsError {
    match torchvision::load_classifier(path, &tiny_config(), &device()) {
        Ok(_) => panic!("loading {} should fail", path.display()),
        Err(e) => e,
    }
}

#[test]
fn wrong_shapes_name_the_tensor_and_the_file() {
    let dir = scratch("shape");
    let mut entries = state_dict("");
    let e = entries
        .iter_mut()
        .find(|e| e.name == "layer2.0.conv2.weight")
        .unwrap();
    e.shape = vec![8, 8, 1, 9];
    e.values = noise(1, 8 * 8 * 9);
    for (name, write) in [
        ("r.safetensors", write_safetensors as fn(&Path, &[Entry])),
        ("r.pth", write_pth),
    ] {
        let path = dir.join(name);
        write(&path, &entries);
        match load_err(&path) {
            WeightsError::ShapeMismatch {
                tensor,
                file,
                expected,
                found,
            } => {
                assert_eq!(tensor, "layer2.0.conv2.weight");
                assert_eq!(file, path);
                assert_eq!(expected, [8, 8, 3, 3]);
                assert_eq!(found, [8, 8, 1, 9]);
            }
            other => panic!("expected ShapeMismatch, got {other}"),
        }
    }
}

#[test]
fn truncated_and_foreign_files_are_errors_not_panics() {
    let dir = scratch("broken");
    let entries = state_dict("");
    for (name, write) in [
        ("t.safetensors", write_safetensors as fn(&Path, &[Entry])),
        ("t.pth", write_pth),
    ] {
        let path = dir.join(name);
        write(&path, &entries);
        let bytes = std::fs::read(&path).unwrap();
        for keep in [bytes.len() - 100, bytes.len() / 2, 40, 0] {
            std::fs::write(&path, &bytes[..keep]).unwrap();
            let e = load_err(&path);
            assert!(
                matches!(
                    e,
                    WeightsError::Foreign { .. } | WeightsError::Truncated { .. }
                ),
                "{name} cut to {keep} bytes: {e}"
            );
        }
        std::fs::write(
            &path,
            noise(9, 1000)
                .iter()
                .map(|v| (v * 127.0) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let e = load_err(&path);
        assert!(
            matches!(e, WeightsError::Foreign { .. }),
            "{name} garbage: {e}"
        );
    }
    let e = load_err(&dir.join("absent.safetensors"));
    assert!(matches!(e, WeightsError::Io { .. }), "{e}");
}

#[test]
fn a_state_dict_without_head_cannot_make_a_classifier() {
    let dir = scratch("nohead");
    let mut entries = state_dict("");
    entries.retain(|e| !e.name.starts_with("fc."));
    let path = dir.join("r.safetensors");
    write_safetensors(&path, &entries);
    assert!(matches!(load_err(&path), WeightsError::NoHead { .. }));
    let (_, report) = torchvision::load_backbone(&path, &tiny_config(), &device()).unwrap();
    report.require_complete().unwrap();
}
