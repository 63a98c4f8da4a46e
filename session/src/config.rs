//! Layer configuration: expiry, cookie attributes, keys, and the checks that
//! reject a contradictory configuration when the layer is built.

use std::time::{Duration, SystemTime};

use cookie::{Key, SameSite};

use crate::codec::{CodecChoice, FIRST_CUSTOM_TAG};

/// The default inactivity limit: 30 days.
pub const DEFAULT_INACTIVITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest expiry accepted: 400 days, the longest cookie lifetime
/// browsers honour.
pub const MAX_EXPIRY: Duration = Duration::from_secs(400 * 24 * 60 * 60);
/// The shortest inactivity limit `set_expiry` keeps: stores keep expiries
/// to the second, so a shorter one could end the session before the
/// response reaches the client.
const MIN_CHOSEN_INACTIVITY: Duration = Duration::from_secs(1);
/// The default time limit of one store call.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);
/// Sliding expiry refreshes a session at most this often.
const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Stores keep expiries to the millisecond or the second; differences below
/// this are rounding, not a change.
const STORE_PRECISION: Duration = Duration::from_secs(1);
/// How far the clocks of two servers sharing a store may disagree. A stored
/// expiry further ahead than this (and than the refresh interval) comes from
/// a longer limit, not from another server's clock, and is moved back.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// When a session expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// After this long without a request that uses the session (sliding).
    /// The expiry moves at most once a minute (or once a tenth of the
    /// duration, if that is shorter): a write within that interval keeps the
    /// stored expiry and sends no `Set-Cookie`, and a read that is due
    /// refreshes the expiry without rewriting any field.
    OnInactivity(Duration),
    /// At a fixed time.
    AtDateTime(SystemTime),
    /// When the browser session ends: the cookie has no `Max-Age`. The store
    /// still expires the session after [`DEFAULT_INACTIVITY`] without use.
    OnSessionEnd,
}

impl Default for Expiry {
    fn default() -> Self {
        Self::OnInactivity(DEFAULT_INACTIVITY)
    }
}

impl Expiry {
    /// The store expiry for a session used `now`, capped by the absolute
    /// deadline.
    pub(crate) fn expires_at(&self, now: SystemTime, deadline: Option<SystemTime>) -> SystemTime {
        let at = match *self {
            Self::OnInactivity(limit) => now.checked_add(limit).unwrap_or(now),
            Self::AtDateTime(at) => at,
            Self::OnSessionEnd => now.checked_add(DEFAULT_INACTIVITY).unwrap_or(now),
        };
        deadline.map_or(at, |deadline| at.min(deadline))
    }

    /// Whether a session whose stored expiry is `stored` should move to
    /// `fresh` (what [`expires_at`](Self::expires_at) gives now). A sliding
    /// expiry moves once per refresh interval, not on every request, so
    /// most requests neither touch the store's expiry nor send a cookie; a
    /// fixed date moves only when the configured date changed.
    pub(crate) fn refresh_due(&self, fresh: SystemTime, stored: SystemTime) -> bool {
        let limit = match *self {
            Self::OnInactivity(limit) => limit,
            Self::OnSessionEnd => DEFAULT_INACTIVITY,
            Self::AtDateTime(_) => {
                let drift = match fresh.duration_since(stored) {
                    Ok(ahead) => ahead,
                    Err(behind) => behind.duration(),
                };
                return drift >= STORE_PRECISION;
            }
        };
        let interval = (limit / 10).min(MAX_REFRESH_INTERVAL);
        match fresh.duration_since(stored) {
            Ok(ahead) => ahead >= interval,
            // Back only past any clock skew between servers, so that two
            // servers whose clocks differ do not move it to and fro; a
            // shortened limit still applies.
            Err(behind) => behind.duration() >= interval.max(CLOCK_SKEW),
        }
    }

