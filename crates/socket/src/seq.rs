//! Sequence numbers on the raw wire: an `i32` as lower-case base-36 ASCII.

use crate::ProtoError;

/// The longest base-36 form of an i32 (`-zik0zk`).
pub(crate) const MAX_SEQ_LEN: usize = 7;

/// Writes `seq` in base 36 into `buf`, returning the used tail of it.
pub(crate) fn encode(seq: i32, buf: &mut [u8; MAX_SEQ_LEN]) -> &[u8] {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = seq.unsigned_abs();
    let mut i = MAX_SEQ_LEN;
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    if seq < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Parses a base-36 sequence number (either letter case, optional sign).
pub(crate) fn decode(src: &[u8]) -> Result<i32, ProtoError> {
    use std::num::IntErrorKind;
    let text = std::str::from_utf8(src).map_err(|_| ProtoError::InvalidSeq)?;
    i32::from_str_radix(text, 36).map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => ProtoError::SeqOutOfRange,
        _ => ProtoError::InvalidSeq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut buf = [0; MAX_SEQ_LEN];
        for (n, s) in [
            (0, "0"),
            (1, "1"),
            (35, "z"),
            (36, "10"),
            (100, "2s"),
            (-1, "-1"),
            (i32::MAX, "zik0zj"),
            (i32::MIN, "-zik0zk"),
        ] {
            assert_eq!(encode(n, &mut buf), s.as_bytes());
            assert_eq!(decode(s.as_bytes()).unwrap(), n);
        }
    }

    #[test]
    fn rejects_bad_digits_and_overflow() {
        assert!(matches!(decode(b""), Err(ProtoError::InvalidSeq)));
        assert!(matches!(decode(b"1_"), Err(ProtoError::InvalidSeq)));
        assert!(matches!(decode(b"\xff"), Err(ProtoError::InvalidSeq)));
        assert!(matches!(decode(b"zik0zk"), Err(ProtoError::SeqOutOfRange)));
        assert!(matches!(decode(b"-zik0zl"), Err(ProtoError::SeqOutOfRange)));
    }
}
