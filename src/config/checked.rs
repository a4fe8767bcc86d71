//! Values of a config file checked while they are read. The check runs
//! inside the parser's visit of the value, so the YAML parser puts its own
//! line on the error, and serde adds the path of the key
//! (`accounts[1].credentials.role_arn`): no second pass to find where a
//! problem is.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::validate;

/// Why a value of the file is refused; serde puts the key's path and the
/// parser its line in front.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    #[error("has white space in it")]
    WhiteSpace,
    #[error("must be a JSON policy document (an object)")]
    Policy,
    #[error(
        "must be a number of seconds from {} to {}",
        DURATION_RANGE.start(),
        DURATION_RANGE.end()
    )]
    Seconds,
}

/// A rule a string value must pass.
pub trait Rule {
    fn check(s: &str) -> Result<(), CheckError>;
}

/// Declares a [`Rule`] from a function of `&str`.
macro_rules! rule {
    ($name:ident, $check:expr) => {
        pub struct $name;
        impl $crate::config::checked::Rule for $name {
            fn check(s: &str) -> Result<(), $crate::config::checked::CheckError> {
                $check(s).map_err($crate::config::checked::CheckError::from)
            }
        }
    };
}

/// A non-empty, trimmed string (a number is taken as its digits) that
/// passes `R`.
pub struct Checked<R>(String, PhantomData<R>);

impl<R> Checked<R> {
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<'de, R: Rule> Deserialize<'de> for Checked<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(Text::<R>(PhantomData))?;
        Ok(Checked(s, PhantomData))
    }
}

/// Strings and integers as text, checked by `R`; anything else is a type
/// error.
struct Text<R>(PhantomData<R>);

impl<R: Rule> Text<R> {
    fn checked<E: de::Error>(s: String) -> Result<String, E> {
        if s.is_empty() {
            return Err(E::custom("is empty"));
        }
        R::check(&s).map_err(E::custom)?;
        Ok(s)
    }
}

impl<R: Rule> Visitor<'_> for Text<R> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Self::checked(v.trim().to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Self::checked(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Self::checked(v.to_string())
    }
}

/// Why a key is refused whatever its value.
pub trait Refusal {
    fn message() -> String;
}

/// A key that is always an error (a secret written inline), at the value's
/// line, without ever echoing the value.
pub struct Refused<R>(PhantomData<R>);

impl<'de, R: Refusal> Deserialize<'de> for Refused<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Refuse::<R>(PhantomData))
    }
}

struct Refuse<R>(PhantomData<R>);

macro_rules! refuse {
    ($($method:ident($t:ty)),*) => {$(
        fn $method<E: de::Error>(self, _: $t) -> Result<Refused<R>, E> {
            Err(E::custom(R::message()))
        }
    )*};
}

impl<'de, R: Refusal> Visitor<'de> for Refuse<R> {
    type Value = Refused<R>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("no value")
    }
    refuse!(
        visit_str(&str),
        visit_bytes(&[u8]),
        visit_i64(i64),
        visit_u64(u64),
        visit_i128(i128),
        visit_u128(u128),
        visit_f64(f64),
        visit_bool(bool)
    );
    fn visit_unit<E: de::Error>(self) -> Result<Refused<R>, E> {
        Err(E::custom(R::message()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Refused<R>, A::Error> {
        Err(de::Error::custom(R::message()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Refused<R>, A::Error> {
        Err(de::Error::custom(R::message()))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Refused<R>, A::Error> {
        Err(de::Error::custom(R::message()))
    }
}

/// A non-empty list of distinct values that each pass `R`.
pub struct CheckedList<R>(Vec<String>, PhantomData<R>);

impl<R> CheckedList<R> {
    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

impl<'de, R: Rule> Deserialize<'de> for CheckedList<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ListVisitor::<R>(PhantomData))
    }
}

struct ListVisitor<R>(PhantomData<R>);

impl<'de, R: Rule> Visitor<'de> for ListVisitor<R> {
    type Value = CheckedList<R>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list such as [cn-hangzhou, cn-shanghai]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CheckedList<R>, A::Error> {
        let mut out: Vec<String> = Vec::new();
        while let Some(v) = seq.next_element::<Checked<R>>()? {
            let v = v.into_inner();
            if out.contains(&v) {
                return Err(de::Error::custom(format!("{v:?} is listed twice")));
            }
            out.push(v);
        }
        if out.is_empty() {
            return Err(de::Error::custom(
                "is an empty list; leave it out for the default",
            ));
        }
        Ok(CheckedList(out, PhantomData))
    }
}

// The rules of the accounts file (the checks themselves live in `validate`).

rule!(NonEmpty, |_: &str| Ok::<(), CheckError>(()));
rule!(AccountName, validate::account_name);
rule!(Endpoint, validate::endpoint_template);
rule!(RegionId, validate::region_id);
rule!(RoleArn, validate::role_arn);
rule!(OidcProviderArn, validate::oidc_provider_arn);
rule!(SessionName, validate::session_name);
rule!(KeyId, |s: &str| {
    if s.contains(char::is_whitespace) {
        Err(CheckError::WhiteSpace)
    } else {
        Ok(())
    }
});
rule!(
    Policy,
    |s: &str| match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(CheckError::Policy),
    }
);

/// STS accepts 900 s up to the role's maximum session, at most 12 hours.
pub const DURATION_RANGE: std::ops::RangeInclusive<u32> = 900..=43200;

/// A session length STS takes, in seconds: a number (or its digits as a
/// string), checked as it is read and kept as the number.
pub struct Seconds(pub u32);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn checked<E: de::Error>(n: Option<u32>) -> Result<Seconds, E> {
                match n {
                    Some(n) if DURATION_RANGE.contains(&n) => Ok(Seconds(n)),
                    _ => Err(E::custom(CheckError::Seconds)),
                }
            }
        }
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                Self::checked(v.trim().parse().ok())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Self::checked(u32::try_from(v).ok())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Self::checked(u32::try_from(v).ok())
            }
        }
        d.deserialize_any(V)
    }
}

/// Secrets written inline name the key that takes their file instead.
macro_rules! inline_secret {
    ($name:ident, $file_key:literal) => {
        pub struct $name;
        impl Refusal for $name {
            fn message() -> String {
                format!(
                    "secrets are never written in this file; put it in a file of its own and name that with {:?}",
                    $file_key
                )
            }
        }
    };
}
inline_secret!(InlineSecretKey, "access_key_secret_file");
inline_secret!(InlineToken, "security_token_file");
inline_secret!(InlineOidcToken, "oidc_token_file");