    /// The expiry a handler's `set_expiry` keeps, chosen at `now`: an
    /// inactivity limit within [`MIN_CHOSEN_INACTIVITY`] and [`MAX_EXPIRY`],
    /// a date at most `MAX_EXPIRY` ahead (a past date stays: it ends the
    /// session, as asked). A zero limit would end the session at once, and
    /// a longer one would be stored and then refused by every later load.
    pub(crate) fn clamped(self, now: SystemTime) -> Self {
        let clamped = match self {
            Self::OnInactivity(limit) => {
                Self::OnInactivity(limit.clamp(MIN_CHOSEN_INACTIVITY, MAX_EXPIRY))
            }
            Self::AtDateTime(at) => match now.checked_add(MAX_EXPIRY) {
                Some(latest) if at > latest => Self::AtDateTime(latest),
                _ => self,
            },
            Self::OnSessionEnd => self,
        };
        if clamped != self {
            tracing::debug!(asked = ?self, kept = ?clamped, "set_expiry value clamped");
        }
        clamped
    }

    /// Checks the expiry as configured at `now`. A date is checked against
    /// the moment it was configured, never again: once it passes, sessions
    /// end (see [`Config::lifetime`]), the application keeps running.
    fn check(&self, now: SystemTime) -> Result<(), ConfigError> {
        match *self {
            Self::OnInactivity(limit) if limit.is_zero() => Err(ConfigError::ZeroExpiry),
            Self::OnInactivity(limit) if limit > MAX_EXPIRY => {
                Err(ConfigError::ExpiryTooLong(limit))
            }
            Self::AtDateTime(at) => match at.duration_since(now) {
                Err(_) => Err(ConfigError::ExpiryInPast),
                Ok(ahead) if ahead > MAX_EXPIRY => Err(ConfigError::ExpiryTooLong(ahead)),
                Ok(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// A configuration the layer refuses to run with. Reported by
/// [`SessionLayer::validate`](crate::SessionLayer::validate), and by a panic
/// when the layer is applied to a service. Every check runs once, when the
/// builder method is called: an `AtDateTime` that was in the future then and
/// has passed since is not an error (the sessions it governs have ended).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or has characters a cookie name cannot hold.
    #[error(
        "cookie name {0:?} is not a valid cookie name (use letters, digits and !#$%&'*+-.^_`|~)"
    )]
    InvalidCookieName(String),
    /// A `__Host-` or `__Secure-` cookie without `Secure`.
    #[error(
        "cookie name {0:?} requires the Secure attribute: remove `with_secure(false)` or rename the cookie"
    )]
    PrefixRequiresSecure(String),
    /// A `__Host-` cookie with a domain.
    #[error(
        "cookie name {0:?} (prefix __Host-) forbids a Domain: remove `with_domain` or use the __Secure- prefix"
    )]
    HostPrefixWithDomain(String),
    /// A `__Host-` cookie with a path other than `/`.
    #[error("cookie name {0:?} (prefix __Host-) requires Path=/, not {1:?}")]
    HostPrefixWithPath(String, String),
    /// `SameSite=None` without `Secure`, which browsers reject.
    #[error("SameSite=None requires Secure: browsers drop such cookies; call `with_secure(true)`")]
    SameSiteNoneWithoutSecure,
    /// A zero expiry or absolute timeout.
    #[error("a session expiry of zero would end every session at once")]
    ZeroExpiry,
    /// An `AtDateTime` expiry already past when it was configured.
    #[error("the expiry date was already past when it was configured")]
    ExpiryInPast,
    /// An expiry longer than [`MAX_EXPIRY`].
    #[error("an expiry of {0:?} is longer than the 400 days browsers keep a cookie")]
    ExpiryTooLong(Duration),
    /// `with_signing_keys` with no key.
    #[error("with_signing_keys needs at least one key")]
    NoSigningKeys,
    /// A path or domain with characters a cookie attribute cannot hold.
    #[error("cookie {0} {1:?} has characters a cookie attribute cannot hold")]
    InvalidAttribute(&'static str, String),
    /// A codec of the application's uses a tag reserved for the built-in codecs.
    #[error(
        "codec tag {0:#04x} is reserved for the built-in codecs; a codec of your own returns a tag from 0x20 up"
    )]
    ReservedCodecTag(u8),
    /// `with_store_timeout` of zero.
    #[error(
        "a store timeout of zero would fail every store call: give `with_store_timeout` a positive duration"
    )]
    ZeroStoreTimeout,
}

