//! A small pull reader for the XML documents S3 answers with.
//!
//! It understands what a well-formed S3 response can hold — elements with or
//! without attributes (skipped), text with entity and character references,
//! CDATA, comments, processing instructions and a doctype (skipped) — and
//! hands text back as slices of the document, so a listing page of a
//! thousand entries is read without copying or allocating per element.

use std::borrow::Cow;

/// One step through a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `<name …>`; the name without its namespace prefix.
    Start(&'a str),
    /// `<name …/>`.
    Empty(&'a str),
    /// `</name>`.
    End,
    /// Character data as written: references not yet resolved ([`unescape`]).
    Text(&'a str),
    /// The inside of `<![CDATA[…]]>`, taken literally.
    CData(&'a str),
}

/// An element's text as written, from [`Reader::simple_text`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'a> {
    pub raw: &'a str,
    /// Whether it holds `&…;` references, to resolve with [`unescape`].
    pub has_refs: bool,
}

pub(crate) struct Reader<'a> {
    doc: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(doc: &'a str) -> Self {
        Reader { doc, pos: 0 }
    }

    /// Byte offset of the next token, for error messages.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next token, `None` at the end of the document.
    pub(crate) fn next_token(&mut self) -> Result<Option<Token<'a>>, String> {
        loop {
            let rest = &self.doc[self.pos..];
            let bytes = rest.as_bytes();
            let Some(&first) = bytes.first() else {
                return Ok(None);
            };
            if first != b'<' {
                let len = memchr::memchr(b'<', bytes).unwrap_or(bytes.len());
                self.pos += len;
                return Ok(Some(Token::Text(&rest[..len])));
            }
            match bytes.get(1) {
                Some(b'/') => {
                    self.pos += self.byte(bytes, b'>', "end tag")? + 1;
                    return Ok(Some(Token::End));
                }
                Some(b'!') | Some(b'?') => {
                    let (len, token) = self.special(rest)?;
                    self.pos += len;
                    if let Some(token) = token {
                        return Ok(Some(token));
                    }
                }
                _ => {
                    // The name, and where its local part starts (after a prefix).
                    let (mut name_end, mut local_start) = (1, 1);
                    loop {
                        match bytes.get(name_end) {
                            None => return Err(format!("unterminated tag at byte {}", self.pos)),
                            Some(b'>' | b'/') => break,
                            Some(b) if b.is_ascii_whitespace() => break,
                            Some(b':') => local_start = name_end + 1,
                            Some(_) => {}
                        }
                        name_end += 1;
                    }
                    if name_end == 1 {
                        return Err(format!("a tag without a name at byte {}", self.pos));
                    }
                    let local = &rest[local_start..name_end];
                    let end = match bytes[name_end] {
                        b'>' => name_end,
                        _ => self.tag_end(bytes)?,
                    };
                    self.pos += end + 1;
                    return Ok(Some(match bytes[end - 1] {
                        b'/' => Token::Empty(local),
                        _ => Token::Start(local),
                    }));
                }
            }
        }
    }

    /// Right after a [`Token::Start`]: when the element holds nothing but
    /// text, that text as written (references unresolved), the reader moved
    /// past the element's end tag. `None` (the reader unmoved) otherwise.
    pub(crate) fn simple_text(&mut self) -> Option<Text<'a>> {
        let rest = &self.doc.as_bytes()[self.pos..];
        // One pass finds both the end of the text and whether it holds a
        // reference (most do not, and need no second look).
        let first = memchr::memchr2(b'<', b'&', rest)?;
        let (lt, has_refs) = match rest[first] {
            b'<' => (first, false),
            _ => (first + memchr::memchr(b'<', &rest[first..])?, true),
        };
        if rest.get(lt + 1) != Some(&b'/') {
            return None;
        }
        let gt = lt + 2 + rest[lt + 2..].iter().position(|&b| b == b'>')?;
        let raw = &self.doc[self.pos..self.pos + lt];
        self.pos += gt + 1;
        Some(Text { raw, has_refs })
    }

    /// Right after a [`Token::Start`]: moves past the element's end tag,
    /// whatever it holds.
    pub(crate) fn skip_element(&mut self) -> Result<(), String> {
        let mut depth = 1usize;
        loop {
            let rest = &self.doc[self.pos..];
            let bytes = rest.as_bytes();
            let lt = memchr::memchr(b'<', bytes).ok_or_else(|| {
                format!("the document ends inside an element at byte {}", self.pos)
            })?;
            self.pos += lt;
            let rest = &rest[lt..];
            match rest.as_bytes().get(1) {
                Some(b'/') => {
                    self.pos += self.byte(rest.as_bytes(), b'>', "end tag")? + 1;
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(b'!' | b'?') => self.pos += self.special(rest)?.0,
                _ => {
                    let end = self.tag_end(rest.as_bytes())?;
                    if rest.as_bytes()[end - 1] != b'/' {
                        depth += 1;
                    }
                    self.pos += end + 1;
                }
            }
        }
    }

    /// CDATA, comments, processing instructions and doctypes: their length,
    /// and the token they make (CDATA only).
    fn special(&self, rest: &'a str) -> Result<(usize, Option<Token<'a>>), String> {
        let find = |inner: &str, needle: &str, what: &str| {
            inner
                .find(needle)
                .ok_or_else(|| format!("unterminated {what} at byte {}", self.pos))
        };
        Ok(if let Some(inner) = rest.strip_prefix("<![CDATA[") {
            let end = find(inner, "]]>", "CDATA section")?;
            (9 + end + 3, Some(Token::CData(&inner[..end])))
        } else if let Some(inner) = rest.strip_prefix("<!--") {
            (4 + find(inner, "-->", "comment")? + 3, None)
        } else if let Some(inner) = rest.strip_prefix("<?") {
            (2 + find(inner, "?>", "processing instruction")? + 2, None)
        } else {
            (self.tag_end(rest.as_bytes())? + 1, None)
        })
    }

    fn byte(&self, bytes: &[u8], wanted: u8, what: &str) -> Result<usize, String> {
        bytes
            .iter()
            .position(|&b| b == wanted)
            .ok_or_else(|| format!("unterminated {what} at byte {}", self.pos))
    }

    /// Where the `>` closing the tag at the start of `bytes` is (quoted
    /// attribute values may hold a `>`).
    fn tag_end(&self, bytes: &[u8]) -> Result<usize, String> {
        let mut quote = None;
        for (i, &b) in bytes.iter().enumerate() {
            match (quote, b) {
                (None, b'>') => return Ok(i),
                (None, b'"' | b'\'') => quote = Some(b),
                (Some(q), _) if q == b => quote = None,
                _ => {}
            }
        }
        Err(format!("unterminated tag at byte {}", self.pos))
    }
}

