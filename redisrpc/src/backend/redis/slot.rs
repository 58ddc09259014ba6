//! Redis Cluster's hash slots: which of the 16384 slots a key lives in.
//!
//! The cluster client routes the shared connection's commands itself; the
//! backend needs slots of its own for what it routes by hand (blocking pops
//! on dedicated connections, per-node clocks) and to know when two keys can
//! meet in one script.

use crate::layout;

/// How many slots a cluster has.
const SLOTS: u16 = 16384;

/// The slot of `key`: CRC16 (XMODEM) of its hashed part (its hash tag,
/// when it has one), modulo 16384.
pub(super) fn of(key: &str) -> u16 {
    crc16(layout::hashed_part(key).as_bytes()) % SLOTS
}

/// CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // The check value of CRC16/XMODEM, and slots `CLUSTER KEYSLOT` gives.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(of("calc"), 15575);
        assert_eq!(of("foo"), 12182);
        assert_eq!(of("{user1000}.following"), of("user1000"));
        assert_eq!(of("calc:rpc:{calc}x"), of("calc:rpc:{calc}y"));
        assert_eq!(of("a{}b"), crc16(b"a{}b") % SLOTS, "an empty tag hashes the whole key");
    }
}
