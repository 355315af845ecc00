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

/// Parses a base-36 sequence number (either letter case, optional sign), with
/// the errors of `i32::from_str_radix(text, 36)`: digits are checked left to
/// right, the first bad one gives `InvalidSeq`, the first overflow
/// `SeqOutOfRange`.
pub(crate) fn decode(src: &[u8]) -> Result<i32, ProtoError> {
    let (negative, digits) = match src {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, src),
    };
    if digits.is_empty() {
        return Err(ProtoError::InvalidSeq);
    }
    let mut n: i32 = 0;
    for &b in digits {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            b'A'..=b'Z' => b - b'A' + 10,
            _ => return Err(ProtoError::InvalidSeq),
        };
        let shifted = n.checked_mul(36);
        n = if negative {
            shifted.and_then(|n| n.checked_sub(i32::from(digit)))
        } else {
            shifted.and_then(|n| n.checked_add(i32::from(digit)))
        }
        .ok_or(ProtoError::SeqOutOfRange)?;
    }
    Ok(n)
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

    /// What `decode` did before it was written by hand.
    fn decode_std(src: &[u8]) -> Result<i32, ProtoError> {
        use std::num::IntErrorKind;
        let text = std::str::from_utf8(src).map_err(|_| ProtoError::InvalidSeq)?;
        i32::from_str_radix(text, 36).map_err(|e| match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => ProtoError::SeqOutOfRange,
            _ => ProtoError::InvalidSeq,
        })
    }

    fn same(src: &[u8]) {
        let got = decode(src);
        let want = decode_std(src);
        let ok = match (&got, &want) {
            (Ok(a), Ok(b)) => a == b,
            (Err(ProtoError::InvalidSeq), Err(ProtoError::InvalidSeq))
            | (Err(ProtoError::SeqOutOfRange), Err(ProtoError::SeqOutOfRange)) => true,
            _ => false,
        };
        assert!(
            ok,
            "{:?}: {got:?} vs {want:?}",
            String::from_utf8_lossy(src)
        );
    }

    #[test]
    fn decode_agrees_with_from_str_radix() {
        let mut buf = [0; MAX_SEQ_LEN];
        for n in [
            0,
            1,
            35,
            36,
            1000,
            -1000,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
        ] {
            same(encode(n, &mut buf));
        }
        for s in [
            &b""[..],
            b"-",
            b"+",
            b"+-1",
            b"-+1",
            b"--1",
            b"+0",
            b"-0",
            b"+zik0zj",
            b"ZIK0ZJ",
            b"zik0zk",
            b"-zik0zk",
            b"-zik0zl",
            b"zzzzzzzz",
            b"zzzzzzzz!",
            b"!zzzzzzzz",
            b"zik0zk!",
            b"00000000000000000001",
            b"-00000000000000zik0zk",
            b"1 ",
            b" 1",
            b"\xff",
            b"1\x00",
            b"\xc3\xa9",
        ] {
            same(s);
        }
        // Every string of up to 3 bytes over an alphabet with signs, digits,
        // both letter cases and bytes just outside the digit ranges.
        let alphabet = b"+-09azAZ/:`{@[\x80 ";
        let mut s = Vec::new();
        for len in 0..=3u32 {
            for mut n in 0..alphabet.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                same(&s);
            }
        }
        // Pseudo-random long strings of valid digits, near and past the range.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 9) as usize;
            s.clear();
            if x & 0x100 != 0 {
                s.push(b'-');
            }
            for i in 0..len {
                s.push(
                    b"0123456789abcdefghijklmnopqrstuvwxyzZ"[((x >> (i * 5 + 9)) % 37) as usize],
                );
            }
            same(&s);
        }
    }
}