/// Resolves the entity and character references of `raw` text.
pub(crate) fn unescape(raw: &str) -> Result<Cow<'_, str>, String> {
    // A plain loop: values are a few dozen bytes, too short for memchr's setup.
    if !raw.bytes().any(|b| b == b'&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .ok_or_else(|| format!("unterminated reference in {raw:?}"))?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown reference &{name};"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The text of the first element named `name` in a small document, trimmed.
pub(crate) fn element_text(xml: &[u8], name: &str) -> Option<String> {
    let mut reader = Reader::new(std::str::from_utf8(xml).ok()?);
    while let Some(token) = reader.next_token().ok()? {
        match token {
            Token::Empty(n) if n == name => return Some(String::new()),
            Token::Start(n) if n == name => {
                let mut text = String::new();
                loop {
                    match reader.next_token().ok()?? {
                        Token::Text(t) => text.push_str(&unescape(t).ok()?),
                        Token::CData(t) => text.push_str(t),
                        _ => return Some(text.trim().to_owned()),
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(doc: &str) -> Result<Vec<Token<'_>>, String> {
        let mut reader = Reader::new(doc);
        let mut out = Vec::new();
        while let Some(t) = reader.next_token()? {
            out.push(t);
        }
        Ok(out)
    }

    #[test]
    fn reads_elements_text_and_skips_the_rest() {
        let doc = "<?xml version=\"1.0\"?><!-- c --><s3:A xmlns:s3=\"x>y\"><B/>t&amp;u<![CDATA[<z>]]></s3:A>";
        assert_eq!(
            tokens(doc).unwrap(),
            [
                Token::Start("A"),
                Token::Empty("B"),
                Token::Text("t&amp;u"),
                Token::CData("<z>"),
                Token::End
            ]
        );
        assert!(tokens("<A><B>x</B").is_err());
        assert!(tokens("<A><![CDATA[x</A>").is_err());
    }

    #[test]
    fn reads_simple_texts_and_skips_whole_elements() {
        let doc = "<A><B>x &amp; y</B><C><D/><E>e<!-- </C> --></E></C><F><G>g</G></F><H/>";
        let mut r = Reader::new(doc);
        assert_eq!(r.next_token().unwrap(), Some(Token::Start("A")));
        assert_eq!(r.next_token().unwrap(), Some(Token::Start("B")));
        let text = r.simple_text().unwrap();
        assert_eq!((text.raw, text.has_refs), ("x &amp; y", true));
        assert_eq!(r.next_token().unwrap(), Some(Token::Start("C")));
        r.skip_element().unwrap();
        assert_eq!(r.next_token().unwrap(), Some(Token::Start("F")));
        // Not text only: the reader stays where it was.
        assert!(r.simple_text().is_none());
        assert_eq!(r.next_token().unwrap(), Some(Token::Start("G")));
        assert_eq!(r.simple_text().unwrap().raw, "g");
        assert_eq!(r.next_token().unwrap(), Some(Token::End));
        assert_eq!(r.next_token().unwrap(), Some(Token::Empty("H")));
        let mut cut = Reader::new("<A><B><C>");
        cut.next_token().unwrap();
        assert!(cut.skip_element().is_err());
    }

    #[test]
    fn resolves_references() {
        assert_eq!(unescape("plain").unwrap(), "plain");
        assert_eq!(
            unescape("&quot;a&amp;b&lt;&gt;&apos;&#233;&#x41;").unwrap(),
            "\"a&b<>'éA"
        );
        assert!(unescape("&nbsp;").is_err());
        assert!(unescape("a & b").is_err());
    }

    #[test]
    fn finds_an_elements_text() {
        let doc = b"<VersioningConfiguration><Status> Enabled </Status></VersioningConfiguration>";
        assert_eq!(element_text(doc, "Status").as_deref(), Some("Enabled"));
        assert_eq!(
            element_text(b"<V><Status/></V>", "Status").as_deref(),
            Some("")
        );
        assert_eq!(element_text(b"<V></V>", "Status"), None);
    }
}
