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
