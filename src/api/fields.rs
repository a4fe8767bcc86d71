//! An answer's scalar fields, read tolerantly. Each action declares its
//! rows as a `Deserialize` struct (see `page`) whose fields are [`Raw`]
//! scalars, borrowed from the body; the functions here turn one into its
//! value with an error that names the field: numbers as numbers or strings,
//! booleans as `true`/`True`/`"true"`, minute-precision times.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::clock::parse_iso8601;
use crate::intern::intern;

/// What was wrong with one field, for an error message.
pub type FieldError = String;

/// One field's value as the answer gave it. Strings are borrowed from the
/// body unless they hold escapes; a list or object is only its kind (a
/// scalar field that holds one is an error anyway). `null` is an absent
/// field (`Option::None`).
#[derive(Clone, Debug, PartialEq)]
pub enum Raw<'a> {
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    List,
    Object,
}

impl Raw<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Raw::Bool(_) => "a boolean",
            Raw::Num(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::List => "a list",
            Raw::Object => "an object",
        }
    }

    /// The value as JSON, cut at 40 bytes, for an error message.
    fn short(&self) -> String {
        let s = match self {
            Raw::Bool(b) => b.to_string(),
            Raw::Num(n) => n.to_string(),
            Raw::Str(s) => serde_json::Value::from(s.as_ref()).to_string(),
            Raw::List => "[…]".into(),
            Raw::Object => "{…}".into(),
        };
        if s.len() > 40 {
            format!("{}…", &s[..s.floor_char_boundary(40)])
        } else {
            s
        }
    }
}

/// The kind of a value that is not what its place wants, by the visitor
/// call serde makes for it.
pub(super) struct Kind;

impl Kind {
    pub(super) const BOOL: &'static str = "a boolean";
    pub(super) const NUM: &'static str = "a number";
    pub(super) const STR: &'static str = "a string";
    pub(super) const LIST: &'static str = "a list";
    pub(super) const NULL: &'static str = "null";
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Raw<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Raw<'a>, E> {
                Ok(Raw::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Raw<'a>, E> {
                Ok(Raw::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Raw<'a>, E> {
                Ok(Raw::Num(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Raw<'a>, E> {
                Number::from_f64(n)
                    .map(Raw::Num)
                    .ok_or_else(|| E::custom("a number that is not finite"))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Raw<'a>, E> {
                Ok(Raw::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Raw<'a>, E> {
                Ok(Raw::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Raw<'a>, E> {
                Ok(Raw::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw<'a>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Raw::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw<'a>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Raw::Object)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A key of an object, borrowed where it can be.
pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Str(s) => Ok(Key(s)),
            other => Err(de::Error::custom(format!("a key is {}", other.kind()))),
        }
    }
}

/// A required string (a number is accepted and written out).
pub fn req_str(v: &Option<Raw>, name: &str) -> Result<String, FieldError> {
    opt_str(v, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{name} is missing"))
}

/// A required string, shared through the intern pool.
pub fn req_shared(v: &Option<Raw>, name: &str) -> Result<Arc<str>, FieldError> {
    opt_shared(v, name)?.ok_or_else(|| format!("{name} is missing"))
}

/// An optional string, shared through the intern pool; empty means absent.
pub fn opt_shared(v: &Option<Raw>, name: &str) -> Result<Option<Arc<str>>, FieldError> {
    match v {
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(intern(s))),
        _ => Ok(opt_str(v, name)?.map(|s| intern(&s))),
    }
}

/// An optional string; empty means absent.
pub fn opt_str(v: &Option<Raw>, name: &str) -> Result<Option<String>, FieldError> {
    match v {
        None => Ok(None),
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(s.to_string())),
        Some(Raw::Num(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{name} is {}, not a string", other.kind())),
    }
}

/// An optional non-negative integer, from a number or a numeric string.
pub fn opt_u64(v: &Option<Raw>, name: &str) -> Result<Option<u64>, FieldError> {
    match v {
        None => Ok(None),
        Some(Raw::Num(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| format!("{name} is {n}, not a non-negative integer")),
        Some(Raw::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Raw::Str(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name} is {s:?}, not a non-negative integer")),
        Some(other) => Err(format!("{name} is {}, not a number", other.kind())),
    }
}

/// An optional boolean: `true`, `false`, and their string forms in any case.
pub fn opt_bool(v: &Option<Raw>, name: &str) -> Result<Option<bool>, FieldError> {
    match v {
        None => Ok(None),
        Some(Raw::Bool(b)) => Ok(Some(*b)),
        Some(Raw::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Raw::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(format!("{name} is {}, not true or false", other.short())),
    }
}

/// Earliest and latest times taken as real: anything outside is a broken
/// answer, not a heartbeat (2000-01-01 .. 2200-01-01).
const MIN_TIME: i64 = 946_684_800;
const MAX_TIME: i64 = 7_258_118_400;

/// An optional UTC time (`…T09:00:40Z` or `…T09:00Z`) as Unix seconds.
pub fn opt_time(v: &Option<Raw>, name: &str) -> Result<Option<i64>, FieldError> {
    let Some(s) = opt_str(v, name)? else {
        return Ok(None);
    };
    let t = parse_iso8601(&s).ok_or_else(|| format!("{name} is {s:?}, not a UTC time"))?;
    if !(MIN_TIME..MAX_TIME).contains(&t) {
        return Err(format!("{name} is {s:?}, outside any plausible time"));
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Option<Raw<'_>> {
        serde_json::from_str(json).expect("JSON")
    }

    #[test]
    fn quirks_parse() {
        assert_eq!(opt_u64(&raw("\"12\""), "a"), Ok(Some(12)));
        assert_eq!(opt_u64(&raw("12"), "b"), Ok(Some(12)));
        assert_eq!(opt_u64(&raw("3.0"), "h"), Ok(Some(3)));
        assert_eq!(opt_bool(&raw("\"True\""), "c"), Ok(Some(true)));
        assert_eq!(opt_bool(&raw("false"), "d"), Ok(Some(false)));
        assert_eq!(
            opt_time(&raw("\"2021-01-20T09:00Z\""), "e"),
            Ok(Some(1_611_133_200))
        );
        assert_eq!(opt_str(&raw("\"\""), "f"), Ok(None));
        assert_eq!(opt_str(&raw("null"), "g"), Ok(None));
        assert_eq!(opt_str(&raw("12"), "b"), Ok(Some("12".into())));
        assert_eq!(opt_u64(&None, "missing"), Ok(None));
        // Strings without escapes are borrowed from the body; with, owned.
        assert!(matches!(raw("\"ab\""), Some(Raw::Str(Cow::Borrowed("ab")))));
        assert_eq!(opt_str(&raw("\"a\\u0062\""), "s"), Ok(Some("ab".into())));
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(opt_u64(&raw("\"x1\""), "a").unwrap_err().contains("\"x1\""));
        assert!(opt_u64(&raw("-1"), "b").is_err());
        assert!(
            opt_bool(&raw("\"yes\""), "c")
                .unwrap_err()
                .contains("c is \"yes\", not true or false")
        );
        assert!(opt_str(&raw("[1]"), "d").unwrap_err().contains("a list"));
        assert!(opt_str(&raw("{}"), "d").unwrap_err().contains("an object"));
        assert!(opt_time(&raw("\"yesterday\""), "e").is_err());
        assert!(
            opt_time(&raw("\"1901-01-01T00:00:00Z\""), "f")
                .unwrap_err()
                .contains("plausible")
        );
        assert!(req_str(&None, "zz").unwrap_err().contains("zz is missing"));
    }
}
