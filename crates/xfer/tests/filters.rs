//! Tests of the built-in transfer filters and of the registry.
#![cfg(all(feature = "gzip", feature = "md5", feature = "aead"))]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jaunt_xfer::{
    AeadFilter, AeadKey, GzipFilter, Md5Filter, XferError, XferFilter, XferRegistry, MAX_FILTERS,
};
use md5::{Digest, Md5};
use proptest::prelude::*;

const MIB: usize = 1 << 20;

fn sample() -> Bytes {
    Bytes::from(
        b"hello jaunt, hello erpc, hello teleport! "
            .repeat(50)
            .into_iter()
            .chain(0u8..=255)
            .collect::<Vec<u8>>(),
    )
}

fn key(byte: u8) -> AeadKey {
    AeadKey::from_bytes([byte; 32])
}

fn gzip_with_flate2(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn roundtrip(filter: &dyn XferFilter, data: Bytes) {
    let packed = filter.on_pack(data.clone()).unwrap();
    let unpacked = filter.on_unpack(packed, data.len()).unwrap();
    assert_eq!(unpacked, data, "{} roundtrip", filter.name());
}

// ---------------------------------------------------------------- gzip

#[test]
fn gzip_defaults() {
    let f = GzipFilter::default();
    assert_eq!(f.id(), b'g');
    assert_eq!(f.name(), "gzip");
    assert_eq!(f.level(), 6);
    assert_eq!(GzipFilter::new(b'z', 42).level(), 9, "level is clamped");
    assert_eq!(GzipFilter::new(b'z', 42).id(), b'z');
    let f = GzipFilter::with_level(1);
    assert_eq!((f.id(), f.level()), (b'g', 1));
}

#[test]
fn gzip_roundtrip() {
    for level in [0, 1, 6, 9] {
        let f = GzipFilter::new(b'g', level);
        roundtrip(&f, sample());
        roundtrip(&f, Bytes::new());
        roundtrip(&f, Bytes::from(vec![7u8; 100_000]));
    }
}

#[test]
fn gzip_output_is_a_single_standard_member() {
    let data = sample();
    let packed = GzipFilter::default().on_pack(data.clone()).unwrap();
    assert_eq!(&packed[..3], &[0x1f, 0x8b, 8], "gzip magic + deflate");
    assert!(packed.len() < data.len(), "it compresses");
    // A single-member decoder consumes the whole output.
    let mut dec = flate2::read::GzDecoder::new(&packed[..]);
    let mut out = Vec::new();
    dec.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    let mut rest = Vec::new();
    dec.into_inner().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the member");
    // ISIZE trailer as Go checks it.
    let isize = u32::from_le_bytes(packed[packed.len() - 4..].try_into().unwrap());
    assert_eq!(isize as usize, data.len());
}

#[test]
fn gzip_unpacks_foreign_member() {
    // Stand-in for a Go-produced payload: a level-9 member from another encoder.
    let data = sample();
    let packed = gzip_with_flate2(&data, 9);
    let out = GzipFilter::default()
        .on_unpack(Bytes::from(packed), data.len())
        .unwrap();
    assert_eq!(out, data);
}

#[test]
fn gzip_accepts_multiple_members() {
    let mut packed = gzip_with_flate2(b"hello ", 6);
    packed.extend(gzip_with_flate2(b"world", 1));
    let out = GzipFilter::default()
        .on_unpack(Bytes::from(packed), 100)
        .unwrap();
    assert_eq!(&out[..], b"hello world");
}

#[test]
fn gzip_exact_limit() {
    let data = Bytes::from(vec![1u8; 4096]);
    let packed = GzipFilter::default().on_pack(data.clone()).unwrap();
    let f = GzipFilter::default();
    assert_eq!(f.on_unpack(packed.clone(), 4096).unwrap(), data);
    assert!(matches!(
        f.on_unpack(packed.clone(), 4095),
        Err(XferError::TooLarge {
            filter: "gzip",
            limit: 4095
        })
    ));
    assert!(matches!(
        f.on_unpack(packed, 0),
        Err(XferError::TooLarge { limit: 0, .. })
    ));
    // An empty payload fits a zero limit.
    let empty = f.on_pack(Bytes::new()).unwrap();
    assert!(f.on_unpack(empty, 0).unwrap().is_empty());
}

#[test]
fn gzip_bomb_is_stopped() {
    let bomb = Bytes::from(gzip_with_flate2(&vec![0u8; 10 * MIB], 9));
    assert!(bomb.len() < 64 * 1024, "bomb is small: {}", bomb.len());
    let start = Instant::now();
    let err = GzipFilter::default().on_unpack(bomb, MIB).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, XferError::TooLarge { filter: "gzip", limit } if limit == MIB),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn gzip_lying_isize_is_harmless() {
    // A trailer claiming 4 GiB - 1 must neither be trusted for allocation nor
    // accepted: the length check fails.
    let mut packed = gzip_with_flate2(b"tiny", 6);
    let n = packed.len();
    packed[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = GzipFilter::default()
        .on_unpack(Bytes::from(packed), 100)
        .unwrap_err();
    assert!(matches!(err, XferError::CorruptGzip(_)), "{err:?}");
}

#[test]
fn gzip_corrupt_input() {
    let f = GzipFilter::default();
    let data = sample();
    let packed = f.on_pack(data.clone()).unwrap().to_vec();
    let max = data.len();

    let corrupt = |bytes: Vec<u8>| {
        let err = f.on_unpack(Bytes::from(bytes), max).unwrap_err();
        assert!(matches!(err, XferError::CorruptGzip(_)), "{err:?}");
    };

    // Bad magic.
    let mut bad = packed.clone();
    bad[0] ^= 0xff;
    corrupt(bad);
    // Flipped CRC32 in the trailer.
    let mut bad = packed.clone();
    let n = bad.len();
    bad[n - 8] ^= 0x01;
    corrupt(bad);
    // Flipped ISIZE.
    let mut bad = packed.clone();
    bad[n - 1] ^= 0x01;
    corrupt(bad);
    // Truncations anywhere, including in the header and the trailer.
    for len in [
        0,
        1,
        5,
        10,
        packed.len() / 2,
        packed.len() - 5,
        packed.len() - 1,
    ] {
        corrupt(packed[..len].to_vec());
    }
    // Trailing garbage after the member.
    let mut bad = packed.clone();
    bad.extend_from_slice(b"garbage");
    corrupt(bad);
    let mut bad = packed.clone();
    bad.push(0);
    corrupt(bad);
    // Not gzip at all.
    corrupt(b"this is not gzip at all".to_vec());
}

#[test]
fn gzip_flipped_body_bytes_never_pass_silently() {
    let f = GzipFilter::default();
    let data = sample();
    let packed = f.on_pack(data.clone()).unwrap().to_vec();
    // Every single-bit flip in the deflate body (after the 10-byte header,
    // before the trailer) is either detected or, at worst, still decodes to
    // the original data (it cannot: CRC32 catches every 1-bit error).
    for i in 10..packed.len() - 8 {
        let mut bad = packed.clone();
        bad[i] ^= 0x10;
        match f.on_unpack(Bytes::from(bad), data.len()) {
            Err(XferError::CorruptGzip(_)) | Err(XferError::TooLarge { .. }) => {}
            Ok(out) => assert_eq!(out, data, "byte {i} flipped, silently wrong output"),
            Err(e) => panic!("byte {i}: unexpected error {e:?}"),
        }
    }
}

#[test]
fn gzip_output_matches_flate2_gz_encoder() {
    // The hand-written header/trailer around a reused compressor produce the
    // very bytes flate2's `GzEncoder` does, at every level.
    let inputs = [
        sample(),
        Bytes::new(),
        Bytes::from_static(b"x"),
        Bytes::from(vec![7u8; 100_000]),
        Bytes::from(
            (0..200_000u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
    ];
    for level in 0..=9 {
        let f = GzipFilter::new(b'g', level);
        // Twice, so that the second pass runs on a reused compressor.
        for _ in 0..2 {
            for data in &inputs {
                let packed = f.on_pack(data.clone()).unwrap();
                assert_eq!(
                    &packed[..],
                    &gzip_with_flate2(data, level)[..],
                    "level {level}, {} bytes",
                    data.len()
                );
            }
        }
    }
}

#[test]
fn gzip_output_decodes_with_flate2_at_every_level() {
    for level in 0..=9 {
        let f = GzipFilter::new(b'g', level);
        for data in [sample(), Bytes::new(), Bytes::from(vec![3u8; 70_000])] {
            let packed = f.on_pack(data.clone()).unwrap();
            let mut dec = flate2::read::GzDecoder::new(&packed[..]);
            let mut out = Vec::new();
            dec.read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "level {level}");
            let mut rest = Vec::new();
            dec.into_inner().read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "level {level}: nothing after the member");
        }
    }
}

/// A member with every optional header field set: FEXTRA, FNAME, FCOMMENT and,
/// when `good_hcrc` is given, FHCRC with a right or wrong header CRC.
fn gzip_with_header_fields(data: &[u8], hcrc: Option<bool>) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .extra(b"xtra".to_vec())
        .filename("name.txt")
        .comment("a comment")
        .mtime(1234)
        .write(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    let mut member = enc.finish().unwrap();
    if let Some(good) = hcrc {
        // Header: 10 fixed + 2 + 4 extra + 9 name + 10 comment.
        let header_len = 10 + 2 + 4 + 9 + 10;
        member[3] |= 0x02;
        let mut crc = flate2::Crc::new();
        crc.update(&member[..header_len]);
        let mut crc16 = (crc.sum() as u16).to_le_bytes();
        if !good {
            crc16[0] ^= 1;
        }
        member.splice(header_len..header_len, crc16);
    }
    member
}

#[test]
fn gzip_accepts_optional_header_fields() {
    let data = sample();
    let f = GzipFilter::default();
    for hcrc in [None, Some(true)] {
        let member = gzip_with_header_fields(&data, hcrc);
        // flate2 agrees that the hand-made member is valid.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&member[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(
            f.on_unpack(Bytes::from(member), data.len()).unwrap(),
            data,
            "{hcrc:?}"
        );
    }
    let bad = gzip_with_header_fields(&data, Some(false));
    assert!(matches!(
        f.on_unpack(Bytes::from(bad), data.len()),
        Err(XferError::CorruptGzip(_))
    ));
    // Reserved flag bits are refused.
    let mut reserved = gzip_with_flate2(&data, 6);
    reserved[3] |= 0x20;
    assert!(matches!(
        f.on_unpack(Bytes::from(reserved), data.len()),
        Err(XferError::CorruptGzip(_))
    ));
    // Every truncation inside the optional fields is refused.
    let member = gzip_with_header_fields(&data, Some(true));
    for len in 0..40 {
        assert!(
            matches!(
                f.on_unpack(Bytes::from(member[..len].to_vec()), data.len()),
                Err(XferError::CorruptGzip(_))
            ),
            "truncated to {len}"
        );
    }
}

#[test]
fn gzip_multi_member_limits_and_empty_members() {
    let f = GzipFilter::default();
    let mut packed = gzip_with_flate2(b"", 6);
    packed.extend(gzip_with_flate2(b"hello ", 6));
    packed.extend(gzip_with_flate2(b"", 9));
    packed.extend(gzip_with_flate2(b"world", 0));
    let packed = Bytes::from(packed);
    assert_eq!(
        &f.on_unpack(packed.clone(), 11).unwrap()[..],
        b"hello world"
    );
    assert!(matches!(
        f.on_unpack(packed.clone(), 10),
        Err(XferError::TooLarge { limit: 10, .. })
    ));
    assert!(matches!(
        f.on_unpack(packed, 6),
        Err(XferError::TooLarge { limit: 6, .. })
    ));
    // A second member with a bad CRC is caught too.
    let mut two = gzip_with_flate2(b"hello ", 6);
    let mut second = gzip_with_flate2(b"world", 6);
    let n = second.len();
    second[n - 8] ^= 1;
    two.extend(second);
    assert!(matches!(
        f.on_unpack(Bytes::from(two), 100),
        Err(XferError::CorruptGzip(_))
    ));
}

#[test]
fn gzip_state_is_clean_after_failures() {
    // The per-thread compression state is reused: a failed unpack (corrupt,
    // truncated, over the limit) must not affect the next one.
    let f = GzipFilter::default();
    let data = sample();
    let packed = f.on_pack(data.clone()).unwrap();
    let mut flipped = packed.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    for _ in 0..3 {
        assert!(f
            .on_unpack(Bytes::from(flipped.clone()), data.len())
            .is_err());
        assert!(f
            .on_unpack(packed.slice(..packed.len() / 2), data.len())
            .is_err());
        assert!(f.on_unpack(packed.clone(), data.len() - 1).is_err());
        assert_eq!(f.on_unpack(packed.clone(), data.len()).unwrap(), data);
        assert_eq!(f.on_pack(data.clone()).unwrap(), packed);
    }
}

#[test]
fn gzip_from_many_threads() {
    let data = sample();
    let expected = GzipFilter::default().on_pack(data.clone()).unwrap();
    std::thread::scope(|s| {
        for level in [1, 6, 9] {
            let data = data.clone();
            let expected = expected.clone();
            s.spawn(move || {
                let f = GzipFilter::new(b'g', level);
                let d = GzipFilter::default();
                for _ in 0..50 {
                    let packed = f.on_pack(data.clone()).unwrap();
                    assert_eq!(f.on_unpack(packed, data.len()).unwrap(), data);
                    assert_eq!(d.on_pack(data.clone()).unwrap(), expected);
                }
            });
        }
    });
}

#[test]
fn gzip_shared_by_more_threads_than_it_keeps_idle() {
    // One filter (and its clones) used by 12 threads at once: more
    // (de)compressors are in use than the filter keeps idle afterwards.
    let data = sample();
    let f = GzipFilter::default();
    let expected = f.on_pack(data.clone()).unwrap();
    std::thread::scope(|s| {
        for i in 0..12 {
            let f = if i % 2 == 0 {
                f.clone()
            } else {
                GzipFilter::default()
            };
            let (f, data, expected) = (f, data.clone(), expected.clone());
            s.spawn(move || {
                for _ in 0..30 {
                    let packed = f.on_pack(data.clone()).unwrap();
                    assert_eq!(packed, expected);
                    assert_eq!(f.on_unpack(packed, data.len()).unwrap(), data);
                }
            });
        }
    });
    assert_eq!(f.on_pack(data.clone()).unwrap(), expected);
}

// ---------------------------------------------------------------- md5

#[test]
fn md5_roundtrip_and_format() {
    let f = Md5Filter::default();
    assert_eq!(f.id(), b'm');
    assert_eq!(f.name(), "md5");
    assert_eq!(Md5Filter::new(b'x').id(), b'x');
    roundtrip(&f, sample());
    roundtrip(&f, Bytes::new());

    let packed = f.on_pack(Bytes::from_static(b"abc")).unwrap();
    assert_eq!(packed.len(), 3 + 16);
    assert_eq!(&packed[..3], b"abc");
    // RFC 1321 test vector.
    assert_eq!(
        &packed[3..],
        &[
            0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
            0x7f, 0x72
        ]
    );
}

#[test]
fn md5_unpack_is_zero_copy() {
    let f = Md5Filter::default();
    let packed = f.on_pack(sample()).unwrap();
    let ptr = packed.as_ptr();
    let out = f.on_unpack(packed, usize::MAX).unwrap();
    assert_eq!(out.as_ptr(), ptr);
    assert_eq!(out, sample());
}

#[test]
fn md5_detects_corruption() {
    let f = Md5Filter::default();
    let packed = f.on_pack(sample()).unwrap().to_vec();
    for i in [0, 1, packed.len() / 2, packed.len() - 16, packed.len() - 1] {
        let mut bad = packed.clone();
        bad[i] ^= 0x01;
        assert!(matches!(
            f.on_unpack(Bytes::from(bad), usize::MAX),
            Err(XferError::ChecksumMismatch)
        ));
    }
    // Truncated or too short.
    for len in [0, 1, 15, packed.len() - 1] {
        assert!(matches!(
            f.on_unpack(Bytes::from(packed[..len].to_vec()), usize::MAX),
            Err(XferError::ChecksumMismatch)
        ));
    }
    // Exactly 16 bytes: the digest of the empty string is accepted, others not.
    let empty = f.on_pack(Bytes::new()).unwrap();
    assert_eq!(empty.len(), 16);
    assert!(f.on_unpack(empty, 0).unwrap().is_empty());
    assert!(matches!(
        f.on_unpack(Bytes::from(vec![0u8; 16]), 0),
        Err(XferError::ChecksumMismatch)
    ));
}

// ---------------------------------------------------------------- aead

#[test]
fn aead_roundtrip_and_format() {
    let f = AeadFilter::new(b'e', key(1));
    assert_eq!(f.id(), b'e');
    assert_eq!(f.name(), "chacha20poly1305");
    roundtrip(&f, sample());
    roundtrip(&f, Bytes::new());
    let data = sample();
    let packed = f.on_pack(data.clone()).unwrap();
    assert_eq!(packed.len(), 12 + data.len() + 16);
    assert_ne!(&packed[12..12 + data.len()], &data[..], "encrypted");
    // The same key in another filter instance decrypts it.
    let g = AeadFilter::new(b'e', key(1));
    assert_eq!(g.on_unpack(packed, data.len()).unwrap(), data);
}

#[test]
fn aead_fresh_nonce_per_pack() {
    let f = AeadFilter::new(b'e', key(2));
    let a = f.on_pack(sample()).unwrap();
    let b = f.on_pack(sample()).unwrap();
    assert_ne!(a, b);
    assert_ne!(&a[..12], &b[..12], "nonces differ");
}

#[test]
fn aead_rejects_tampering() {
    let f = AeadFilter::new(b'e', key(3));
    let data = sample();
    let packed = f.on_pack(data.clone()).unwrap().to_vec();
    let n = packed.len();
    let decrypt_fails = |filter: &AeadFilter, bytes: Vec<u8>| {
        let err = filter
            .on_unpack(Bytes::from(bytes), usize::MAX)
            .unwrap_err();
        assert!(matches!(err, XferError::DecryptFailed), "{err:?}");
    };
    // Tampered nonce, ciphertext, tag.
    for i in [0, 11, 12, n / 2, n - 17, n - 16, n - 1] {
        let mut bad = packed.clone();
        bad[i] ^= 0x80;
        decrypt_fails(&f, bad);
    }
    // Truncated, too short, extended.
    for len in [0, 1, 12, 27, n - 1] {
        decrypt_fails(&f, packed[..len].to_vec());
    }
    let mut longer = packed.clone();
    longer.push(0);
    decrypt_fails(&f, longer);
    // Wrong key.
    decrypt_fails(&AeadFilter::new(b'e', key(4)), packed.clone());
    // Untampered still works.
    assert_eq!(f.on_unpack(Bytes::from(packed), data.len()).unwrap(), data);
}

#[test]
fn aead_too_large() {
    let f = AeadFilter::new(b'e', key(5));
    let packed = f.on_pack(Bytes::from(vec![9u8; 100])).unwrap();
    assert!(matches!(
        f.on_unpack(packed.clone(), 99),
        Err(XferError::TooLarge {
            filter: "chacha20poly1305",
            limit: 99
        })
    ));
    assert_eq!(f.on_unpack(packed, 100).unwrap().len(), 100);
}

#[test]
fn aead_key() {
    let k = AeadKey::from_bytes([0xab; 32]);
    let debug = format!("{k:?} {:?}", AeadFilter::new(b'e', k.clone()));
    assert!(!debug.to_lowercase().contains("ab, "), "{debug}");
    assert!(!debug.contains("171"), "{debug}");
    assert_eq!(k.as_bytes(), &[0xab; 32]);

    assert_eq!(
        AeadKey::try_from_slice(&[7; 32]).unwrap().as_bytes(),
        &[7; 32]
    );
    for len in [0, 16, 31, 33, 64] {
        let err = AeadKey::try_from_slice(&vec![0; len]).unwrap_err();
        assert!(
            matches!(err, XferError::InvalidKeyLength { len: l } if l == len),
            "{err:?}"
        );
    }
    let a = AeadKey::generate();
    let b = AeadKey::generate();
    assert_ne!(a.as_bytes(), b.as_bytes());
    // A generated key works and is not the other one.
    let packed = AeadFilter::new(b'e', a).on_pack(sample()).unwrap();
    assert!(AeadFilter::new(b'e', b)
        .on_unpack(packed, usize::MAX)
        .is_err());
}

// ---------------------------------------------------------------- registry

fn full_registry() -> XferRegistry {
    let mut r = XferRegistry::with_defaults();
    r.register(AeadFilter::new(b'e', key(9))).unwrap();
    r
}

#[test]
fn registry_defaults() {
    let r = XferRegistry::with_defaults();
    assert_eq!(r.get(b'g').unwrap().name(), "gzip");
    assert_eq!(r.get(b'm').unwrap().name(), "md5");
    assert_eq!(r.get_by_name("md5").unwrap().id(), b'm');
    assert_eq!(r.iter().count(), 2);
    assert_eq!(format!("{r:?}"), r#"[('g', "gzip"), ('m', "md5")]"#);
}

#[test]
fn registry_register_errors() {
    let mut r = XferRegistry::with_defaults();
    assert!(matches!(
        r.register(Md5Filter::new(0)),
        Err(XferError::ReservedId)
    ));
    assert!(matches!(
        r.register(AeadFilter::new(b'g', key(1))),
        Err(XferError::DuplicateId { id: b'g' })
    ));
    assert!(matches!(
        r.register(GzipFilter::new(b'z', 1)),
        Err(XferError::DuplicateName { ref name }) if name == "gzip"
    ));
    // Failed registrations left nothing behind.
    assert!(r.get(b'z').is_err());
    assert_eq!(r.iter().count(), 2);
    r.register(AeadFilter::new(b'e', key(1))).unwrap();
    assert_eq!(r.iter().count(), 3);
}

#[test]
fn registry_unknown_and_too_many() {
    let r = full_registry();
    let p = Bytes::from_static(b"payload");
    for ids in [&b"x"[..], b"gx", b"\0"] {
        let bad = *ids.last().unwrap();
        assert!(matches!(
            r.pack(ids, p.clone()),
            Err(XferError::UnknownId { id }) if id == bad
        ));
        assert!(matches!(
            r.unpack(ids, p.clone(), MIB),
            Err(XferError::UnknownId { id }) if id == bad
        ));
    }
    assert!(matches!(
        r.get(b'x'),
        Err(XferError::UnknownId { id: b'x' })
    ));

    let many = vec![b'm'; MAX_FILTERS + 1];
    assert!(matches!(
        r.pack(&many, p.clone()),
        Err(XferError::TooMany { count: 256 })
    ));
    assert!(matches!(
        r.unpack(&many, p.clone(), MIB),
        Err(XferError::TooMany { count: 256 })
    ));
    // 255 is allowed.
    let max = vec![b'm'; MAX_FILTERS];
    let packed = r.pack(&max, p.clone()).unwrap();
    assert_eq!(packed.len(), p.len() + 16 * MAX_FILTERS);
    assert_eq!(r.unpack(&max, packed, MIB).unwrap(), p);
    // No filters: identity.
    assert_eq!(r.pack(b"", p.clone()).unwrap(), p);
    assert_eq!(r.unpack(b"", p.clone(), MIB).unwrap(), p);
}

#[test]
fn registry_order() {
    let r = XferRegistry::with_defaults();
    let data = sample();
    let packed = r.pack(b"mg", data.clone()).unwrap();
    // The outer layer (first id) is md5: the last 16 bytes are the digest of the rest.
    let (body, sum) = packed.split_at(packed.len() - 16);
    assert_eq!(Md5::digest(body).as_slice(), sum);
    // ... and what it protects is the gzip member.
    assert_eq!(&body[..2], &[0x1f, 0x8b]);
    assert_eq!(r.unpack(b"mg", packed.clone(), MIB).unwrap(), data);
    // Reversed order fails (gzip cannot read the md5-suffixed member).
    assert!(r.unpack(b"gm", packed, MIB).is_err());
}

#[test]
fn registry_unpack_limit_applies_to_intermediate_results() {
    let r = XferRegistry::with_defaults();
    let data = Bytes::from(vec![0u8; 10_000]);
    let packed = r.pack(b"mg", data.clone()).unwrap();
    assert!(matches!(
        r.unpack(b"mg", packed.clone(), 9_999),
        Err(XferError::TooLarge { filter: "gzip", .. })
    ));
    assert_eq!(r.unpack(b"mg", packed, 10_000).unwrap(), data);
}

// ---------------------------------------------------------------- proptest

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_chain_roundtrips(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        ids in prop::sample::subsequence(b"gme".to_vec(), 0..=3).prop_shuffle(),
        repeat in prop::bool::ANY,
    ) {
        let r = full_registry();
        let mut ids = ids;
        if repeat {
            // Filters may appear more than once in a chain.
            ids.extend(ids.clone());
        }
        let data = Bytes::from(data);
        let packed = r.pack(&ids, data.clone()).unwrap();
        // Generous bound on every intermediate size.
        let limit = data.len() * 2 + 64 * 6 + 1024;
        prop_assert_eq!(r.unpack(&ids, packed, limit).unwrap(), data);
    }

    #[test]
    fn gzip_output_is_flate2_readable(data in prop::collection::vec(any::<u8>(), 0..8192), level in 0u32..=9) {
        let packed = GzipFilter::new(b'g', level).on_pack(Bytes::from(data.clone())).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut out).unwrap();
        prop_assert_eq!(&out, &data);
        let back = GzipFilter::default().on_unpack(packed, data.len()).unwrap();
        prop_assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn gzip_unpack_never_panics(data in prop::collection::vec(any::<u8>(), 0..512), max in 0usize..4096) {
        if let Ok(out) = GzipFilter::default().on_unpack(Bytes::from(data), max) {
            prop_assert!(out.len() <= max);
        }
    }

    #[test]
    fn aead_and_md5_reject_random_input(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let data = Bytes::from(data);
        prop_assert!(AeadFilter::new(b'e', key(1)).on_unpack(data.clone(), usize::MAX).is_err());
        // A random 16-byte suffix matching the digest is a 2^-128 event.
        prop_assert!(Md5Filter::default().on_unpack(data, usize::MAX).is_err());
    }
}
