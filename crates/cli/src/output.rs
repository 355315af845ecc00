//! How bodies are shown: JSON pretty-printed, text as it is, anything else as raw bytes.

use std::io::Write;

use jaunt::codec_ids;
use serde_json::Value;

/// The body as a JSON value, for a JSON line: the decoded value for JSON, a string for
/// text, and `{"hex": "0a0b"}` for anything else.
pub fn body_value(codec: u8, body: &[u8]) -> Value {
    if codec == codec_ids::JSON {
        if let Ok(value) = serde_json::from_slice(body) {
            return value;
        }
    }
    match std::str::from_utf8(body) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => {
            let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "hex": hex })
        }
    }
}

/// Writes a reply body to `out`: JSON pretty-printed, text with a final newline, other
/// bytes as they are (to be piped to a file).
pub fn write_body(out: &mut impl Write, codec: u8, body: &[u8]) -> std::io::Result<()> {
    if body.is_empty() {
        return Ok(());
    }
    if codec == codec_ids::JSON {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            let pretty = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
            return writeln!(out, "{pretty}");
        }
    }
    out.write_all(body)?;
    if std::str::from_utf8(body).is_ok() && !body.ends_with(b"\n") {
        writeln!(out)?;
    }
    Ok(())
}

/// A codec's name for a person: `json`, or the id as a letter.
pub fn codec_name(codecs: &jaunt::codec::Registry, id: u8) -> String {
    match codecs.get(id) {
        Ok(codec) => codec.name().to_owned(),
        Err(_) if id.is_ascii_graphic() => (id as char).to_string(),
        Err(_) => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_shown_by_what_they_are() {
        let mut out = Vec::new();
        write_body(&mut out, codec_ids::JSON, br#"{"a":[1,2]}"#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n"
        );
        let mut out = Vec::new();
        write_body(&mut out, codec_ids::PLAIN, b"hi").unwrap();
        assert_eq!(out, b"hi\n");
        let mut out = Vec::new();
        write_body(&mut out, codec_ids::PROTOBUF, &[0xff, 0x00]).unwrap();
        assert_eq!(out, [0xff, 0x00]);
        assert_eq!(body_value(codec_ids::JSON, b"[1]"), serde_json::json!([1]));
        assert_eq!(body_value(codec_ids::PLAIN, b"x"), serde_json::json!("x"));
        assert_eq!(
            body_value(codec_ids::PROTOBUF, &[0xff]),
            serde_json::json!({"hex": "ff"})
        );
    }
}
