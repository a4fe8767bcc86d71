//! Basic auth against the web config's bcrypt hashes, as exporter-toolkit
//! does it: at most one bcrypt check at a time, and recent answers (wrong
//! ones too) remembered by a salted hash of user, password and bcrypt hash,
//! so a flood of passwords costs one core at most and a scraper whose
//! password was checked once never waits behind it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The challenge of a 401.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"cloud-assistant-exporter\"";

/// Wrong answers remembered at most (the oldest go first); right ones are
/// kept apart, one per user, so wrong ones can never push them out.
const REFUSED_CACHED: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// The password could not be checked in time: the check queue is full
    /// of other requests' passwords.
    Busy,
}

type Digest32 = [u8; 32];

#[derive(Debug, Default)]
struct Refused {
    set: HashSet<Digest32>,
    order: VecDeque<Digest32>,
}

impl Refused {
    fn insert(&mut self, d: Digest32) {
        if self.set.insert(d) {
            self.order.push_back(d);
            if self.order.len() > REFUSED_CACHED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The checker of one web config source.
pub struct Authenticator {
    /// Random per process: the digests say nothing outside it.
    salt: [u8; 32],
    /// User → digest of the password bcrypt last accepted for it.
    accepted: Mutex<HashMap<String, Digest32>>,
    refused: Mutex<Refused>,
    /// One bcrypt at a time (exporter-toolkit's `bcryptMtx`).
    bcrypt: Arc<tokio::sync::Mutex<()>>,
    /// How long a request waits for its turn before it gets 503.
    wait: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(wait: Duration) -> Arc<Self> {
        let mut salt = [0u8; 32];
        salt[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        salt[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Arc::new(Authenticator {
            salt,
            accepted: Mutex::new(HashMap::new()),
            refused: Mutex::new(Refused::default()),
            bcrypt: Arc::default(),
            wait,
        })
    }

    /// Forgets every answer (the users changed).
    pub fn clear(&self) {
        lock(&self.accepted).clear();
        let mut r = lock(&self.refused);
        r.set.clear();
        r.order.clear();
    }

    fn digest(&self, user: &str, password: &[u8], hash: &str) -> Digest32 {
        let mut h = Sha256::new();
        for part in [&self.salt[..], user.as_bytes(), password, hash.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    fn cached(&self, user: &str, d: &Digest32) -> Option<Verdict> {
        if let Some(known) = lock(&self.accepted).get(user)
            && bool::from(known.ct_eq(d))
        {
            return Some(Verdict::Accepted);
        }
        lock(&self.refused)
            .set
            .contains(d)
            .then_some(Verdict::Refused)
    }

    fn remember(&self, user: &str, d: Digest32, ok: bool) {
        if ok {
            lock(&self.accepted).insert(user.to_string(), d);
        } else {
            lock(&self.refused).insert(d);
        }
    }

    /// Checks an `Authorization: Basic` header against `users` (user →
    /// bcrypt hash).
    pub async fn check(
        self: &Arc<Self>,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> Verdict {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Verdict::Refused;
        };
        let Some((_, first_hash)) = users.iter().next() else {
            return Verdict::Accepted;
        };
        // An unknown user still pays one bcrypt (against a real hash of the
        // same cost), so timing does not tell which users exist.
        let known = users.get(&user);
        let hash = known.unwrap_or(first_hash).clone();
        let d = self.digest(&user, &password, &hash);
        if let Some(v) = self.cached(&user, &d) {
            return v;
        }
        let Ok(turn) = tokio::time::timeout(self.wait, Arc::clone(&self.bcrypt).lock_owned()).await
        else {
            return Verdict::Busy;
        };
        // Another request may have checked the same password meanwhile.
        if let Some(v) = self.cached(&user, &d) {
            return v;
        }
        let is_known = known.is_some();
        let me = Arc::clone(self);
        // On a thread of its own at the lower priority (`low_priority`), holding the
        // turn, so the collection wins the CPU over a password flood and a
        // client that hangs up does not let a second check start early.
        let ok = crate::low_priority::run("bcrypt", move || {
            let ok = bcrypt::verify(&password, &hash).unwrap_or(false) && is_known;
            me.remember(&user, d, ok);
            drop(turn);
            ok
        })
        .await
        .unwrap_or(false);
        if ok {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these; a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(v: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let v = v.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        ))
        .expect("header")
    }

    #[test]
    fn basic_auth_header_parsing() {
        assert_eq!(
            parse_basic(&basic("alice:pa:ss")),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(parse_basic(&basic("alice")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
    }

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "alice".to_string(),
            bcrypt::hash("secret", 4).expect("hash"),
        )])
    }

    #[tokio::test]
    async fn passwords_are_checked_and_both_answers_cached() {
        let a = Authenticator::new(Duration::from_secs(5));
        let u = users();
        let check = |s: &str| {
            let (a, u, h) = (Arc::clone(&a), u.clone(), basic(s));
            async move { a.check(&u, Some(&h)).await }
        };
        assert_eq!(check("alice:secret").await, Verdict::Accepted);
        assert_eq!(lock(&a.accepted).len(), 1);
        assert_eq!(check("alice:secret").await, Verdict::Accepted);
        assert_eq!(check("alice:wrong").await, Verdict::Refused);
        assert_eq!(check("bob:secret").await, Verdict::Refused);
        assert_eq!(lock(&a.refused).set.len(), 2, "wrong answers are cached");
        assert_eq!(a.check(&u, None).await, Verdict::Refused);
        // Cached answers need no turn: with the turn taken, they still come.
        let _turn = Arc::clone(&a.bcrypt).lock_owned().await;
        assert_eq!(check("alice:secret").await, Verdict::Accepted);
        assert_eq!(check("alice:wrong").await, Verdict::Refused);
        a.clear();
        assert!(lock(&a.accepted).is_empty() && lock(&a.refused).set.is_empty());
    }

    #[tokio::test]
    async fn a_new_password_waits_its_turn_a_bounded_time() {
        let a = Authenticator::new(Duration::from_millis(100));
        let _turn = Arc::clone(&a.bcrypt).lock_owned().await;
        let t0 = std::time::Instant::now();
        assert_eq!(
            a.check(&users(), Some(&basic("alice:new"))).await,
            Verdict::Busy
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_cache_holds_no_password_and_forgets_the_oldest_wrong_ones() {
        let a = Authenticator::new(Duration::from_secs(1));
        let d = a.digest("alice", b"hunter2", "$2b$04$x");
        assert_ne!(
            d,
            Authenticator::new(Duration::from_secs(1)).digest("alice", b"hunter2", "$2b$04$x"),
            "salted per process"
        );
        for i in 0..(REFUSED_CACHED + 10) {
            a.remember(
                "mallory",
                a.digest("mallory", i.to_string().as_bytes(), "h"),
                false,
            );
        }
        let r = lock(&a.refused);
        assert_eq!(r.set.len(), REFUSED_CACHED);
        assert!(!r.set.contains(&a.digest("mallory", b"0", "h")));
        assert!(r.set.contains(&a.digest("mallory", b"20", "h")));
    }
}
