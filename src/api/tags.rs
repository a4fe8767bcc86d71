//! Resource tags as DescribeInstances, DescribeManagedInstances and
//! DescribeActivations return them, and the label names they become.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, opt_shared, req_shared};
use super::page::{Names, Set, nested};
use crate::intern::intern;

/// The tags of one resource, sorted by key, each key once. Keys and values
/// are shared through the intern pool: a fleet repeats a handful of them.
/// A boxed slice, exactly as long as the tags: every instance has one.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tags(Box<[(Arc<str>, Arc<str>)]>);

impl Tags {
    /// From `(key, value)` pairs; a key given twice keeps its last value.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut v: Vec<(Arc<str>, Arc<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (intern(k.as_ref()), intern(v.as_ref())))
            .collect();
        // Stable sort, reversed first, so the last value of a key wins.
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Tags(v.into_boxed_slice())
    }

    /// The value of tag `key` (exact, case-sensitive match as in the API);
    /// `Some("")` for a tag whose value is empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The `Tags` of one item: `{"Tag": [..]}` (DescribeInstances) or a plain
/// array (the hybrid actions), each `{TagKey, TagValue}`.
pub struct TagNames;

impl Names for TagNames {
    const OUTER: &'static [&'static str] = &["Tags"];
    const INNER: &'static [&'static str] = &["Tag"];
}

/// One tag as an answer gives it.
#[derive(Deserialize)]
pub struct TagItem<'a> {
    #[serde(borrow, rename = "TagKey", alias = "Key")]
    key: Option<Raw<'a>>,
    #[serde(borrow, rename = "TagValue", alias = "Value")]
    value: Option<Raw<'a>>,
}

/// The `Tags` field of an item.
pub type RawTags<'a> = Option<Set<TagItem<'a>, TagNames>>;

/// The tags of one item. No tags key at all means no tags; a tag without a
/// key is an error.
pub fn parse_tags(tags: RawTags) -> Result<Tags, FieldError> {
    let tags = nested(tags)?;
    let mut pairs = Vec::with_capacity(tags.len());
    for (i, t) in tags.into_iter().enumerate() {
        let key = req_shared(&t.key, "TagKey").map_err(|e| e.within(format!("tag {i}")))?;
        let value = opt_shared(&t.value, "TagValue")
            .map_err(|e| e.within(format!("tag {key}")))?
            .unwrap_or_else(|| intern(""));
        pairs.push((key, value));
    }
    Ok(Tags::from_pairs(pairs))
}

/// The label name a tag key becomes: `tag_` + the key lower-cased, every
/// character outside `[a-z0-9_]` replaced by `_` (so `Cost Center` is
/// `tag_cost_center` and `部门` is `tag___`).
pub fn tag_label_name(key: &str) -> String {
    let mut out = String::with_capacity(4 + key.len());
    out.push_str("tag_");
    for c in key.chars().flat_map(char::to_lowercase) {
        out.push(
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            },
        );
    }
    out
}

/// Two tag keys that become the same label name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tag keys {first:?} and {second:?} both become the label {label}")]
pub struct LabelClash {
    pub first: String,
    pub second: String,
    pub label: String,
}

/// The label names of the chosen tag keys, in their order; two keys that
/// become the same label name are an error (one would hide the other).
pub fn tag_label_names<S: AsRef<str>>(keys: &[S]) -> Result<Vec<String>, LabelClash> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let k = k.as_ref();
        let name = tag_label_name(k);
        if let Some(other) = seen.insert(name.clone(), k) {
            return Err(LabelClash {
                first: other.to_string(),
                second: k.to_string(),
                label: name,
            });
        }
        out.push(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The tags of an item read from JSON.
    fn read(item: Value) -> Result<Tags, String> {
        #[derive(Deserialize)]
        struct Item<'a> {
            #[serde(borrow, rename = "Tags")]
            tags: RawTags<'a>,
        }
        let body = crate::api::body_of(&item);
        let item: Item = serde_json::from_slice(&body).expect("an object");
        parse_tags(item.tags).map_err(|e| e.to_string())
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(tag_label_name("env"), "tag_env");
        assert_eq!(tag_label_name("Team"), "tag_team");
        assert_eq!(tag_label_name("Cost Center"), "tag_cost_center");
        assert_eq!(
            tag_label_name("app.kubernetes.io/name"),
            "tag_app_kubernetes_io_name"
        );
        assert_eq!(tag_label_name("9lives"), "tag_9lives");
        assert_eq!(tag_label_name("UPPER_case-1"), "tag_upper_case_1");
        assert_eq!(tag_label_name("部门"), "tag___");
        assert_eq!(tag_label_name("Ärger"), "tag__rger");
        assert_eq!(tag_label_name(""), "tag_");
        assert_eq!(
            tag_label_names(&["env", "Cost Center"]),
            Ok(vec!["tag_env".to_string(), "tag_cost_center".to_string()])
        );
        let e = tag_label_names(&["cost-center", "Cost Center"]).unwrap_err();
        assert!(e.to_string().contains("tag_cost_center"), "{e}");
    }

    #[test]
    fn tags_in_both_shapes() {
        let wrapped = json!({"Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "owner", "TagValue": ""}]}});
        let t = read(wrapped).expect("parses");
        assert_eq!(t.get("env"), Some("prod"));
        assert_eq!(t.get("owner"), Some(""));
        assert_eq!(t.get("Env"), None, "keys match exactly");
        let plain = json!({"Tags": [{"TagKey": "b", "TagValue": 7}, {"TagKey": "a"}]});
        let t = read(plain).expect("parses");
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![("a", ""), ("b", "7")]);
        assert!(read(json!({})).expect("none").is_empty());
        assert!(read(json!({"Tags": {}})).expect("none").is_empty());
        let e = read(json!({"Tags": [{"TagValue": "x"}]})).unwrap_err();
        assert!(e.contains("tag 0: TagKey is missing"), "{e}");
        assert!(read(json!({"Tags": [[1]]})).is_err());
    }

    #[test]
    fn a_key_twice_keeps_the_last_value() {
        let t = Tags::from_pairs([("k", "1"), ("a", "x"), ("k", "2")]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("k"), Some("2"));
    }
}
