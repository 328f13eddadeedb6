//! Keys read as numbers, so that a key range can be cut into parts of about
//! equal size without listing it, and a listing's progress through a range
//! can be told as a share.
//!
//! After the prefix two keys share, each character position is a digit in
//! the base of its character class — digits, lower-case letters, upper-case
//! letters, printable ASCII, or any code point — taken from the range's ends:
//! between `obj-0000000000` and `obj-0001` the cuts fall on digits
//! (`obj-00005…`), not on the letters or punctuation a plain byte midpoint
//! would land on, past every key there is. Keys sort as their numbers do, so
//! a cut always falls between the range's ends; how evenly it divides the
//! keys depends on how evenly they are spread, which the scan makes up for
//! by cutting again where work remains.

/// Positions read at most: enough to tell a billion keys apart.
const MAX_DEPTH: usize = 16;
/// The numbers stay below 2^100, so that scaling them never overflows.
const MAX_SPAN: u128 = 1 << 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    Lower,
    Upper,
    /// Printable ASCII, space to `~`.
    Ascii,
    /// Any code point.
    Wide,
}

impl Class {
    fn of(c: char) -> Class {
        match c {
            '0'..='9' => Class::Digit,
            'a'..='z' => Class::Lower,
            'A'..='Z' => Class::Upper,
            c if c.is_ascii() => Class::Ascii,
            _ => Class::Wide,
        }
    }

    /// The class both characters fit in.
    fn join(self, other: Class) -> Class {
        match (self, other) {
            (a, b) if a == b => a,
            (Class::Wide, _) | (_, Class::Wide) => Class::Wide,
            _ => Class::Ascii,
        }
    }

    fn first(self) -> u32 {
        match self {
            Class::Digit => '0' as u32,
            Class::Lower => 'a' as u32,
            Class::Upper => 'A' as u32,
            Class::Ascii => ' ' as u32,
            Class::Wide => 0,
        }
    }

    fn size(self) -> u32 {
        match self {
            Class::Digit => 10,
            Class::Lower | Class::Upper => 26,
            Class::Ascii => 95,
            Class::Wide => 0x11_0000,
        }
    }

    /// Position in the class (characters outside it are clamped to its ends).
    fn rank(self, c: char) -> u32 {
        (c as u32).saturating_sub(self.first()).min(self.size() - 1)
    }

    fn char(self, rank: u32) -> char {
        let code = self.first() + rank.min(self.size() - 1);
        // Surrogates are no characters: the next one up is.
        let code = if (0xD800..0xE000).contains(&code) {
            0xE000
        } else {
            code
        };
        char::from_u32(code).unwrap_or(char::MAX)
    }
}

/// The digits of two keys past their shared prefix, and their classes.
struct Frame {
    prefix: String,
    classes: Vec<Class>,
}

impl Frame {
    /// `low` and `high` read in each other's light (high: the larger).
    fn of(low: &str, high: &str) -> Frame {
        let prefix = common_prefix(low, high).to_owned();
        let prefix_len = prefix.len();
        let (mut a, mut b) = (low[prefix_len..].chars(), high[prefix_len..].chars());
        let mut classes = Vec::new();
        let mut span: u128 = 1;
        while classes.len() < MAX_DEPTH {
            let class = match (a.next(), b.next()) {
                (Some(x), Some(y)) => Class::of(x).join(Class::of(y)),
                (Some(x), None) => Class::of(x),
                (None, Some(y)) => Class::of(y),
                (None, None) => break,
            };
            span = span.saturating_mul(u128::from(class.size()));
            if span > MAX_SPAN {
                break;
            }
            classes.push(class);
        }
        Frame { prefix, classes }
    }

    /// A key as a number: each position's rank in its class (a key that
    /// ends early reads as the class's first character from there on).
    fn value(&self, key: &str) -> u128 {
        let rest = key.strip_prefix(self.prefix.as_str());
        let mut chars = rest.unwrap_or("").chars();
        let below = rest.is_none() && key < self.prefix.as_str();
        let mut v: u128 = 0;
        for class in &self.classes {
            let digit = match (below, chars.next()) {
                (true, _) | (false, None) => 0,
                (false, Some(c)) => class.rank(c),
            };
            v = v * u128::from(class.size()) + u128::from(digit);
        }
        v
    }

    /// The key with the number `v`.
    fn key(&self, mut v: u128) -> String {
        let mut digits = vec![0u32; self.classes.len()];
        for (d, class) in digits.iter_mut().zip(&self.classes).rev() {
            let base = u128::from(class.size());
            *d = (v % base) as u32;
            v /= base;
        }
        let mut key = self.prefix.clone();
        for (d, class) in digits.iter().zip(&self.classes) {
            key.push(class.char(*d));
        }
        key
    }
}

/// The longest prefix `a` and `b` share, on a character boundary.
pub fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let len = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..len]
}

/// `parts - 1` keys strictly between `low` and `high`, ascending, that cut
/// the keys between them into `parts` ranges of about equal share of the
/// key space; fewer (or none) where the two are too close to cut.
pub fn cut_points(low: &str, high: &str, parts: usize) -> Vec<String> {
    if parts < 2 || low >= high {
        return Vec::new();
    }
    let frame = Frame::of(low, high);
    let (l, h) = (frame.value(low), frame.value(high));
    let mut cuts: Vec<String> = Vec::with_capacity(parts - 1);
    for k in 1..parts as u128 {
        let cut = frame.key(l + (h - l) * k / parts as u128);
        let after_last = cuts.last().map_or(low, String::as_str);
        if cut.as_str() > after_last && cut.as_str() < high {
            cuts.push(cut);
        }
    }
    cuts
}

