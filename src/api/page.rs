//! One answer page read into typed rows: the set of rows in every shape
//! the reference shows (an array, or an object wrapping the array or a
//! single object), the paging fields, and nothing else of the answer.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{FieldError, Key, Kind, Raw, opt_str, opt_u64};
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
            Err((false, kind)) => {
                return Err(FieldError::NotList {
                    set: outer.to_string(),
                    kind,
                });
            }
            Err((true, kind)) => {
                return Err(FieldError::NotList {
                    set: format!("{outer}.{}", N::INNER[0]),
                    kind,
                });
            }
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, e)| match e {
                Elem::Obj(t) => Ok(t),
                Elem::Not(kind) => Err(FieldError::NotObject {
                    set: outer,
                    index: i,
                    kind,
                }),
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

/// What paging reads from a page besides its rows. NextToken is checked
/// on every page; TotalCount and PageSize only where a walk relies on them
/// ([`Meta::counts`]): a token walk does not fail on a count it never uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub next_token: Option<String>,
    total_count: Result<Option<u64>, FieldError>,
    page_size: Result<Option<u64>, FieldError>,
}

impl Meta {
    /// TotalCount, checked, and PageSize, checked.
    pub fn counts(&self) -> Result<(Option<u64>, Option<u64>), FieldError> {
        Ok((self.total_count.clone()?, self.page_size.clone()?))
    }

    /// TotalCount as a hint (room to reserve): a broken one is none.
    pub fn total_hint(&self) -> Option<u64> {
        self.total_count.clone().ok().flatten()
    }
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
        serde_json::from_slice(body).map_err(|e| FieldError::Json(e.to_string()))
    }

    /// NextToken, checked; TotalCount and PageSize, read.
    pub fn meta(&self) -> Result<Meta, FieldError> {
        Ok(Meta {
            next_token: opt_str(&self.next_token, "NextToken")?,
            total_count: opt_u64(&self.total_count, "TotalCount"),
            page_size: opt_u64(&self.page_size, "PageSize"),
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
            Err(FieldError::MissingSet {
                set: R::OUTER[0],
                because: "a NextToken says more pages follow".into(),
            })
        }
    }
}

/// The rows of one page read by `parse` with no `id` twice (`what` names a
/// row in that error), and the page's paging fields.
pub fn unique_rows<'a, R: Rows, T>(
    body: &'a [u8],
    parse: impl Fn(R::Item<'a>) -> Result<T, FieldError>,
    id: impl Fn(&T) -> &str,
    what: &'static str,
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
    what: &'static str,
) -> Result<(), FieldError> {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(FieldError::Twice {
                what,
                key: k.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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

    fn n(json: &str) -> Result<usize, String> {
        Page::<S>::read(json.as_bytes())
            .and_then(Page::rows)
            .map(|v| v.len())
            .map_err(|e| e.to_string())
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
        let meta = page.meta().expect("meta");
        assert_eq!(meta.next_token.as_deref(), Some("AA=="));
        assert_eq!(meta.counts(), Ok((Some(7), Some(50))));
        // A broken count fails only the walks that read it.
        let page = Page::<S>::read(br#"{"NextToken": "AA==", "PageSize": -1}"#).expect("page");
        let meta = page.meta().expect("NextToken is fine");
        assert!(meta.counts().is_err());
        assert_eq!(meta.total_hint(), None);
        let page = Page::<S>::read(br#"{"NextToken": []}"#).expect("page");
        assert!(
            page.meta()
                .unwrap_err()
                .to_string()
                .contains("NextToken is a list")
        );
    }
}
