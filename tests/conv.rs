//! The convolution gradients that training uses, checked against the definition of a
//! convolution summed in f64 by plain loops. Burn's default weight gradient is replaced by an
//! im2col + GEMM version, except for large outputs of kernels above 1x1 (`vendor/burn-backend`,
//! see the performance chapter); these tests hold for every kernel size, stride, dilation and
//! padding the backbone uses, on both sides of that switch, and for random ones with every size,
//! kernel, stride, dilation and padding chosen per axis (non-square: swapping the two axes
//! anywhere in the patch fails them), on flex and on every other compiled backend that has a
//! device (the patch serves them all).

mod common;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use common::noise;
use proptest::prelude::*;

/// A convolution; every spatial field is [height, width].
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [usize; 2],
}

impl Case {
    fn output(&self) -> [usize; 2] {
        [0, 1].map(|a| {
            (self.size[a] + 2 * self.padding[a] - self.dilation[a] * (self.kernel[a] - 1) - 1)
                / self.stride[a]
                + 1
        })
    }
}

/// (output, dL/dx, dL/dW) of L = sum(conv(x, W) * g), by loops over the definition, in f64.
fn reference(c: Case, x: &[f32], w: &[f32], g: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, ci, co) = (c.batch, c.c_in, c.c_out);
    let ([h, wd], [kh, kw], [oh, ow]) = (c.size, c.kernel, c.output());
    let mut y = vec![0.0; n * co * oh * ow];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for b in 0..n {
        for oc in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((b * co + oc) * oh + oy) * ow + ox;
                    for ic in 0..ci {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * ci + ic) * h + iy as usize) * wd + ix as usize;
                                let wi = ((oc * ci + ic) * kh + ky) * kw + kx;
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
    let ([h, w], [kh, kw], [oh, ow]) = (c.size, c.kernel, c.output());
    let x = noise(seed, c.batch * c.c_in * h * w);
    let weight = noise(seed + 1, c.c_out * c.c_in * kh * kw);
    let g = noise(seed + 2, c.batch * c.c_out * oh * ow);
    let xt = data(x.clone(), [c.batch, c.c_in, h, w], device).require_grad();
    let wt = data(weight.clone(), [c.c_out, c.c_in, kh, kw], device).require_grad();
    let gt = data(g.clone(), [c.batch, c.c_out, oh, ow], device);
    let options = ConvOptions::new(c.stride, c.padding, c.dilation, 1);
    let y = conv2d(xt.clone(), wt.clone(), None, options);
    let grads = (y.clone() * gt).sum().backward();
    let (y_ref, dx_ref, dw_ref) = reference(c, &x, &weight, &g);
    // f32 sums of up to ~10,000 products of values in [-1, 1] (rounding errors ~1e-6 relative
    // to the sum's size): 1e-4 relative is ample, and a wrong index or a missing term moves a
    // value by ~0.1 or more.
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
        size: [size; 2],
        kernel: [kernel; 2],
        stride: [stride; 2],
        dilation: [dilation; 2],
        padding: [dilation * (kernel - 1) / 2; 2],
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

/// A batch of 2, 3 -> 2 channels; every spatial field per axis.
fn per_axis(
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [usize; 2],
) -> Case {
    Case {
        batch: 2,
        c_in: 3,
        c_out: 2,
        size,
        kernel,
        stride,
        dilation,
        padding,
    }
}

/// Fixed shapes whose two axes differ in every parameter (for the backends, which have no
/// proptest run of their own).
fn non_square_shapes() -> Vec<Case> {
    vec![
        per_axis([9, 6], [3, 1], [2, 1], [1, 2], [1, 0]),
        per_axis([5, 11], [1, 3], [1, 3], [2, 1], [0, 2]),
        per_axis([8, 7], [2, 4], [3, 2], [2, 1], [2, 1]),
    ]
}

/// Shapes whose weight gradient takes upstream's path instead of the GEMM (a kernel above 1x1
/// and more than 64 x 64 output positions, as layer1's 3x3 at 417 px), square, per axis, and
/// strided and dilated.
fn upstream_weight_gradient_shapes() -> Vec<Case> {
    vec![
        per_axis([66, 66], [3, 3], [1, 1], [1, 1], [1, 1]),
        per_axis([70, 61], [3, 2], [1, 1], [1, 2], [1, 0]),
        per_axis([140, 134], [3, 3], [2, 2], [2, 1], [2, 1]),
    ]
}

fn every_fixed_shape() -> Vec<Case> {
    [
        backbone_shapes(),
        non_square_shapes(),
        upstream_weight_gradient_shapes(),
    ]
    .concat()
}

#[test]
fn gradients_match_the_definition_for_every_backbone_shape() {
    for (i, c) in every_fixed_shape().into_iter().enumerate() {
        check(c, 100 * i as u64).unwrap();
    }
}

/// The same shapes on every other compiled backend that has a device (libtorch, wgpu, ...).
/// Skipped, with a note, in the default build (flex only); a build with a second backend that
/// compares nothing fails.
#[test]
fn gradients_match_the_definition_on_every_compiled_backend() {
    common::on_every_second_backend(true, |backend, device| {
        for (i, c) in every_fixed_shape().into_iter().enumerate() {
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
    #![proptest_config(common::proptest_config())]

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
        let c = Case {
            batch, c_in, c_out,
            size: [size; 2], kernel: [kernel; 2], stride: [stride; 2],
            dilation: [dilation; 2], padding: [padding; 2],
        };
        prop_assert_eq!(check(c, seed), Ok(()));
    }

    /// Every spatial parameter drawn per axis: non-square inputs and kernels, and stride,
    /// dilation and padding that differ between height and width.
    #[test]
    fn gradients_match_the_definition_for_non_square_shapes(
        batch in 1usize..3,
        c_in in 1usize..4,
        c_out in 1usize..4,
        kernel in [1usize..5, 1usize..5],
        stride in [1usize..4, 1usize..4],
        dilation in [1usize..3, 1usize..3],
        padding in [0usize..3, 0usize..3],
        extra in [0usize..7, 0usize..7],
        seed in 0u64..1000,
    ) {
        let size = [0, 1].map(|a| dilation[a] * (kernel[a] - 1) + 1 + extra[a]);
        let c = Case { batch, c_in, c_out, size, kernel, stride, dilation, padding };
        prop_assert_eq!(check(c, seed), Ok(()));
    }
}
