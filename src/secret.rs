//! The one type that holds a secret (AccessKey secret, security token).
//! `Debug` and `Display` print `***`, so a secret cannot leak through a log
//! line, an error message or a panic by accident. And every secret the
//! process holds (and every AccessKey id, see [`remember`]) is known here
//! by value: [`scrub`] takes it, and any piece of it, out of a text on its
//! way out of the process (log lines, HTTP bodies), whatever the text
//! calls it.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::RwLock;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        // Unit tests make secrets of any text (the parsers' fuzz tests):
        // they would scrub the other tests' log lines in the same process.
        if !cfg!(test) {
            remember(&s);
        }
        Secret(s)
    }

    /// The value itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Parsed answers and config files put a secret straight into a `Secret`,
/// never into a plain `String` field first.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// A piece this long of a known value is taken out wherever it appears: a
/// message cut in the middle of a token still leaks its pieces.
pub const PIECE: usize = 10;
/// Values shorter than this are too common to look for (and too short to be
/// a key): they are not remembered.
const MIN_VALUE: usize = 8;
/// Values remembered at most; the oldest go first (temporary credentials
/// come anew at every refresh).
const MAX_VALUES: usize = 512;
const REDACTED: &str = "[redacted]";

#[derive(Default)]
struct Known {
    values: VecDeque<String>,
    /// Every piece of `PIECE` bytes of every value.
    pieces: HashSet<[u8; PIECE]>,
}

impl Known {
    fn rebuild(&mut self) {
        self.pieces.clear();
        for v in &self.values {
            for w in v.as_bytes().windows(PIECE) {
                if let Ok(p) = <[u8; PIECE]>::try_from(w) {
                    self.pieces.insert(p);
                }
            }
        }
    }
}

static KNOWN: RwLock<Option<Known>> = RwLock::new(None);

/// Remembers `value` as a secret (an AccessKey id or secret, a security or
/// OIDC token, a password) so that [`scrub`] takes it out of any text.
pub fn remember(value: &str) {
    let value = value.trim();
    if value.len() < MIN_VALUE {
        return;
    }
    let Ok(mut k) = KNOWN.write() else {
        return;
    };
    let k = k.get_or_insert_with(Known::default);
    if k.values.iter().any(|v| v == value) {
        return;
    }
    k.values.push_back(value.to_string());
    let evicted = k.values.len() > MAX_VALUES;
    if evicted {
        k.values.pop_front();
        k.rebuild();
    } else {
        for w in value.as_bytes().windows(PIECE) {
            if let Ok(p) = <[u8; PIECE]>::try_from(w) {
                k.pieces.insert(p);
            }
        }
    }
    // A value shorter than a piece is looked for whole (see `scrub`).
}

/// `text` with every known secret, and every run of `PIECE` or more bytes
/// that is part of one, replaced by `[redacted]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(k) = KNOWN.read() else {
        return Cow::Borrowed(text);
    };
    let Some(k) = k.as_ref() else {
        return Cow::Borrowed(text);
    };
    let bytes = text.as_bytes();
    // Byte ranges to take out, in order, merged.
    let mut cut: Vec<(usize, usize)> = Vec::new();
    let mut mark = |start: usize, end: usize| match cut.last_mut() {
        Some(last) if start <= last.1 => last.1 = last.1.max(end),
        _ => cut.push((start, end)),
    };
    if bytes.len() >= PIECE {
        for (i, w) in bytes.windows(PIECE).enumerate() {
            if let Ok(p) = <[u8; PIECE]>::try_from(w)
                && k.pieces.contains(&p)
            {
                mark(i, i + PIECE);
            }
        }
    }
    for v in k.values.iter().filter(|v| v.len() < PIECE) {
        let mut from = 0;
        while let Some(at) = text[from..].find(v.as_str()) {
            mark(from + at, from + at + v.len());
            from += at + v.len();
        }
    }
    if cut.is_empty() {
        return Cow::Borrowed(text);
    }
    cut.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in cut {
        let (start, end) = (start.max(copied), end);
        if end <= copied {
            continue;
        }
        // Widen to character boundaries: a secret is ASCII, its neighbours
        // may not be.
        let start = (0..=start)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let end = (end..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// True when `text` holds a known secret or a piece of one.
pub fn holds_secret(text: &str) -> bool {
    matches!(scrub(text), Cow::Owned(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn known_values_and_their_pieces_are_scrubbed_in_any_shape() {
        let token = "CAIS9wF1q6Ft5B2yfSjIr5bGCPTmnZ5l0q2dQ0XhgGUHVcN4gbzTuj";
        let key = "STS.NU8kKb3ZxLq7Rm2";
        remember(token);
        remember(key);
        for text in [
            format!("SecurityToken = {token}"),
            format!("<SecurityToken>{token}</SecurityToken>"),
            format!("{{\"securityToken\":\"{token}\"}}"),
            format!("the token {token} of key {key} is not valid"),
            format!("cut: ...{}", &token[20..35]),
        ] {
            let out = scrub(&text);
            assert!(!out.contains(&token[20..30]), "{out}");
            assert!(!out.contains(&key[4..14]), "{out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
        assert_eq!(
            scrub("nothing secret here, 云 ok"),
            "nothing secret here, 云 ok"
        );
        assert!(holds_secret(&format!("x{key}y")));
        let text = format!("云{token}云");
        assert_eq!(scrub(&text), "云[redacted]云");
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let s: Secret = serde_json::from_str("\"hunter2\"").expect("string");
        assert_eq!(s.expose(), "hunter2");
    }
}
