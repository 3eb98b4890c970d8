//! Examples of embedding Parrot; see `examples/`.