/// Where `key` lies between `low` (0) and `high` (1).
pub fn position(low: &str, high: &str, key: &str) -> f64 {
    if low >= high {
        return 1.0;
    }
    let frame = Frame::of(low, high);
    let (l, h, k) = (frame.value(low), frame.value(high), frame.value(key));
    if k <= l {
        0.0
    } else if k >= h {
        1.0
    } else {
        (k - l) as f64 / (h - l) as f64
    }
}

/// Keys above `key` that may bound the keys after it under `prefix`,
/// largest first: past anything under the prefix, then `key` with one
/// character raised by one within its class, from the first character
/// after the prefix to the last (each bound tighter than the one before);
/// with the position (in chars after the prefix) of the raised character.
pub fn raised(prefix: &str, key: &str) -> Vec<(Option<usize>, String)> {
    let mut bounds = vec![(None, format!("{prefix}{}", char::MAX))];
    let Some(rest) = key.strip_prefix(prefix) else {
        return bounds;
    };
    for (at, (i, c)) in rest.char_indices().take(64).enumerate() {
        let class = Class::of(c);
        let rank = class.rank(c);
        if rank + 1 < class.size() {
            let bound = format!("{prefix}{}{}", &rest[..i], class.char(rank + 1));
            bounds.push((Some(at), bound));
        }
    }
    bounds
}

/// Keys between `low` and `bound` — `low` with its character at `at` (in
/// chars after `prefix`) raised by each step of its class up to `bound`'s —
/// for narrowing a bound found by [`raised`], largest first.
pub fn raised_at(prefix: &str, low: &str, at: usize) -> Vec<String> {
    let Some(rest) = low.strip_prefix(prefix) else {
        return Vec::new();
    };
    let Some((i, c)) = rest.char_indices().nth(at) else {
        return Vec::new();
    };
    let class = Class::of(c);
    (class.rank(c) + 1..class.size())
        .rev()
        .map(|r| format!("{prefix}{}{}", &rest[..i], class.char(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_the_characters_the_keys_are_made_of() {
        let cuts = cut_points("p000/obj-0000000000-a.jpg", "p000/obj-0001", 4);
        assert_eq!(cuts.len(), 3);
        // The digits of the numbers the keys count with (a cut may end
        // early: it then comes before every key it starts).
        let number = |c: &str| -> u64 {
            let digits: String = c["p000/obj-".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            assert!(digits.len() >= 4, "{c}");
            format!("{digits:0<10}")[..10].parse().unwrap()
        };
        for c in &cuts {
            number(c);
        }
        assert!(cuts[0].starts_with("p000/obj-00002"), "{cuts:?}");
        assert!(cuts[1].starts_with("p000/obj-00004") || cuts[1].starts_with("p000/obj-00005"));
        // Cuts of a number range fall evenly on its numbers.
        let cuts = cut_points(
            "p000/obj-0000000999-9f8e7d6c5b4a3.jpg",
            "p000/obj-00005",
            32,
        );
        for w in cuts.windows(2) {
            let step = number(&w[1]) - number(&w[0]);
            assert!((14_000..17_000).contains(&step), "{cuts:?}");
        }
    }

    #[test]
    fn cuts_are_ascending_and_strictly_between() {
        for (low, high) in [
            ("a", "b"),
            ("a", "z"),
            ("", "zzzz"),
            ("img/2024/01/", "img/2024/12/"),
            ("café/1", "日本/9"),
            ("k\tx", "k\nz"),
            ("abc", "abd"),
            ("same", "same"),
            ("x/\u{10FFFF}", "y"),
        ] {
            let cuts = cut_points(low, high, 8);
            let mut last = low.to_owned();
            for c in &cuts {
                assert!(
                    c.as_str() > last.as_str() && c.as_str() < high,
                    "{low:?}..{high:?}: {cuts:?}"
                );
                last = c.clone();
            }
        }
        assert_eq!(cut_points("a", "z", 2).len(), 1);
        assert!(cut_points("b", "a", 4).is_empty());
    }

    #[test]
    fn common_prefixes_end_on_a_character() {
        assert_eq!(common_prefix("img/a1", "img/b2"), "img/");
        assert_eq!(common_prefix("é1", "é2"), "é");
        assert_eq!(common_prefix("aé", "aè"), "a");
        assert_eq!(common_prefix("ab", "abc"), "ab");
        assert_eq!(common_prefix("a", "b"), "");
    }

    #[test]
    fn positions_go_from_zero_to_one() {
        let (l, h) = ("obj-0000", "obj-1000");
        assert_eq!(position(l, h, "obj-0000"), 0.0);
        assert_eq!(position(l, h, "obj-1000"), 1.0);
        let mid = position(l, h, "obj-0500");
        assert!((0.45..0.55).contains(&mid), "{mid}");
        assert!(position(l, h, "obj-0250") < mid);
    }

    #[test]
    fn raised_bounds_shrink_toward_the_key() {
        let bounds = raised("p/", "p/a09");
        assert_eq!(
            bounds,
            [
                (None, "p/\u{10FFFF}".to_owned()),
                (Some(0), "p/b".to_owned()),
                (Some(1), "p/a1".to_owned())
            ]
        );
        for w in bounds.windows(2) {
            assert!(w[0].1 > w[1].1);
        }
        assert_eq!(raised_at("p/", "p/a07", 2), ["p/a09", "p/a08"]);
    }
}
