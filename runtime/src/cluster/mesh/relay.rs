//! The envelope for process traffic that crosses from one node to another:
//! messages and the signals that must stay in order with them (monitor and
//! link requests, exit events, cancel, terminate).
//!
//! A sender batches the items bound for one peer into a [`RelayBatch`] and
//! ships it as the payload of one `Class::Relay` frame, so a burst of small
//! sends costs one frame and one syscall rather than one each. Messages and
//! signals share the class and the batch so "message, then exit" from one
//! process arrives in that order, as it would on one node.
//!
//! The batch is MessagePack with named fields (`rmp_serde::to_vec_named`):
//! during a rolling upgrade two nodes run different builds, and named fields
//! let an older node skip a field it does not know and a newer node default
//! one that an older peer did not send. Positional encoding would silently
//! shift every field after an insertion.

use serde::{Deserialize, Serialize};
use wippy_lua_stdlib::{MAX_DEPTH, Value};

use super::frame::FrameError;
use crate::scheduler::envelope::EventKind;

/// Nesting the decoder accepts. One level of a Lua table costs up to three
/// MessagePack levels (variant map, list, key/value pair), plus a few for
/// the batch and the envelope. Senders never build deeper values, and the
/// cap keeps a hostile peer from recursing the decoder off the stack.
const DECODE_MAX_DEPTH: usize = 3 * MAX_DEPTH + 8;

/// One process message or signal on its way to another node. Pids travel
/// as strings, exactly as processes print them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum RelayItem {
    /// A user message.
    Message(RelayMsg),
    /// A lifecycle event: a watched or linked process ended, or a cancel.
    Event {
        /// The receiving process.
        to: String,
        /// The process the event is about (or the canceller).
        from: String,
        /// Which event.
        kind: EventKind,
        /// The ended process's result or error text.
        result: Result<Value, String>,
        /// The cancel reason (empty otherwise).
        reason: String,
    },
    /// `from` starts or stops monitoring (or linking to, when `link`) `to`.
    Watch {
        /// The watched process.
        to: String,
        /// The watcher.
        from: String,
        /// Link rather than monitor.
        link: bool,
        /// Start (true) or stop.
        on: bool,
    },
    /// Terminate `to`.
    Kill {
        /// The process to end.
        to: String,
        /// Why, as its exit error says.
        reason: String,
    },
}

/// One process message on its way to another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RelayMsg {
    /// The receiving process, as a pid string.
    pub(crate) to: String,
    /// The sending process, so the receiver can reply or link.
    pub(crate) from: String,
    /// The topic the receiver's mailbox filters on.
    pub(crate) topic: String,
    /// The message itself, already detached from the sender's Lua state.
    pub(crate) payload: Value,
}

/// The items that travel together in one relay frame, in send order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct RelayBatch(pub(crate) Vec<RelayItem>);

/// Serializes a batch into a relay frame payload.
pub(crate) fn encode_batch(batch: &RelayBatch) -> Result<Vec<u8>, FrameError> {
    rmp_serde::to_vec_named(batch).map_err(|e| FrameError::Encode(e.to_string()))
}

