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
}
