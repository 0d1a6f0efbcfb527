//! Backends: one model code, the backend picked at run time as a Burn `Device`.
//!
//! In Burn 0.22 tensors and modules carry no backend type parameter; each backend is a Cargo
//! feature and a `Device` constructor. "Backend-generic" therefore means: build with the features
//! you want, then choose with `--backend`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

// ANCHOR: kinds
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend: the default, and what CI tests.
    Flex,
    /// CubeCL on wgpu (Vulkan, Metal or DX12, chosen by wgpu): needs a GPU.
    Wgpu,
    /// CubeCL pinned to Vulkan: needs a GPU and its Vulkan driver.
    Vulkan,
    /// libtorch on the CPU (feature `tch`, PyTorch 2.9.0 wheel).
    Tch,
    /// libtorch on CUDA device 0 (feature `tch`).
    TchCuda,
    /// Burn's own CUDA backend (feature `cuda`; its build downloads LLVM).
    Cuda,
}
// ANCHOR_END: kinds

impl BackendKind {
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Vulkan,
        BackendKind::Tch,
        BackendKind::TchCuda,
        BackendKind::Cuda,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Vulkan => "vulkan",
            BackendKind::Tch => "tch",
            BackendKind::TchCuda => "tch-cuda",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The Cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            BackendKind::Flex => "(always built)",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Vulkan => "vulkan",
            BackendKind::Tch | BackendKind::TchCuda => "tch",
            BackendKind::Cuda => "cuda",
        }
    }

    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => true,
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Vulkan => cfg!(feature = "vulkan"),
            BackendKind::Tch | BackendKind::TchCuda => cfg!(feature = "tch"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    // ANCHOR: device
    /// The device for this backend, with autodiff when `autodiff` is set (training).
    pub fn device(self, autodiff: bool) -> Result<Device, BackendError> {
        let device = self.plain_device()?;
        let device = if self == BackendKind::Flex {
            device
        } else {
            self.probe(device)?
        };
        Ok(if autodiff { device.autodiff() } else { device })
    }
    // ANCHOR_END: device

    #[allow(deprecated, unreachable_code)] // burn-tch is deprecated in Burn 0.22; still our CUDA route
    fn plain_device(self) -> Result<Device, BackendError> {
        let not_built = || BackendError::NotCompiled {
            backend: self.name(),
            feature: self.feature(),
        };
        match self {
            BackendKind::Flex => Ok(Device::flex()),
            BackendKind::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
                Err(not_built())
            }
            BackendKind::Vulkan => {
                #[cfg(feature = "vulkan")]
                return Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice));
                Err(not_built())
            }
            BackendKind::Tch => {
                #[cfg(feature = "tch")]
                return Ok(Device::libtorch());
                Err(not_built())
            }
            BackendKind::TchCuda => {
                #[cfg(feature = "tch")]
                return Ok(Device::libtorch_cuda(0));
                Err(not_built())
            }
            BackendKind::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(0));
                Err(not_built())
            }
        }
    }
}

impl BackendKind {
    /// GPU devices are created lazily and panic on first use when there is no GPU or driver:
    /// use one tiny tensor now, and turn such a panic into an error.
    fn probe(self, device: Device) -> Result<Device, BackendError> {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            burn::tensor::Tensor::<1>::zeros([1], &device).into_data()
        }));
        std::panic::set_hook(quiet);
        match result {
            Ok(_) => Ok(device),
            Err(cause) => Err(BackendError::Unavailable {
                backend: self.name(),
                reason: cause
                    .downcast_ref::<String>()
                    .map(|s| {
                        s.lines()
                            .next()
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect()
                    })
                    .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the device failed on its first tensor".into()),
            }),
        }
    }
}

/// The backends compiled into this binary.
pub fn compiled_backends() -> Vec<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .filter(|b| b.is_compiled())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "backend `{backend}` is not compiled into this binary: rebuild with \
         `cargo build --release --features {feature}` (see `srpnet backends` and the README)"
    )]
    NotCompiled {
        backend: &'static str,
        feature: &'static str,
    },
    #[error(
        "backend `{backend}` is compiled in but has no usable device here ({reason}); check the \
         GPU and its driver (e.g. `nvidia-smi`, `vulkaninfo`) or use `--backend flex`"
    )]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
}

// ANCHOR: compute_pool
/// Runs `f` on a worker thread of a rayon pool, the pool every tensor operation of `f` then
/// parallelises over (`RAYON_NUM_THREADS` threads, default one per core).
///
/// Why: flex hands each parallel kernel to rayon. Called from the main thread, every one of the
/// hundreds of small kernels of a step is a cross-thread hand-off (wake a pool thread, sleep,
/// be woken), which on the embedded model's tiny tensors costs more than the arithmetic. Called
/// from inside the pool, the current thread runs its share itself, and with one thread (the
/// `reproduce` workers) it runs everything inline. The numbers do not change: flex splits work by
/// index ranges, not by who runs them.
pub fn in_compute_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        // Autodiff's backward walks deep graphs: the main thread's stack size, not 2 MiB.
        .stack_size(64 << 20)
        .thread_name(|i| format!("srpnet-compute-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No pool (threads could not be spawned): run as before, on this thread.
        Err(_) => f(),
    }
}
// ANCHOR_END: compute_pool
