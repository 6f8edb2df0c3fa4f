//! Resolving the requested device to a burn device.

use std::sync::OnceLock;

use burn::tensor::Device;
#[cfg(feature = "wgpu")]
use burn::tensor::wgpu::wgpu;
use kindling_core::DeviceChoice;

/// Why `device: wgpu` fails in a build without the GPU backend.
#[cfg(not(feature = "wgpu"))]
const NO_GPU_BUILD: &str = "this build of Kindling has no GPU backend (build it with the `wgpu` feature: \
                            `cargo kindling-gpu ...`, or `cargo build --release -p kindling-cli --features wgpu`)";

/// A resolved device and how to describe it to a person.
#[derive(Clone, Debug)]
pub struct ResolvedDevice {
    /// The device tensors are created on (autodiff-enabled for training).
    pub device: Device,
    /// `"cpu (flex)"` or `"wgpu: <adapter name> (<kind>)"`.
    pub description: String,
}

/// Why a device could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// wgpu was asked for explicitly and no adapter exists or it failed to start.
    #[error("device `wgpu` was requested but {0}; use `device: cpu` (or `--device cpu`) to train on the CPU")]
    NoWgpu(String),
}

/// Resolves `choice`: `auto` takes a hardware GPU adapter through wgpu when one exists (software
/// adapters such as lavapipe are slower than the CPU backend and are skipped), else the CPU;
/// `wgpu` takes any adapter, software ones included, and is an error when there is none.
/// Without the crate's `wgpu` feature there is no GPU backend: `auto` is the CPU and `wgpu` an
/// error that says how to build one.
///
/// The wgpu runtime can be started once per process, so the result is cached.
pub fn resolve(choice: DeviceChoice) -> Result<ResolvedDevice, DeviceError> {
    static WGPU: OnceLock<Result<ResolvedDevice, String>> = OnceLock::new();
    let cpu = || ResolvedDevice { device: Device::flex().autodiff(), description: "cpu (flex)".to_owned() };
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Auto => {
            if !hardware_gpu() {
                return Ok(cpu());
            }
            Ok(WGPU.get_or_init(start_wgpu).clone().unwrap_or_else(|_| cpu()))
        }
        DeviceChoice::Wgpu => WGPU.get_or_init(start_wgpu).clone().map_err(DeviceError::NoWgpu),
    }
}

/// Whether wgpu sees a hardware GPU (what `device: auto` would take), without starting it;
/// never in a build without the `wgpu` feature.
pub fn hardware_gpu() -> bool {
    #[cfg(feature = "wgpu")]
    let found = adapters().iter().any(|a| a.device_type != wgpu::DeviceType::Cpu);
    #[cfg(not(feature = "wgpu"))]
    let found = false;
    found
}

#[cfg(not(feature = "wgpu"))]
fn start_wgpu() -> Result<ResolvedDevice, String> {
    Err(NO_GPU_BUILD.to_owned())
}

#[cfg(feature = "wgpu")]
fn start_wgpu() -> Result<ResolvedDevice, String> {
    let found = adapters();
    let Some(best) = found.iter().min_by_key(|a| rank(a.device_type)) else {
        return Err("no wgpu adapter was found (no GPU driver or Vulkan loader)".to_owned());
    };
    let device = Device::wgpu_options().init().map_err(|e| format!("wgpu failed to start: {e}"))?;
    Ok(ResolvedDevice {
        device: device.autodiff(),
        description: format!("wgpu: {} ({:?}, {:?})", best.name, best.device_type, best.backend),
    })
}

/// wgpu's preference order, as its default device selection prefers high-power GPUs.
#[cfg(feature = "wgpu")]
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu can see, without starting a device.
#[cfg(feature = "wgpu")]
fn adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::default();
    block_on(instance.enumerate_adapters(wgpu::Backends::all())).iter().map(wgpu::Adapter::get_info).collect()
}

/// Drives a future that native wgpu completes without waiting on anything external.
#[cfg(feature = "wgpu")]
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
