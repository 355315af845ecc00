//! Property tests: random values survive a roundtrip, random input never panics.

use bytes::Bytes;
use jaunt_codec::{ids, Registry};
use proptest::prelude::*;

proptest! {
    #[test]
    fn plain_strings_roundtrip(s in any::<String>()) {
        let r = Registry::with_defaults();
        let body = r.encode(ids::PLAIN, &s).unwrap();
        prop_assert_eq!(&body[..], s.as_bytes());
        prop_assert_eq!(r.decode::<String>(ids::PLAIN, &body).unwrap(), s);
    }

    #[test]
    fn plain_bytes_roundtrip(v in proptest::collection::vec(any::<u8>(), 0..512)) {
        let r = Registry::with_defaults();
        let value = Bytes::from(v);
        let body = r.encode(ids::PLAIN, &value).unwrap();
        prop_assert_eq!(&body, &value);
        prop_assert_eq!(r.decode::<Bytes>(ids::PLAIN, &body).unwrap(), value);
    }

    #[test]
    fn plain_random_bytes_into_string_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
        let r = Registry::with_defaults();
        let body = Bytes::from(v);
        let res = r.decode::<String>(ids::PLAIN, &body);
        prop_assert_eq!(res.is_ok(), std::str::from_utf8(&body).is_ok());
    }
}

#[cfg(feature = "json")]
proptest! {
    #[test]
    fn json_strings_roundtrip(s in any::<String>()) {
        let r = Registry::with_defaults();
        let body = r.encode(ids::JSON, &s).unwrap();
        prop_assert_eq!(r.decode::<String>(ids::JSON, &body).unwrap(), s);
    }

    #[test]
    fn json_string_vectors_roundtrip(v in proptest::collection::vec(any::<String>(), 0..8)) {
        let r = Registry::with_defaults();
        let body = r.encode(ids::JSON, &v).unwrap();
        prop_assert_eq!(r.decode::<Vec<String>>(ids::JSON, &body).unwrap(), v);
    }
}

#[cfg(all(
    feature = "json",
    feature = "protobuf",
    feature = "form",
    feature = "xml"
))]
proptest! {
    #[test]
    fn garbage_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64), id in any::<u8>()) {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct S { a: u32, b: String }
        #[derive(Clone, PartialEq, prost::Message)]
        struct M {
            #[prost(string, tag = "1")]
            a: String,
            #[prost(bytes = "vec", tag = "2")]
            b: Vec<u8>,
        }
        let r = Registry::with_defaults();
        let body = Bytes::from(v);
        let _ = r.decode::<S>(id, &body);
        let _ = r.decode::<String>(id, &body);
        let _ = r.decode::<jaunt_codec::Pb<M>>(id, &body);
        let _ = r.decode::<Option<u64>>(id, &body);
    }
}
