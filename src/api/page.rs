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

/// What one place of the answer makes of each shape a JSON value can
/// have: an object, a list, or a scalar (known by its kind). One visitor,
/// [`ByShape`], serves every such place.
trait Shape<'de>: Sized {
    type Value;
    const EXPECTING: &'static str;
    fn object<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error>;
    fn other(self, kind: &'static str) -> Self::Value;
    /// A list is, unless the place says otherwise, one more wrong kind.
    fn list<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.other(Kind::LIST))
    }
}

struct ByShape<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for ByShape<S> {
    type Value = S::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(S::EXPECTING)
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<S::Value, A::Error> {
        self.0.object(a)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<S::Value, A::Error> {
        self.0.list(a)
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::BOOL))
    }
    fn visit_i64<E>(self, _: i64) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::NUM))
    }
    fn visit_u64<E>(self, _: u64) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::NUM))
    }
    fn visit_f64<E>(self, _: f64) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::NUM))
    }
    fn visit_str<E>(self, _: &str) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::STR))
    }
    fn visit_unit<E>(self) -> Result<S::Value, E> {
        Ok(self.0.other(Kind::NULL))
    }
}

/// One item of a set: an object read as `T`, or the kind of what stood in
/// its place.
enum Elem<T> {
    Obj(T),
    Not(&'static str),
}

struct ElemShape<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Shape<'de> for ElemShape<T> {
    type Value = Elem<T>;
    const EXPECTING: &'static str = "an object";
    fn object<A: MapAccess<'de>>(self, a: A) -> Result<Elem<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(a)).map(Elem::Obj)
    }
    fn other(self, kind: &'static str) -> Elem<T> {
        Elem::Not(kind)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByShape(ElemShape(PhantomData)))
    }
}

/// The items of a set, or the kind of what stood in the place of its list
/// (`true` when that place is the inner key of a wrapping object).
type Items<T> = Result<Vec<Elem<T>>, (bool, &'static str)>;

/// The list a set wraps: an array, or a single object.
struct InnerShape<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Shape<'de> for InnerShape<T> {
    type Value = Items<T>;
    const EXPECTING: &'static str = "a list";
    fn object<A: MapAccess<'de>>(self, a: A) -> Result<Items<T>, A::Error> {
        let one = T::deserialize(de::value::MapAccessDeserializer::new(a))?;
        Ok(Ok(vec![Elem::Obj(one)]))
    }
    fn list<A: SeqAccess<'de>>(self, a: A) -> Result<Items<T>, A::Error> {
        elems(a).map(Ok)
    }
    fn other(self, kind: &'static str) -> Items<T> {
        Err((true, kind))
    }
}

/// [`InnerShape`] as a value of its own, to read under the inner key.
struct Inner<T>(Items<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Inner<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByShape(InnerShape(PhantomData)))
            .map(Inner)
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
    items: Items<T>,
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

/// The set at its own key: an array, or an object wrapping the list.
struct SetShape<T, N>(PhantomData<(T, N)>);

impl<'de, T: Deserialize<'de>, N: Names> Shape<'de> for SetShape<T, N> {
    type Value = Items<T>;
    const EXPECTING: &'static str = "a list";
    fn object<A: MapAccess<'de>>(self, mut a: A) -> Result<Items<T>, A::Error> {
        let mut found: Option<Items<T>> = None;
        while let Some(Key(k)) = a.next_key()? {
            if found.is_none() && N::INNER.contains(&k.as_ref()) {
                // `null` under the inner key is as good as no key.
                found = a.next_value::<Option<Inner<T>>>()?.map(|i| i.0);
            } else {
                a.next_value::<IgnoredAny>()?;
            }
        }
        // `{"XSet": {}}` is how an empty set is written.
        Ok(found.unwrap_or_else(|| Ok(Vec::new())))
    }
    fn list<A: SeqAccess<'de>>(self, a: A) -> Result<Items<T>, A::Error> {
        elems(a).map(Ok)
    }
    fn other(self, kind: &'static str) -> Items<T> {
        Err((false, kind))
    }
}

impl<'de, T: Deserialize<'de>, N: Names> Deserialize<'de> for Set<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Set {
            items: d.deserialize_any(ByShape(SetShape::<T, N>(PhantomData)))?,
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

/// The page itself: an object of which only the set and the paging keys
/// are kept.
struct PageShape<R>(PhantomData<R>);

impl<'de, R: Rows> Shape<'de> for PageShape<R> {
    type Value = Page<'de, R>;
    const EXPECTING: &'static str = "an object";
    fn object<A: MapAccess<'de>>(self, mut a: A) -> Result<Page<'de, R>, A::Error> {
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
    // Anything but an object has none of the keys (the client refuses such
    // an answer before it gets here).
    fn other(self, _: &'static str) -> Page<'de, R> {
        Page::empty()
    }
}

impl<'de, R: Rows> Deserialize<'de> for Page<'de, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByShape(PageShape(PhantomData)))
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
    /// UTF-8 is checked once for the whole body: read from bytes, the
    /// parser would check every string it lends out again, one by one.
    pub fn read(body: &'a [u8]) -> Result<Self, FieldError> {
        let text = std::str::from_utf8(body).map_err(|e| FieldError::Json(e.to_string()))?;
        serde_json::from_str(text).map_err(|e| FieldError::Json(e.to_string()))
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
    parse: impl FnMut(R::Item<'a>) -> Result<T, FieldError>,
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
    let keys = keys.into_iter();
    let mut seen = std::collections::HashSet::with_capacity(keys.size_hint().0);
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
