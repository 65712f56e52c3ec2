//! Lightning and Taproot Assets backends.
//!
//! This module owns tapgate's view of the nodes it pays and gets paid through: narrow traits in
//! tapgate's own types (invoices, RFQ rates, payments) and the adapters that implement them over
//! gRPC to lnd and tapd. The generated protobuf types in `proto` never leave the adapters: the
//! rest of the crate neither imports them nor sees them in a signature or an error.

pub mod channel_data;
pub mod error;
pub mod grpc;
pub mod lnd;
pub mod oracle;
pub(crate) mod proto;
pub mod tapd;
pub mod traits;
pub mod types;
