//! S3's `EncodingType=url`: keys come back form-encoded (`+` for space, `%XX`).

/// Decodes one URL-encoded value from a listing (`+` → space, then `%XX`),
/// borrowing it when there is nothing to decode (most keys). Returns `None`
/// when the result is not UTF-8, which no S3 key can be.
pub fn decode_url_component(value: &str) -> Option<std::borrow::Cow<'_, str>> {
    if memchr::memchr2(b'+', b'%', value.as_bytes()).is_none() {
        return Some(std::borrow::Cow::Borrowed(value));
    }
    let plus_free = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_free)
        .decode_utf8()
        .ok()
        .map(|s| std::borrow::Cow::Owned(s.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::decode_url_component as d;

    #[test]
    fn decodes_plus_and_percent_sequences() {
        assert_eq!(d("a+b").unwrap(), "a b");
        assert_eq!(d("a%2Bb").unwrap(), "a+b");
        assert_eq!(d("100%25").unwrap(), "100%");
        assert_eq!(d("caf%C3%A9%0A").unwrap(), "café\n");
        assert_eq!(d("plain/key.jpg").unwrap(), "plain/key.jpg");
        assert!(d("%FF").is_none());
    }
}

/// Characters of a key that stay as they are when it is URL-encoded into a
/// copy source or a Batch Operations manifest: unreserved ones and `/`.
const KEY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// URL-encodes a key (or version id) for `x-amz-copy-source` and manifests.
pub fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, KEY_SET).to_string()
}

#[cfg(test)]
mod encode_tests {
    #[test]
    fn encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            super::encode_key("a b/c+d%é~_.-"),
            "a%20b/c%2Bd%25%C3%A9~_.-"
        );
        assert_eq!(super::encode_key("q?x=1&y"), "q%3Fx%3D1%26y");
    }
}
