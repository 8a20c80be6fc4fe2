//! A small provider framework: values, schemas, diagnostics, the resource traits and the
//! planning pipeline. It knows nothing of gRPC (see `tfproto`) nor of any remote system.

pub mod diagnostics;
pub mod engine;
pub mod resource;
pub mod schema;
pub mod timeouts;
pub mod value;
