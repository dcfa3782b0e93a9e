//! The internode mesh: how nodes carry traffic to each other over TCP.
//!
//! Pure parts: [`frame`] cuts a byte stream into frames of one traffic class
//! each, [`relay`] is the envelope that moves process traffic between nodes,
//! [`handshake`] opens a connection with Noise under the cluster secret,
//! [`wire`] carries Noise messages on the stream and [`outbound`] holds
//! what waits for each peer. The I/O parts: [`session`] runs one
//! connection, [`service`] the listener, the per-peer writers and the
//! thread they share.

pub(crate) mod control;
pub(crate) mod ctx;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod link;
pub(crate) mod outbound;
pub(crate) mod relay;
pub(crate) mod service;
pub(crate) mod session;
pub(crate) mod wire;
