//! The one shape of a step of the default chain: look for its source (in
//! the environment, in files, or by probing the metadata service) and say
//! what was found, or why not. The chain and the sources both use it, so
//! neither imports the other for it.

use super::{BoxFuture, Context, CredentialSpec, CredentialsError};

/// What one step of the chain found: a source and where, in words (never a
/// value), or why it is not there.
#[derive(Debug)]
pub(crate) enum Detected {
    Found(CredentialSpec, String),
    Absent(String),
}

/// What a step returns. A source that is there but set up wrongly is an
/// error, not `Absent`: the next source would hide the mistake.
pub(crate) type Detection<'a> = BoxFuture<'a, Result<Detected, CredentialsError>>;

/// A step of the chain.
pub(crate) type Detect = for<'a> fn(&'a Context) -> Detection<'a>;

/// A step that is done without waiting (it reads only the environment and
/// files), as a [`Detection`].
pub(crate) fn now<'a>(r: Result<Detected, CredentialsError>) -> Detection<'a> {
    Box::pin(std::future::ready(r))
}
