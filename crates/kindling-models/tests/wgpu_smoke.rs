//! The wgpu path with tiny tensors: the same model gives the same logits on wgpu as on the CPU,
//! and a backward pass runs there. Without any adapter (no Vulkan driver), the test says so and
//! passes, unless `KINDLING_REQUIRE_WGPU=1` (set by CI, which installs Mesa's software Vulkan).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use kindling_core::DeviceChoice;
use kindling_models::{InitConfig, LayerSpec, Sequential, Shape, device, infer};

#[test]
fn wgpu_matches_the_cpu_on_a_tiny_model() {
    let resolved = match device::resolve(DeviceChoice::Wgpu) {
        Ok(r) => r,
        Err(e) if std::env::var_os("KINDLING_REQUIRE_WGPU").is_none() => {
            eprintln!("skipping the wgpu comparison: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    eprintln!("wgpu device: {}", resolved.description);
    let layers: Vec<LayerSpec> = serde_json::from_value(serde_json::json!([
        {"conv2d": {"out_channels": 2, "kernel_size": 3, "padding": 1}}, "relu",
        {"maxpool2d": {"kernel_size": 2}}, "flatten", {"linear": {"out_features": 3}}
    ]))
    .unwrap();
    let infos = infer(&layers, &Shape::Image([1, 4, 4])).unwrap();
    let cpu = Device::flex().autodiff();
    cpu.seed(3);
    let net =
        Sequential::new(&layers, &infos, &InitConfig::default(), &mut kindling_core::rng_from_seed(3, "init"), &cpu);
    let x = Tensor::<4>::random([2, 1, 4, 4], Distribution::Normal(0.0, 1.0), &cpu);
    let expected: Vec<f32> = net.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();

    let gpu = resolved.device;
    let net_gpu = net.fork(&gpu);
    let logits = net_gpu.forward(x.to_device(&gpu));
    let got: Vec<f32> = logits.clone().into_data().try_to_vec::<f32>().unwrap();
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-4, "wgpu {got:?} vs cpu {expected:?}");
    }
    let grads = logits.sum().backward();
    let conv = match &net_gpu.layers[0] {
        kindling_models::Layer::Conv2d(c) => c,
        other => panic!("expected a convolution, got {other:?}"),
    };
    let g: Vec<f32> =
        conv.weight.grad(&grads).expect("the weight has a gradient").into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(g.len(), 18);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0), "{g:?}");
}
