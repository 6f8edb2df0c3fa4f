//! Resolving the requested device to a burn device.

use std::sync::OnceLock;

use burn::tensor::Device;
use burn::tensor::wgpu::wgpu;
use kindling_core::DeviceChoice;

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

/// Whether wgpu sees a hardware GPU (what `device: auto` would take), without starting it.
pub fn hardware_gpu() -> bool {
    adapters().iter().any(|a| a.device_type != wgpu::DeviceType::Cpu)
}

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
fn adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::default();
    block_on(instance.enumerate_adapters(wgpu::Backends::all())).iter().map(wgpu::Adapter::get_info).collect()
}

/// Drives a future that native wgpu completes without waiting on anything external.
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
