//! Tolerant reading of the JSON answers into typed structs. Each action
//! declares its rows as a `Deserialize` struct whose fields are [`Raw`]
//! scalars (strings borrowed from the body) or nested [`Set`]s; the
//! functions here turn a field into its value with an error that names it:
//! numbers as numbers or strings, booleans as `true`/`True`/`"true"`, two
//! spellings of a key (`alias`), a set given as an array or as an object
//! that wraps the array.

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
struct Kind;

impl Kind {
    const BOOL: &'static str = "a boolean";
    const NUM: &'static str = "a number";
    const STR: &'static str = "a string";
    const LIST: &'static str = "a list";
    const NULL: &'static str = "null";
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
struct Key<'a>(Cow<'a, str>);

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

/// The names of a set such as `{"XSet": {"X": [..]}}`: the key of the set
/// (the first spelling names it in errors) and of the list it may wrap.
pub trait Names {
    const OUTER: &'static [&'static str];
    const INNER: &'static [&'static str];
}

/// One item of a set: an object read as `T`, or the kind of what stood in
/// its place.
enum Elem<T> {
    Obj(T),
    Not(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Elem<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Elem<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a)).map(Elem::Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Elem<T>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Elem::Not(Kind::LIST))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::BOOL))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::NUM))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::NUM))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::NUM))
            }
            fn visit_str<E>(self, _: &str) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::STR))
            }
            fn visit_unit<E>(self) -> Result<Elem<T>, E> {
                Ok(Elem::Not(Kind::NULL))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The list a set wraps: an array, a single object, or something else.
enum Inner<T> {
    List(Vec<Elem<T>>),
    Not(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Inner<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Inner<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Inner<T>, A::Error> {
                elems(a).map(Inner::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Inner<T>, A::Error> {
                let one = T::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(Inner::List(vec![Elem::Obj(one)]))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Inner<T>, E> {
                Ok(Inner::Not(Kind::BOOL))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Inner<T>, E> {
                Ok(Inner::Not(Kind::NUM))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Inner<T>, E> {
                Ok(Inner::Not(Kind::NUM))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Inner<T>, E> {
                Ok(Inner::Not(Kind::NUM))
            }
            fn visit_str<E>(self, _: &str) -> Result<Inner<T>, E> {
                Ok(Inner::Not(Kind::STR))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

fn elems<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(mut a: A) -> Result<Vec<Elem<T>>, A::Error> {
    let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(super::PAGE_SIZE * 2));
    while let Some(e) = a.next_element()? {
        out.push(e);
    }
    Ok(out)
}

/// A set in every documented shape: an array, or an object wrapping the
/// array (or a single object) under one of `N::INNER`; `{}` is an empty
/// set. What does not fit is kept as an error for [`Set::items`], which
/// names the set.
pub struct Set<T, N> {
    items: Result<Vec<Elem<T>>, (bool, &'static str)>,
    names: PhantomData<N>,
}

impl<T, N: Names> Set<T, N> {
    /// The items, each an object, or an error naming the set.
    pub fn items(self) -> Result<Vec<T>, FieldError> {
        let outer = N::OUTER[0];
        let items = match self.items {
            Ok(items) => items,
            Err((false, kind)) => return Err(format!("{outer} is {kind}, not a list")),
            Err((true, kind)) => {
                return Err(format!("{outer}.{} is {kind}, not a list", N::INNER[0]));
            }
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, e)| match e {
                Elem::Obj(t) => Ok(t),
                Elem::Not(kind) => Err(format!("{outer} item {i} is {kind}, not an object")),
            })
            .collect()
    }
}

impl<'de, T: Deserialize<'de>, N: Names> Deserialize<'de> for Set<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, N>(PhantomData<(T, N)>);
        type Out<T> = Result<Vec<Elem<T>>, (bool, &'static str)>;
        impl<'de, T: Deserialize<'de>, N: Names> Visitor<'de> for V<T, N> {
            type Value = Out<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Out<T>, A::Error> {
                elems(a).map(Ok)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Out<T>, A::Error> {
                let mut found: Option<Out<T>> = None;
                while let Some(Key(k)) = a.next_key()? {
                    if found.is_none() && N::INNER.contains(&k.as_ref()) {
                        // `null` under the inner key is as good as no key.
                        found = a.next_value::<Option<Inner<T>>>()?.map(|i| match i {
                            Inner::List(v) => Ok(v),
                            Inner::Not(kind) => Err((true, kind)),
                        });
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                // `{"XSet": {}}` is how an empty set is written.
                Ok(found.unwrap_or_else(|| Ok(Vec::new())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Out<T>, E> {
                Ok(Err((false, Kind::BOOL)))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Out<T>, E> {
                Ok(Err((false, Kind::NUM)))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Out<T>, E> {
                Ok(Err((false, Kind::NUM)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Out<T>, E> {
                Ok(Err((false, Kind::NUM)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Out<T>, E> {
                Ok(Err((false, Kind::STR)))
            }
        }
        Ok(Set {
            items: d.deserialize_any(V::<T, N>(PhantomData))?,
            names: PhantomData,
        })
    }
}

/// The items of an optional nested set (a missing one is empty).
pub fn nested<T, N: Names>(set: Option<Set<T, N>>) -> Result<Vec<T>, FieldError> {
    set.map_or_else(|| Ok(Vec::new()), Set::items)
}

/// The rows of an action: the names of their set and the struct each row
/// is read into.
pub trait Rows: Names {
    type Item<'a>: Deserialize<'a>;
}

/// One answer page: its set of rows and the fields paging reads; every
/// other key is skipped without being kept.
pub struct Page<'a, R: Rows> {
    pub set: Option<Set<R::Item<'a>, R>>,
    next_token: Option<Raw<'a>>,
    total_count: Option<Raw<'a>>,
    page_size: Option<Raw<'a>>,
}

/// What paging reads from a page besides its rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub next_token: Option<String>,
    pub total_count: Option<u64>,
    pub page_size: Option<u64>,
}

impl<'de, R: Rows> Deserialize<'de> for Page<'de, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: Rows> Visitor<'de> for V<R> {
            type Value = Page<'de, R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Page<'de, R>, A::Error> {
                let mut page = Page::empty();
                while let Some(Key(k)) = a.next_key()? {
                    match k.as_ref() {
                        "NextToken" => page.next_token = a.next_value()?,
                        "TotalCount" => page.total_count = a.next_value()?,
                        "PageSize" => page.page_size = a.next_value()?,
                        k if page.set.is_none() && R::OUTER.contains(&k) => {
                            page.set = a.next_value()?;
                        }
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(page)
            }
            // Anything but an object has none of the keys (the client
            // refuses such an answer before it gets here).
            fn visit_unit<E>(self) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_str<E>(self, _: &str) -> Result<Page<'de, R>, E> {
                Ok(Page::empty())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Page<'de, R>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Page::empty())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'a, R: Rows> Page<'a, R> {
    fn empty() -> Self {
        Page {
            set: None,
            next_token: None,
            total_count: None,
            page_size: None,
        }
    }

    /// Reads one answer body (the client checked it is a JSON object).
    pub fn read(body: &'a [u8]) -> Result<Self, FieldError> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    /// NextToken, TotalCount and PageSize, each checked.
    pub fn meta(&self) -> Result<Meta, FieldError> {
        Ok(Meta {
            next_token: opt_str(&self.next_token, "NextToken")?,
            total_count: opt_u64(&self.total_count, "TotalCount")?,
            page_size: opt_u64(&self.page_size, "PageSize")?,
        })
    }

    /// The rows; a page whose set is missing altogether is an empty page
    /// when nothing says more rows exist (no NextToken, or TotalCount 0),
    /// as the SDKs read it; with a NextToken it is an error, since rows
    /// would be lost silently.
    pub fn rows(self) -> Result<Vec<R::Item<'a>>, FieldError> {
        if let Some(set) = self.set {
            return set.items();
        }
        let token = opt_str(&self.next_token, "NextToken").unwrap_or(None);
        let total = opt_u64(&self.total_count, "TotalCount").unwrap_or(None);
        if token.is_none() || total == Some(0) {
            Ok(Vec::new())
        } else {
            Err(format!(
                "{} is missing, yet a NextToken says more pages follow",
                R::OUTER[0]
            ))
        }
    }
}

/// The rows of one page read by `parse` with no `id` twice (`what` names a
/// row in that error), and the page's paging fields.
pub fn unique_rows<'a, R: Rows, T>(
    body: &'a [u8],
    parse: impl Fn(R::Item<'a>) -> Result<T, FieldError>,
    id: impl Fn(&T) -> &str,
    what: &str,
) -> Result<(Vec<T>, Meta), FieldError> {
    let page = Page::<R>::read(body)?;
    let meta = page.meta()?;
    let rows = page
        .rows()?
        .into_iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(rows.iter().map(id), what)?;
    Ok((rows, meta))
}

/// An error naming the first key that one page lists twice. Rows repeated
/// across pages can happen while instances come and go; within one page
/// they mean a broken answer.
pub fn check_unique<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<(), FieldError> {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(format!("{what} {k} is listed twice in one page"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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

    struct S;
    impl Names for S {
        const OUTER: &'static [&'static str] = &["S", "Z"];
        const INNER: &'static [&'static str] = &["I", "J"];
    }
    impl Rows for S {
        type Item<'a> = Item<'a>;
    }
    #[derive(Deserialize)]
    struct Item<'a> {
        #[serde(borrow)]
        x: Option<Raw<'a>>,
    }

    fn n(json: &str) -> Result<usize, FieldError> {
        Page::<S>::read(json.as_bytes())?.rows().map(|v| v.len())
    }

    #[test]
    fn sets_in_every_shape() {
        assert_eq!(n(r#"{"S": {"I": [{"x": 1}, {"x": 2}]}}"#), Ok(2));
        assert_eq!(n(r#"{"Z": {"J": [{"x": 1}, {"x": 2}]}}"#), Ok(2));
        assert_eq!(n(r#"{"S": [{"x": 1}]}"#), Ok(1));
        assert_eq!(n(r#"{"S": {"I": {"x": 1}}}"#), Ok(1));
        assert_eq!(n(r#"{"S": {}}"#), Ok(0));
        assert_eq!(n(r#"{"S": {"I": null, "other": [1]}}"#), Ok(0));
        let rows = Page::<S>::read(br#"{"a": [1, {"b": 2}], "S": [{"x": "v", "y": {}}]}"#)
            .and_then(Page::rows)
            .expect("rows");
        assert_eq!(opt_str(&rows[0].x, "x"), Ok(Some("v".into())));
        assert_eq!(
            n(r#"{"S": {"I": [1]}}"#),
            Err("S item 0 is a number, not an object".into())
        );
        assert_eq!(n(r#"{"S": "x"}"#), Err("S is a string, not a list".into()));
        assert_eq!(
            n(r#"{"S": {"I": true}}"#),
            Err("S.I is a boolean, not a list".into())
        );
        assert_eq!(n("[1]"), Ok(0), "not an object: no keys, no rows");
    }

    #[test]
    fn a_missing_set_is_empty_only_when_no_more_pages_follow() {
        assert_eq!(n(r#"{"RequestId": "x"}"#), Ok(0));
        assert_eq!(n(r#"{"NextToken": ""}"#), Ok(0));
        assert_eq!(n(r#"{"TotalCount": "0", "NextToken": "AA=="}"#), Ok(0));
        assert_eq!(n(r#"{"S": [{"x": 1}], "NextToken": "AA=="}"#), Ok(1));
        assert!(
            n(r#"{"NextToken": "AA=="}"#)
                .unwrap_err()
                .contains("S is missing")
        );
        assert!(n(r#"{"S": "x"}"#).is_err(), "a present set is checked");
    }

    #[test]
    fn paging_fields_are_read_and_checked() {
        let page = Page::<S>::read(br#"{"NextToken": "AA==", "TotalCount": "7", "PageSize": 50}"#)
            .expect("page");
        assert_eq!(
            page.meta(),
            Ok(Meta {
                next_token: Some("AA==".into()),
                total_count: Some(7),
                page_size: Some(50)
            })
        );
        let page = Page::<S>::read(br#"{"NextToken": []}"#).expect("page");
        assert!(page.meta().unwrap_err().contains("NextToken is a list"));
    }
}
