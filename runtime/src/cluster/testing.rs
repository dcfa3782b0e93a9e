//! Test helpers shared by the cluster cores.

/// SplitMix64: a few lines, seeded and deterministic, so the garbage-input
/// tests of every wire format replay exactly without a dev-dependency.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A fresh 24-byte nonce (the gossip seal's size).
    pub(crate) fn nonce(&mut self) -> [u8; 24] {
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&self.bytes(24));
        nonce
    }
}
