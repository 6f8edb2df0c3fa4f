//! The errors this crate returns: buffers that do not match their shape, and images a step
//! cannot take.

/// Why an image could not be built or transformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AugmentError {
    /// A data buffer whose length is not the product of the shape it was given.
    #[error("a buffer of {len} values cannot hold a {}x{}x{} (CxHxW) image", shape[0], shape[1], shape[2])]
    Buffer {
        /// The buffer's length.
        len: usize,
        /// The `[channels, height, width]` it was meant to have.
        shape: [usize; 3],
    },
    /// A step of a pipeline that cannot take an image of this shape.
    #[error(
        "step [{index}] `{name}` cannot take a {}x{}x{} (CxHxW) image: {reason}",
        shape[0], shape[1], shape[2]
    )]
    Shape {
        /// The step's position in the pipeline.
        index: usize,
        /// The transform's name as written in YAML.
        name: &'static str,
        /// The `[channels, height, width]` the step received.
        shape: [usize; 3],
        /// What is wrong, in one sentence, ideally with the fix.
        reason: String,
    },
}
