//! The internode mesh: how nodes carry traffic to each other over TCP.
//!
//! Only the pure core lives here so far. [`frame`] cuts a byte stream into
//! frames of one traffic class each, and [`relay`] is the envelope that moves
//! process messages between nodes. The tasks that own sockets, run the
//! handshake and feed these functions arrive later; nothing here does I/O,
//! reads a clock or draws randomness, so all of it is tested on plain bytes.

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod relay;
