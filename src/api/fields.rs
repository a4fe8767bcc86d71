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

/// What is wrong with an answer: which field, set or row, and how. Its
/// text names the field in the answer's own spelling.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A value of the wrong JSON type (`kind`: "a list", "a string", …).
    #[error("{name} is {kind}, not {want}")]
    Type {
        name: &'static str,
        kind: &'static str,
        want: &'static str,
    },
    /// A value of the right type that does not read as one (`value` as the
    /// answer wrote it, cut short).
    #[error("{name} is {value}, not {want}")]
    Value {
        name: &'static str,
        value: String,
        want: &'static str,
    },
    #[error("{name} is {value}, outside any plausible time")]
    Implausible { name: &'static str, value: String },
    /// A set that is not a list, or one of its items not an object.
    #[error("{set} is {kind}, not a list")]
    NotList { set: String, kind: &'static str },
    #[error("{set} item {index} is {kind}, not an object")]
    NotObject {
        set: &'static str,
        index: usize,
        kind: &'static str,
    },
    /// A page without its set although it says more rows exist.
    #[error("{set} is missing, yet {because}")]
    MissingSet { set: &'static str, because: String },
    #[error("{what} {key} is listed twice in one page")]
    Twice { what: &'static str, key: String },
    /// The body does not read as the answer at all (serde's words).
    #[error("{0}")]
    Json(String),
    /// An error inside one row (`row`: "instance i-1", "tag 0", …).
    #[error("{row}: {error}")]
    In { row: String, error: Box<FieldError> },
}

impl FieldError {
    /// This error as one inside `row` ("instance i-1", "tag 0").
    pub fn within(self, row: impl fmt::Display) -> FieldError {
        FieldError::In {
            row: row.to_string(),
            error: Box::new(self),
        }
    }
}

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
            Raw::Bool(_) => Kind::BOOL,
            Raw::Num(_) => Kind::NUM,
            Raw::Str(_) => Kind::STR,
            Raw::List => Kind::LIST,
            Raw::Object => Kind::OBJECT,
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
    pub(super) const OBJECT: &'static str = "an object";
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

/// Of two spellings of a field that one answer may both give (a newer and
/// a deprecated one), the newer unless it is absent or empty.
pub fn either<'v, 'a>(
    newer: &'v Option<Raw<'a>>,
    older: &'v Option<Raw<'a>>,
) -> &'v Option<Raw<'a>> {
    match newer {
        None => older,
        Some(Raw::Str(s)) if s.is_empty() => older,
        Some(_) => newer,
    }
}

/// A required string (a number is accepted and written out).
pub fn req_str(v: &Option<Raw>, name: &'static str) -> Result<String, FieldError> {
    opt_str(v, name)?
        .filter(|s| !s.is_empty())
        .ok_or(FieldError::Missing(name))
}

/// A required string, shared through the intern pool.
pub fn req_shared(v: &Option<Raw>, name: &'static str) -> Result<Arc<str>, FieldError> {
    opt_shared(v, name)?.ok_or(FieldError::Missing(name))
}

/// An optional string, shared through the intern pool; empty means absent.
pub fn opt_shared(v: &Option<Raw>, name: &'static str) -> Result<Option<Arc<str>>, FieldError> {
    match v {
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(intern(s))),
        _ => Ok(opt_str(v, name)?.map(|s| intern(&s))),
    }
}

/// One field's shared value, remembered from the row before: the rows of
/// a page mostly repeat a version, a state or a plugin name, so the pool
/// (a lock and a hash) is asked when the value changes, not for every row.
#[derive(Default)]
pub struct Repeated(Option<Arc<str>>);

impl Repeated {
    /// [`opt_shared`], through the value of the row before.
    pub fn opt(
        &mut self,
        v: &Option<Raw>,
        name: &'static str,
    ) -> Result<Option<Arc<str>>, FieldError> {
        if let (Some(Raw::Str(s)), Some(last)) = (v, &self.0)
            && **last == **s
        {
            return Ok(Some(Arc::clone(last)));
        }
        let value = opt_shared(v, name)?;
        if let Some(value) = &value {
            self.0 = Some(Arc::clone(value));
        }
        Ok(value)
    }

    /// [`req_shared`], through the value of the row before.
    pub fn req(&mut self, v: &Option<Raw>, name: &'static str) -> Result<Arc<str>, FieldError> {
        self.opt(v, name)?.ok_or(FieldError::Missing(name))
    }
}

/// An optional string; empty means absent.
pub fn opt_str(v: &Option<Raw>, name: &'static str) -> Result<Option<String>, FieldError> {
    match v {
        None => Ok(None),
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(s.to_string())),
        Some(Raw::Num(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(FieldError::Type {
            name,
            kind: other.kind(),
            want: "a string",
        }),
    }
}

const NON_NEGATIVE: &str = "a non-negative integer";

/// An optional non-negative integer, from a number or a numeric string.
pub fn opt_u64(v: &Option<Raw>, name: &'static str) -> Result<Option<u64>, FieldError> {
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
            .ok_or_else(|| FieldError::Value {
                name,
                value: n.to_string(),
                want: NON_NEGATIVE,
            }),
        Some(Raw::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Raw::Str(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| FieldError::Value {
                name,
                value: format!("{s:?}"),
                want: NON_NEGATIVE,
            }),
        Some(other) => Err(FieldError::Type {
            name,
            kind: other.kind(),
            want: "a number",
        }),
    }
}

/// An optional boolean: `true`, `false`, and their string forms in any case.
pub fn opt_bool(v: &Option<Raw>, name: &'static str) -> Result<Option<bool>, FieldError> {
    match v {
        None => Ok(None),
        Some(Raw::Bool(b)) => Ok(Some(*b)),
        Some(Raw::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Raw::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Raw::Str(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(FieldError::Value {
            name,
            value: other.short(),
            want: "true or false",
        }),
    }
}

/// Earliest and latest times taken as real: anything outside is a broken
/// answer, not a heartbeat (2000-01-01 .. 2200-01-01).
const MIN_TIME: i64 = 946_684_800;
const MAX_TIME: i64 = 7_258_118_400;

/// An optional UTC time (`…T09:00:40Z` or `…T09:00Z`) as Unix seconds.
pub fn opt_time(v: &Option<Raw>, name: &'static str) -> Result<Option<i64>, FieldError> {
    let Some(s) = opt_str(v, name)? else {
        return Ok(None);
    };
    let t = parse_iso8601(&s).ok_or_else(|| FieldError::Value {
        name,
        value: format!("{s:?}"),
        want: "a UTC time",
    })?;
    if !(MIN_TIME..MAX_TIME).contains(&t) {
        return Err(FieldError::Implausible {
            name,
            value: format!("{s:?}"),
        });
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
    fn a_repeated_value_is_the_pools_copy_and_a_new_one_is_read_afresh() {
        let mut r = Repeated::default();
        let a = r.req(&raw("\"Running-fields-test\""), "S").expect("value");
        assert!(Arc::ptr_eq(&a, &intern("Running-fields-test")));
        let b = r.req(&raw("\"Running-fields-test\""), "S").expect("value");
        assert!(Arc::ptr_eq(&a, &b));
        // A different value, a number, an empty string and null are read as
        // opt_shared reads them; the empty one is not remembered.
        assert_eq!(
            r.opt(&raw("\"Stopped\""), "S").expect("value").as_deref(),
            Some("Stopped")
        );
        assert_eq!(r.opt(&raw("7"), "S").expect("value").as_deref(), Some("7"));
        assert_eq!(r.opt(&raw("\"\""), "S"), Ok(None));
        assert_eq!(r.opt(&raw("null"), "S"), Ok(None));
        assert_eq!(
            r.opt(&raw("\"7\""), "S").expect("value").as_deref(),
            Some("7")
        );
        assert_eq!(r.req(&raw("\"\""), "S"), Err(FieldError::Missing("S")));
        assert!(matches!(
            r.opt(&raw("[1]"), "S"),
            Err(FieldError::Type { .. })
        ));
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
        assert!(
            opt_u64(&raw("\"x1\""), "a")
                .unwrap_err()
                .to_string()
                .contains("\"x1\"")
        );
        assert!(opt_u64(&raw("-1"), "b").is_err());
        assert!(
            opt_bool(&raw("\"yes\""), "c")
                .unwrap_err()
                .to_string()
                .contains("c is \"yes\", not true or false")
        );
        assert!(
            opt_str(&raw("[1]"), "d")
                .unwrap_err()
                .to_string()
                .contains("a list")
        );
        assert!(
            opt_str(&raw("{}"), "d")
                .unwrap_err()
                .to_string()
                .contains("an object")
        );
        assert!(opt_time(&raw("\"yesterday\""), "e").is_err());
        assert!(
            opt_time(&raw("\"1901-01-01T00:00:00Z\""), "f")
                .unwrap_err()
                .to_string()
                .contains("plausible")
        );
        assert!(
            req_str(&None, "zz")
                .unwrap_err()
                .to_string()
                .contains("zz is missing")
        );
    }
}
