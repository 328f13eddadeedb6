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

/// Whether an XML 1.0 document (a DeleteObjects request) can carry `key`
/// as it is: XML 1.0 has no form at all for most control characters, and
/// its parsers turn a carriage return into a line feed.
pub fn xml_safe(key: &str) -> bool {
    !key.chars()
        .any(|c| (c < ' ' && c != '\t' && c != '\n') || c == '\u{FFFE}' || c == '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_with_characters_xml_cannot_carry_are_told_apart() {
        assert!(super::xml_safe("a b/é\tc\n"));
        for key in ["a\u{1}b", "a\rb", "x\u{FFFF}", "\u{0}"] {
            assert!(!super::xml_safe(key), "{key:?}");
        }
    }

    #[test]
    fn encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            super::encode_key("a b/c+d%é~_.-"),
            "a%20b/c%2Bd%25%C3%A9~_.-"
        );
        assert_eq!(super::encode_key("q?x=1&y"), "q%3Fx%3D1%26y");
    }
}