/// Reads a relay frame payload. Bad bytes are a `Decode` error, never a
/// panic; trailing bytes after the batch count as bad, since a frame holds
/// exactly one batch.
pub(crate) fn decode_batch(bytes: &[u8]) -> Result<RelayBatch, FrameError> {
    let mut rest = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(DECODE_MAX_DEPTH);
    let batch = RelayBatch::deserialize(&mut de).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.as_bytes().to_vec())
    }

    fn msg(to: &str, payload: Value) -> RelayItem {
        RelayItem::Message(RelayMsg { to: to.into(), from: "<n1.0.7>".into(), topic: "inbox".into(), payload })
    }

    fn sample_batch() -> RelayBatch {
        RelayBatch(vec![
            msg("<n2.0.1>", Value::Nil),
            msg(
                "<n2.0.2>",
                Value::Map(vec![
                    (s("items"), Value::Array(vec![Value::Int(-1), Value::Float(0.5), Value::Bool(true)])),
                    (Value::Int(3), Value::Error { kind: "timeout".into(), message: "late".into() }),
                    (s("nested"), Value::Array(vec![Value::Map(vec![(s("k"), s("\u{0}\u{ff}"))])])),
                ]),
            ),
            msg("<n2.0.3>", Value::Str(vec![0, 159, 146, 150])),
            RelayItem::Event {
                to: "<n2.0.1>".into(),
                from: "<n1.0.7>".into(),
                kind: EventKind::LinkExit,
                result: Err("boom".into()),
                reason: String::new(),
            },
            RelayItem::Watch { to: "<n2.0.1>".into(), from: "<n1.0.7>".into(), link: true, on: false },
            RelayItem::Kill { to: "<n2.0.2>".into(), reason: "terminated".into() },
        ])
    }

    /// Builds a value nested `depth` tables deep.
    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Int(1), |inner, _| Value::Map(vec![(s("k"), inner)]))
    }

    #[test]
    fn batch_round_trips_with_nested_values() {
        let batch = sample_batch();
        let bytes = encode_batch(&batch).unwrap();
        assert_eq!(decode_batch(&bytes), Ok(batch));
        assert_eq!(decode_batch(&encode_batch(&RelayBatch::default()).unwrap()), Ok(RelayBatch::default()));
    }

    #[test]
    fn fields_travel_by_name() {
        let bytes = encode_batch(&sample_batch()).unwrap();
        for name in [&b"to"[..], b"from", b"topic", b"payload"] {
            assert!(bytes.windows(name.len()).any(|w| w == name), "{:?} missing", name);
        }
    }

    /// A build that added a field and one that never had it still read each
    /// other's batches: the point of named fields.
    #[test]
    fn older_and_newer_envelopes_read_each_other() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct NewerMsg {
            priority: u8,
            payload: Value,
            topic: String,
            from: String,
            to: String,
        }
        #[derive(Serialize)]
        enum NewerItem {
            Message(NewerMsg),
        }
        let newer = vec![NewerItem::Message(NewerMsg {
            priority: 9,
            payload: s("hi"),
            topic: "inbox".into(),
            from: "<n1.0.7>".into(),
            to: "<n2.0.1>".into(),
        })];
        let old = decode_batch(&rmp_serde::to_vec_named(&newer).unwrap()).unwrap();
        assert_eq!(old, RelayBatch(vec![msg("<n2.0.1>", s("hi"))]));

        #[derive(Deserialize)]
        struct DefaultingMsg {
            #[serde(default)]
            priority: u8,
            to: String,
        }
        #[derive(Deserialize)]
        enum DefaultingItem {
            Message(DefaultingMsg),
        }
        let read: Vec<DefaultingItem> = rmp_serde::from_slice(&encode_batch(&old).unwrap()).unwrap();
        let DefaultingItem::Message(first) = &read[0];
        assert_eq!((first.priority, first.to.as_str()), (0, "<n2.0.1>"));
    }

    #[test]
    fn corrupted_batch_is_a_decode_error() {
        let bytes = encode_batch(&sample_batch()).unwrap();
        assert!(matches!(decode_batch(&bytes[..bytes.len() - 1]), Err(FrameError::Decode(_))));
        assert!(matches!(decode_batch(&[]), Err(FrameError::Decode(_))));
        assert!(matches!(decode_batch(&[0xC1]), Err(FrameError::Decode(_))));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode_batch(&trailing), Err(FrameError::Decode(_))));
        // Flipping any single byte must never panic, whatever it decodes to.
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xFF;
            let _ = decode_batch(&flipped);
        }
    }

    #[test]
    fn depth_limit_admits_lua_values_and_refuses_deeper() {
        let ok = RelayBatch(vec![msg("<n2.0.1>", nested(MAX_DEPTH))]);
        assert_eq!(decode_batch(&encode_batch(&ok).unwrap()), Ok(ok));
        let deep = RelayBatch(vec![msg("<n2.0.1>", nested(MAX_DEPTH * 4))]);
        assert!(matches!(decode_batch(&encode_batch(&deep).unwrap()), Err(FrameError::Decode(_))));
    }

    /// A hostile peer can send a tiny payload that claims huge nesting or a
    /// huge list; neither may overflow the stack nor reserve the claim.
    #[test]
    fn hostile_shapes_are_refused_cheaply() {
        // [ {"Message": {"payload": {"Array": [ {"Array": [ ... ]} ]}}} ] a million deep.
        let mut deep = vec![0x91, 0x81, 0xA7];
        deep.extend_from_slice(b"Message");
        deep.extend_from_slice(&[0x81, 0xA7]);
        deep.extend_from_slice(b"payload");
        for _ in 0..1_000_000 {
            deep.extend_from_slice(&[0x81, 0xA5, b'A', b'r', b'r', b'a', b'y', 0x91]);
        }
        assert!(matches!(decode_batch(&deep), Err(FrameError::Decode(_))));
        // An array32 header claiming four billion messages, then nothing.
        assert!(matches!(decode_batch(&[0xDD, 0xFF, 0xFF, 0xFF, 0xFF]), Err(FrameError::Decode(_))));
    }
}
