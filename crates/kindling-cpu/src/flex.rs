//! The flex backend's buffers as the kernels see them: the autodiff device's types, a tensor's
//! values as a slice, an owned buffer to write in place, and a new tensor from values.

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Shape, TensorData};

/// The autodiff CPU device whose tensors the drop-ins compute on themselves.
pub(crate) type Ad = Autodiff<Flex, NoCheckpointing>;

/// A float tensor primitive of [`Ad`].
pub(crate) type AdTensor = burn::backend::tensor::FloatTensor<Ad>;

/// The values of a flex tensor in row-major order (copied only when it is not contiguous).
pub(crate) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec()),
    }
}

/// `t` with a buffer of its own, contiguous from offset 0 (moved when it already is, copied
/// otherwise), so it can be written in place.
pub(crate) fn owned(t: FlexTensor) -> FlexTensor {
    if t.is_unique() && t.layout().is_contiguous() && t.layout().start_offset() == 0 {
        return t;
    }
    let shape = t.layout().shape().clone();
    flex(values(&t).into_owned(), shape)
}

/// A contiguous flex tensor of `v` in `shape`.
pub(crate) fn flex(v: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// The dimensions of a 4-D flex tensor.
pub(crate) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let d = t.layout().shape().dims::<4>();
    [d[0], d[1], d[2], d[3]]
}
