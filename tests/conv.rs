//! The convolution gradients that training uses, checked against the definition of a
//! convolution summed in f64 by plain loops. Burn's default weight gradient is replaced by an
//! im2col + GEMM version (`vendor/burn-backend`, see the performance chapter); these tests hold
//! for every kernel size, stride, dilation and padding the backbone uses, and for random ones, on
//! flex and on every other compiled backend that has a device (the patch serves them all).

mod common;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use common::noise;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: usize,
}

impl Case {
    fn output(&self) -> usize {
        (self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1) / self.stride + 1
    }
}

/// (output, dL/dx, dL/dW) of L = sum(conv(x, W) * g), by loops over the definition, in f64.
fn reference(c: Case, x: &[f32], w: &[f32], g: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, ci, co, h, k, o) = (c.batch, c.c_in, c.c_out, c.size, c.kernel, c.output());
    let mut y = vec![0.0; n * co * o * o];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for b in 0..n {
        for oc in 0..co {
            for oy in 0..o {
                for ox in 0..o {
                    let yi = ((b * co + oc) * o + oy) * o + ox;
                    for ic in 0..ci {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy =
                                    (oy * c.stride + ky * c.dilation) as isize - c.padding as isize;
                                let ix =
                                    (ox * c.stride + kx * c.dilation) as isize - c.padding as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= h as isize {
                                    continue;
                                }
                                let xi = ((b * ci + ic) * h + iy as usize) * h + ix as usize;
                                let wi = ((oc * ci + ic) * k + ky) * k + kx;
                                y[yi] += x[xi] as f64 * w[wi] as f64;
                                dx[xi] += g[yi] as f64 * w[wi] as f64;
                                dw[wi] += g[yi] as f64 * x[xi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dx, dw)
}

fn data<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().expect("f32")
}

/// Largest |a - b| / (1 + |b|); NaN or infinity anywhere is an error naming the index.
fn worst_error(got: &[f32], want: &[f64]) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!("{} values, expected {}", got.len(), want.len()));
    }
    let mut worst = 0.0f64;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        if !a.is_finite() {
            return Err(format!("value {i} is {a}"));
        }
        worst = worst.max((a as f64 - b).abs() / (1.0 + b.abs()));
    }
    Ok(worst)
}

/// Runs the convolution through flex's autodiff and compares output and both gradients with
/// the loops.
fn check(c: Case, seed: u64) -> Result<(), String> {
    check_on(&Device::flex().autodiff(), c, seed)
}

/// [`check`] on `device` (an autodiff device).
fn check_on(device: &Device, c: Case, seed: u64) -> Result<(), String> {
    let x = noise(seed, c.batch * c.c_in * c.size * c.size);
    let w = noise(seed + 1, c.c_out * c.c_in * c.kernel * c.kernel);
    let o = c.output();
    let g = noise(seed + 2, c.batch * c.c_out * o * o);
    let xt = data(x.clone(), [c.batch, c.c_in, c.size, c.size], device).require_grad();
    let wt = data(w.clone(), [c.c_out, c.c_in, c.kernel, c.kernel], device).require_grad();
    let gt = data(g.clone(), [c.batch, c.c_out, o, o], device);
    let options = ConvOptions::new([c.stride; 2], [c.padding; 2], [c.dilation; 2], 1);
    let y = conv2d(xt.clone(), wt.clone(), None, options);
    let grads = (y.clone() * gt).sum().backward();
    let (y_ref, dx_ref, dw_ref) = reference(c, &x, &w, &g);
    // f32 sums of up to a few hundred products of values in [-1, 1]: 1e-4 relative is ample,
    // and a wrong index or a missing term moves a value by ~0.1 or more.
    let tolerance = 1e-4;
    for (what, got, want) in [
        ("output", host(y), y_ref),
        (
            "input gradient",
            host(xt.grad(&grads).ok_or("no input gradient")?),
            dx_ref,
        ),
        (
            "weight gradient",
            host(wt.grad(&grads).ok_or("no weight gradient")?),
            dw_ref,
        ),
    ] {
        let err = worst_error(&got, &want).map_err(|e| format!("{what}: {e}"))?;
        if err > tolerance {
            return Err(format!(
                "{what}: relative error {err:.2e} > {tolerance:.0e} for {c:?}"
            ));
        }
    }
    Ok(())
}

/// Every convolution shape of the backbone, scaled down: 1x1 (stride 1 and 2), 3x3 (plain,
/// strided, dilated 2 and 4), the 7x7/2 stem.
fn backbone_shapes() -> Vec<Case> {
    let case = |c_in, c_out, size, kernel, stride, dilation| Case {
        batch: 2,
        c_in,
        c_out,
        size,
        kernel,
        stride,
        dilation,
        padding: dilation * (kernel - 1) / 2,
    };
    vec![
        case(6, 5, 9, 1, 1, 1),
        case(6, 5, 9, 1, 2, 1),
        case(4, 3, 9, 3, 1, 1),
        case(4, 3, 9, 3, 2, 1),
        case(4, 3, 11, 3, 1, 2),
        case(4, 3, 13, 3, 1, 4),
        case(3, 4, 15, 7, 2, 1),
    ]
}

#[test]
fn gradients_match_the_definition_for_every_backbone_shape() {
    for (i, c) in backbone_shapes().into_iter().enumerate() {
        check(c, 100 * i as u64).unwrap();
    }
}

/// The same shapes on every other compiled backend that has a device (libtorch, wgpu, ...).
/// Skipped, with a note, in the default build (flex only); a build with a second backend that
/// compares nothing fails.
#[test]
fn gradients_match_the_definition_on_every_compiled_backend() {
    common::on_every_second_backend(true, |backend, device| {
        for (i, c) in backbone_shapes().into_iter().enumerate() {
            if let Err(e) = check_on(&device, c, 100 * i as u64) {
                panic!("{}: {e}", backend.name());
            }
        }
        common::note(&format!(
            "{}: output and both gradients match the definition",
            backend.name()
        ));
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random shapes, including padding other than "same" and outputs of a single pixel.
    #[test]
    fn gradients_match_the_definition_for_random_shapes(
        batch in 1usize..3,
        c_in in 1usize..5,
        c_out in 1usize..5,
        kernel in 1usize..4,
        stride in 1usize..3,
        dilation in 1usize..3,
        padding in 0usize..3,
        extra in 0usize..6,
        seed in 0u64..1000,
    ) {
        let size = dilation * (kernel - 1) + 1 + extra;
        let c = Case { batch, c_in, c_out, size, kernel, stride, dilation, padding };
        prop_assert_eq!(check(c, seed), Ok(()));
    }
}