/// Everything the layer needs per request, shared by all requests.
#[derive(Clone)]
pub(crate) struct Config {
    pub cookie_name: String,
    /// Set through [`set_expiry`](Self::set_expiry), which checks it.
    pub expiry: Expiry,
    /// What `set_expiry` found wrong with `expiry`.
    pub expiry_error: Option<ConfigError>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
    pub path: String,
    pub domain: Option<String>,
    pub keys: Vec<Key>,
    /// `with_signing_keys` was called with an empty list.
    pub keys_missing: bool,
    pub absolute_timeout: Option<Duration>,
    pub codec: CodecChoice,
    pub store_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cookie_name: "session".to_owned(),
            expiry: Expiry::default(),
            expiry_error: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            keys: Vec::new(),
            keys_missing: false,
            absolute_timeout: None,
            codec: CodecChoice::default(),
            store_timeout: DEFAULT_STORE_TIMEOUT,
        }
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_attribute_value(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

impl Config {
    pub(crate) fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// Sets the expiry, checking it against the present moment now rather
    /// than on every later check: `check` must give the same answer for the
    /// life of the layer, or a layer applied per request or per connection
    /// would start failing when the date passes.
    pub(crate) fn set_expiry(&mut self, expiry: Expiry) {
        self.expiry = expiry;
        self.expiry_error = expiry.check(SystemTime::now()).err();
    }

    /// The lifetime a cookie issued `now` for a session expiring at
    /// `expires_at` may have: whole seconds, rounded down so that the cookie
    /// never outlives the session. `None` when less than a second is left:
    /// such a session is as good as ended.
    pub(crate) fn lifetime(expires_at: SystemTime, now: SystemTime) -> Option<u64> {
        let seconds = expires_at.duration_since(now).ok()?.as_secs();
        (seconds > 0).then_some(seconds)
    }

    /// Checks the configuration for contradictions. Nothing here depends on
    /// the time it runs at.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let name = &self.cookie_name;
        if !is_token(name) {
            return Err(ConfigError::InvalidCookieName(name.clone()));
        }
        let host = name.starts_with("__Host-");
        if (host || name.starts_with("__Secure-")) && !self.secure {
            return Err(ConfigError::PrefixRequiresSecure(name.clone()));
        }
        if host && self.domain.is_some() {
            return Err(ConfigError::HostPrefixWithDomain(name.clone()));
        }
        if host && self.path != "/" {
            return Err(ConfigError::HostPrefixWithPath(
                name.clone(),
                self.path.clone(),
            ));
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if !is_attribute_value(&self.path) || !self.path.starts_with('/') {
            return Err(ConfigError::InvalidAttribute("path", self.path.clone()));
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty() || !is_attribute_value(domain))
        {
            return Err(ConfigError::InvalidAttribute("domain", domain.clone()));
        }
        if self.keys_missing {
            return Err(ConfigError::NoSigningKeys);
        }
        if let Some(error) = &self.expiry_error {
            return Err(error.clone());
        }
        if let Some(timeout) = self.absolute_timeout {
            Expiry::OnInactivity(timeout).check(SystemTime::UNIX_EPOCH)?;
        }
        if let CodecChoice::Custom(codec) = &self.codec
            && codec.tag() < FIRST_CUSTOM_TAG
        {
            return Err(ConfigError::ReservedCodecTag(codec.tag()));
        }
        if self.store_timeout.is_zero() {
            return Err(ConfigError::ZeroStoreTimeout);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
        let mut config = Config::default();
        change(&mut config);
        config.check()
    }

    #[test]
    fn chosen_expiries_are_clamped_to_what_loads_accept() {
        let now = SystemTime::now();
        let inactivity = |secs| Expiry::OnInactivity(Duration::from_secs(secs));
        for (asked, kept) in [
            (Expiry::OnInactivity(Duration::ZERO), inactivity(1)),
            (
                Expiry::OnInactivity(Duration::from_millis(999)),
                inactivity(1),
            ),
            (inactivity(1), inactivity(1)),
            (inactivity(3600), inactivity(3600)),
            (
                Expiry::OnInactivity(MAX_EXPIRY),
                Expiry::OnInactivity(MAX_EXPIRY),
            ),
            (
                Expiry::OnInactivity(MAX_EXPIRY + Duration::from_millis(1)),
                Expiry::OnInactivity(MAX_EXPIRY),
            ),
            (
                Expiry::OnInactivity(Duration::MAX),
                Expiry::OnInactivity(MAX_EXPIRY),
            ),
            (Expiry::OnSessionEnd, Expiry::OnSessionEnd),
            (
                Expiry::AtDateTime(now + MAX_EXPIRY * 2),
                Expiry::AtDateTime(now + MAX_EXPIRY),
            ),
            (
                Expiry::AtDateTime(now + MAX_EXPIRY),
                Expiry::AtDateTime(now + MAX_EXPIRY),
            ),
            // A past date is kept: it ends the session, as asked.
            (
                Expiry::AtDateTime(now - Duration::from_secs(5)),
                Expiry::AtDateTime(now - Duration::from_secs(5)),
            ),
        ] {
            assert_eq!(asked.clamped(now), kept, "{asked:?}");
        }
        // What is kept is what a later load reads back, and what a layer
        // would accept as its own expiry.
        for asked in [
            Expiry::OnInactivity(Duration::ZERO),
            Expiry::OnInactivity(Duration::MAX),
            Expiry::AtDateTime(now + MAX_EXPIRY * 3),
        ] {
            let kept = asked.clamped(now);
            assert!(kept.check(now).is_ok(), "{asked:?}");
            let stored = crate::remembered::encode(&kept);
            assert!(crate::remembered::decode(&stored).is_some(), "{asked:?}");
            // Never "overflows to now": the session outlives the request.
            assert!(kept.expires_at(now, None) > now, "{asked:?}");
        }
    }

    #[test]
    fn defaults_are_valid_and_secure() {
        let config = Config::default();
        assert!(config.check().is_ok());
        assert!(config.secure && config.http_only);
        assert_eq!(config.same_site, SameSite::Lax);
    }

    #[test]
    fn contradictions_are_rejected() {
        assert!(matches!(
            with(|c| c.cookie_name = "__Host-s".into()),
            Ok(())
        ));
        assert!(matches!(
            with(|c| {
                c.cookie_name = "__Host-s".into();
                c.secure = false;
            }),
            Err(ConfigError::PrefixRequiresSecure(_))
        ));
        assert!(matches!(
            with(|c| {
                c.cookie_name = "__Secure-s".into();
                c.secure = false;
            }),
            Err(ConfigError::PrefixRequiresSecure(_))
        ));
        assert!(matches!(
            with(|c| {
                c.cookie_name = "__Host-s".into();
                c.domain = Some("example.com".into());
            }),
            Err(ConfigError::HostPrefixWithDomain(_))
        ));
        assert!(matches!(
            with(|c| {
                c.cookie_name = "__Host-s".into();
                c.path = "/app".into();
            }),
            Err(ConfigError::HostPrefixWithPath(..))
        ));
        assert!(matches!(
            with(|c| {
                c.same_site = SameSite::None;
                c.secure = false;
            }),
            Err(ConfigError::SameSiteNoneWithoutSecure)
        ));
        assert!(matches!(
            with(|c| c.cookie_name = "a b".into()),
            Err(ConfigError::InvalidCookieName(_))
        ));
        assert!(matches!(
            with(|c| c.cookie_name = String::new()),
            Err(ConfigError::InvalidCookieName(_))
        ));
        assert!(matches!(
            with(|c| c.path = "/a;b".into()),
            Err(ConfigError::InvalidAttribute(..))
        ));
        assert!(matches!(
            with(|c| c.set_expiry(Expiry::OnInactivity(Duration::ZERO))),
            Err(ConfigError::ZeroExpiry)
        ));
        assert!(matches!(
            with(|c| c.set_expiry(Expiry::OnInactivity(Duration::MAX))),
            Err(ConfigError::ExpiryTooLong(_))
        ));
        assert!(matches!(
            with(|c| c.set_expiry(Expiry::AtDateTime(SystemTime::UNIX_EPOCH))),
            Err(ConfigError::ExpiryInPast)
        ));
        assert!(matches!(
            with(|c| c.set_expiry(Expiry::AtDateTime(SystemTime::now() + MAX_EXPIRY * 2))),
            Err(ConfigError::ExpiryTooLong(_))
        ));
        assert!(matches!(
            with(|c| c.absolute_timeout = Some(Duration::ZERO)),
            Err(ConfigError::ZeroExpiry)
        ));
        assert_eq!(
            with(|c| c.store_timeout = Duration::ZERO),
            Err(ConfigError::ZeroStoreTimeout)
        );
    }

    #[test]
    fn refresh_is_due_at_most_once_per_interval() {
        let expiry = Expiry::OnInactivity(Duration::from_secs(3600));
        let now = SystemTime::now();
        let fresh = expiry.expires_at(now, None);
        let minute = Duration::from_secs(60);
        assert!(!expiry.refresh_due(fresh, fresh));
        assert!(!expiry.refresh_due(fresh, fresh - Duration::from_secs(59)));
        assert!(expiry.refresh_due(fresh, fresh - minute));
        // A stored expiry further out than the limit allows (the limit was
        // shortened) moves back, but not for what clock skew explains.
        assert!(!expiry.refresh_due(fresh, fresh + minute));
        assert!(expiry.refresh_due(fresh, fresh + CLOCK_SKEW));
        // Capped by the absolute deadline, the expiry stops moving.
        let deadline = now + minute;
        let capped = expiry.expires_at(now + minute, Some(deadline));
        assert!(!expiry.refresh_due(capped, deadline));
        // A fixed date moves only when it changed, not for a store that
        // keeps milliseconds or seconds.
        let fixed = Expiry::AtDateTime(fresh);
        assert!(!fixed.refresh_due(fresh, fresh));
        assert!(!fixed.refresh_due(fresh, fresh - Duration::from_millis(999)));
        assert!(!fixed.refresh_due(fresh, fresh + Duration::from_millis(999)));
        assert!(fixed.refresh_due(fresh, fresh - Duration::from_secs(1)));
    }

    #[test]
    fn a_date_is_checked_when_configured_not_when_it_passes() {
        let mut config = Config::default();
        let soon = SystemTime::now() + Duration::from_millis(20);
        config.set_expiry(Expiry::AtDateTime(soon));
        std::thread::sleep(Duration::from_millis(30));
        assert!(SystemTime::now() > soon);
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn cookie_lifetime_never_outlives_the_session() {
        let now = SystemTime::now();
        let lifetime = |ms| Config::lifetime(now + Duration::from_millis(ms), now);
        assert_eq!(lifetime(3_999), Some(3));
        assert_eq!(lifetime(1_000), Some(1));
        assert_eq!(lifetime(999), None);
        assert_eq!(Config::lifetime(now - Duration::from_secs(1), now), None);
    }

    #[test]
    fn absolute_deadline_caps_expiry() {
        let now = SystemTime::now();
        let deadline = now + Duration::from_secs(10);
        assert_eq!(Expiry::default().expires_at(now, Some(deadline)), deadline);
        assert_eq!(
            Expiry::OnInactivity(Duration::from_secs(5)).expires_at(now, Some(deadline)),
            now + Duration::from_secs(5)
        );
    }
}
