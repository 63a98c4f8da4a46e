//! The per-request session: what the extractor loaded, what handlers
//! changed, and the save that runs after the handler.

mod plan;
mod save;

use std::any::{Any, TypeId};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;
use parking_lot::Mutex;

use crate::codec::{CodecChoice, CodecError};
use crate::config::{Config, Expiry};
use crate::cookies::{Presented, SetCookie};
use crate::dict::{DICT_NAMESPACE, Dict};
use crate::extract::SessionRejection;
use crate::id::SessionId;
use crate::private::{Companion, Loaded};
use crate::state::SessionState;
use crate::store::{
    FieldKey, INDEX_NAMESPACE, LoadedFields, LoadedNamespace, SessionStore, StoreError,
};

/// What the layer shares with every request.
pub(crate) struct Shared {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    cookie: SetCookie,
}

impl Shared {
    pub(crate) fn new(config: Config, store: Arc<dyn SessionStore>) -> Self {
        Self {
            cookie: SetCookie::new(&config),
            config,
            store,
        }
    }

    /// Runs one store call under the configured timeout.
    pub(crate) async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // A call that completes on its first poll (the memory store always
        // does) needs no timer: arming one costs more than the call.
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return result;
        }
        match tokio::time::timeout(self.config.store_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.config.store_timeout)),
        }
    }
}

/// What the request's session is known to be.
#[derive(Debug, Clone, Copy)]
enum Existence {
    /// Not asked yet.
    Unknown,
    /// The store holds it.
    Live {
        created_at: SystemTime,
        expires_at: SystemTime,
        /// The expiry an earlier request chose with `set_expiry`.
        remembered: Option<Expiry>,
    },
    /// The request came without a usable id, or the store does not know it.
    Absent,
}

/// A store's answer for an existing session.
trait Found {
    /// Its creation and expiry times.
    fn times(&self) -> (SystemTime, SystemTime);
    /// The stored bytes of the remembered expiry.
    fn expiry(&self) -> Option<&[u8]>;
}

impl Found for LoadedFields {
    fn times(&self) -> (SystemTime, SystemTime) {
        (self.created_at, self.expires_at)
    }
    fn expiry(&self) -> Option<&[u8]> {
        self.expiry.as_deref()
    }
}

impl Found for LoadedNamespace {
    fn times(&self) -> (SystemTime, SystemTime) {
        (self.created_at, self.expires_at)
    }
    fn expiry(&self) -> Option<&[u8]> {
        self.expiry.as_deref()
    }
}

/// What the handler asked to be done with the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Keep,
    CycleId,
    Destroy,
}

/// Type-erased access to a namespace's companion while it is parked.
trait ErasedSession: Send + Sync {
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// Pushes this namespace's writes: the changed fields whose encoding
    /// differs from the loaded bytes, and the removals a reset asks for.
    fn writes(&self, out: &mut Vec<(FieldKey<'static>, Option<Vec<u8>>)>) -> Result<(), SaveError>;
}

impl<C: Companion> ErasedSession for C {
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn writes(&self, out: &mut Vec<(FieldKey<'static>, Option<Vec<u8>>)>) -> Result<(), SaveError> {
        let loaded = self.loaded();
        let namespace = <C::State as SessionState>::NAMESPACE;
        let start = out.len();
        // The namespace's bytes once the writes are done: what the next
        // load of it will measure.
        let mut bytes = 0;
        for (index, field) in <C::State as SessionState>::FIELDS.iter().enumerate() {
            let key = FieldKey { namespace, field };
            let stored = loaded.stored(index);
            let written = out.len();
            if loaded.is_changed(index) {
                if let Some(bytes) = self.encode_field(index)?
                    && stored != Some(bytes.as_slice())
                {
                    out.push((key, Some(bytes)));
                }
            } else if loaded.cleared() && stored.is_some() {
                out.push((key, None));
            }
            bytes += match out.get(written) {
                Some((_, value)) => value.as_ref().map_or(0, Vec::len),
                None => stored.map_or(0, <[u8]>::len),
            };
            // The index entry goes with every write of the index field, in
            // the same store call, and with nothing else.
            if C::INDEX == Some(index) && out.len() > written {
                let entry = FieldKey {
                    namespace: INDEX_NAMESPACE,
                    field: namespace,
                };
                out.push((entry, self.index_key()?));
            }
        }
        // A namespace no load accepts would lock its session out: the write
        // that would grow it past the limit is refused instead.
        if out.len() > start {
            check_write_size(namespace, bytes)?;
        }
        Ok(())
    }
}

/// One namespace of the request's session.
struct Slot {
    namespace: &'static str,
    type_id: TypeId,
    type_name: &'static str,
    /// The namespace while no `TypedSession` holds it.
    parked: Option<Box<dyn ErasedSession>>,
}

struct State {
    existence: Existence,
    /// One per namespace taken; a request takes one or two, so a list is
    /// cheaper than a map.
    slots: Vec<Slot>,
    action: Action,
    expiry: Option<Expiry>,
    used: bool,
    /// The dict-like `Session`'s namespace.
    dict: DictSlot,
}

/// Where the dict-like `Session`'s state is.
enum DictSlot {
    /// Not taken in this request.
    Untaken,
    /// Held by a `Session`.
    InUse,
    /// Loaded, and no `Session` holds it.
    Parked(Dict),
}

impl State {
    fn slot_mut(&mut self, namespace: &str) -> Option<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|slot| slot.namespace == namespace)
    }
}

/// The session of one request, shared by the layer and the extractors.
pub(crate) struct RequestSession {
    shared: Arc<Shared>,
    presented: Presented,
    state: Mutex<State>,
}

impl RequestSession {
    pub(crate) fn new(shared: Arc<Shared>, presented: Presented) -> Self {
        let existence = match presented {
            Presented::Id(_) | Presented::OldKey(_) => Existence::Unknown,
            _ => Existence::Absent,
        };
        Self {
            shared,
            presented,
            state: Mutex::new(State {
                existence,
                slots: Vec::new(),
                action: Action::Keep,
                expiry: None,
                used: false,
                dict: DictSlot::Untaken,
            }),
        }
    }

    /// What the layer shares with every request.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The stored session's id, if the request has one.
    pub(crate) fn id(&self) -> Option<SessionId> {
        match self.state.lock().existence {
            Existence::Live { .. } => self.presented.id().cloned(),
            _ => None,
        }
    }

    pub(crate) fn is_new(&self) -> bool {
        !matches!(self.state.lock().existence, Existence::Live { .. })
    }

    pub(crate) fn set_action(&self, action: Action) {
        let mut state = self.state.lock();
        // Destroy wins over cycling.
        if state.action != Action::Destroy {
            state.action = action;
        }
    }

    pub(crate) fn set_expiry(&self, expiry: Expiry) {
        let expiry = expiry.clamped(SystemTime::now());
        self.state.lock().expiry = Some(expiry);
    }

    /// Takes namespace `T` out of the request's session, loading it from the
    /// store (one round trip) the first time.
    pub(crate) async fn take<T: SessionState>(&self) -> Result<T::Session, SessionRejection> {
        let existence = {
            let mut state = self.state.lock();
            state.used = true;
            if let Some(slot) = state.slot_mut(T::NAMESPACE) {
                return Self::unpark::<T>(slot);
            }
            state.existence
        };
        let (existence, loaded) = match (existence, self.presented.id()) {
            (Existence::Absent, _) | (_, None) => (Existence::Absent, None),
            (_, Some(id)) => {
                let found = self
                    .shared
                    .call(self.shared.store.load(id, T::NAMESPACE, T::FIELDS))
                    .await
                    .and_then(|found| {
                        if let Some(found) = &found {
                            check_loaded(found, T::FIELDS.len())?;
                        }
                        Ok(found)
                    });
                match self.usable(id, found).await? {
                    Some(found) => {
                        let (existence, found) = self.settle(id, existence, found);
                        (existence, found.map(|found| found.values))
                    }
                    None => (Existence::Absent, None),
                }
            }
        };
        let loaded = loaded.unwrap_or_else(|| vec![None; T::FIELDS.len()]);
        let mut state = self.state.lock();
        if matches!(state.existence, Existence::Unknown) || matches!(existence, Existence::Absent) {
            state.existence = existence;
        }
        if let Some(slot) = state.slot_mut(T::NAMESPACE) {
            // Another extraction of this namespace finished its load first.
            return Self::unpark::<T>(slot);
        }
        state.slots.push(Slot {
            namespace: T::NAMESPACE,
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            parked: None,
        });
        Ok(T::Session::from_loaded(Loaded::new::<T>(
            self.shared.config.codec.clone(),
            loaded,
        )))
    }

    fn unpark<T: SessionState>(slot: &mut Slot) -> Result<T::Session, SessionRejection> {
        if slot.type_id != TypeId::of::<T>() {
            return Err(SessionRejection::NamespaceClash {
                state: slot.type_name,
                namespace: T::NAMESPACE,
            });
        }
        let parked = slot.parked.take().ok_or(SessionRejection::InUse {
            state: std::any::type_name::<T>(),
        })?;
        parked
            .into_any()
            .downcast::<T::Session>()
            .map(|session| *session)
            .map_err(|_| SessionRejection::NamespaceClash {
                state: slot.type_name,
                namespace: T::NAMESPACE,
            })
    }

    /// Hands a namespace back when its `TypedSession` is dropped.
    pub(crate) fn park<T: SessionState>(&self, session: T::Session) {
        if let Some(slot) = self.state.lock().slot_mut(T::NAMESPACE) {
            slot.parked = Some(Box::new(session));
        }
    }

    /// The layer's codec.
    pub(crate) fn codec(&self) -> &CodecChoice {
        &self.shared.config.codec
    }

    /// Takes the dict-like `Session`'s namespace out of the request's
    /// session, loading every key of it (one round trip) the first time.
    pub(crate) async fn take_dict(&self) -> Result<Dict, SessionRejection> {
        let existence = {
            let mut state = self.state.lock();
            state.used = true;
            match std::mem::replace(&mut state.dict, DictSlot::InUse) {
                DictSlot::Parked(dict) => return Ok(dict),
                DictSlot::InUse => return Err(SessionRejection::DictInUse),
                DictSlot::Untaken => {}
            }
            state.existence
        };
        let loaded = self.load_dict(existence).await;
        let mut state = self.state.lock();
        let (existence, dict) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                // Nothing was taken: a later extraction may try again.
                state.dict = DictSlot::Untaken;
                return Err(error);
            }
        };
        if matches!(state.existence, Existence::Unknown) || matches!(existence, Existence::Absent) {
            state.existence = existence;
        }
        Ok(dict)
    }

    async fn load_dict(&self, existence: Existence) -> Result<(Existence, Dict), SessionRejection> {
        let id = match (existence, self.presented.id()) {
            (Existence::Absent, _) | (_, None) => return Ok((Existence::Absent, Dict::default())),
            (_, Some(id)) => id,
        };
        let found = self
            .shared
            .call(self.shared.store.load_namespace(id, DICT_NAMESPACE))
            .await
            .and_then(|found| {
                if let Some(found) = &found {
                    check_size(found.fields.iter().map(|(_, value)| value))?;
                }
                Ok(found)
            });
        let Some(found) = self.usable(id, found).await? else {
            return Ok((Existence::Absent, Dict::default()));
        };
        let (existence, found) = self.settle(id, existence, found);
        let dict = found.map_or_else(Dict::default, |found| Dict::loaded(found.fields, id));
        Ok((existence, dict))
    }

    /// A load's answer, with a session the layer cannot use set aside:
    /// `Ok(None)` when the store holds `id` corrupt (`Malformed`) or over
    /// [`MAX_NAMESPACE_BYTES`] (`TooLarge`). Such a session would fail every
    /// request that names it until it expired, since a 500 saves nothing
    /// and so never replaces the cookie; instead it is not adopted (the
    /// save then removes the cookie, or creates a session under a new id)
    /// and deleted at once. At once rather than in the save: the save does
    /// not run when the handler answers 5xx, and the record is of no use to
    /// any request. Failures and timeouts stay errors: the session may be
    /// fine.
    async fn usable<F>(
        &self,
        id: &SessionId,
        found: Result<Option<F>, StoreError>,
    ) -> Result<Option<Option<F>>, StoreError> {
        let error = match found {
            Err(error @ (StoreError::Malformed(_) | StoreError::TooLarge(_))) => error,
            other => return other.map(Some),
        };
        tracing::warn!(
            session = %id.log_tag(), %error,
            "stored session is corrupt or too large; not adopted, and deleted"
        );
        if let Err(error) = self.shared.call(self.shared.store.delete(id)).await {
            tracing::warn!(
                session = %id.log_tag(), %error,
                "deleting the unusable session failed; the store expires it"
            );
        }
        Ok(None)
    }

    /// What a store's answer for the presented `id` makes the session: live,
    /// with what was loaded, or absent (and the id not adopted).
    fn settle<F: Found>(
        &self,
        id: &SessionId,
        asked: Existence,
        found: Option<F>,
    ) -> (Existence, Option<F>) {
        // A store must not return an expired session; if one does, the
        // layer still does not use it.
        match found.filter(|f| f.times().1 > SystemTime::now()) {
            Some(found) if !self.past_deadline(found.times().0) => {
                let (created_at, expires_at) = found.times();
                (
                    Existence::Live {
                        created_at,
                        expires_at,
                        remembered: remembered(id, found.expiry()),
                    },
                    Some(found),
                )
            }
            Some(_) => {
                tracing::info!(session = %id.log_tag(), "session passed its absolute timeout; starting a new one");
                (Existence::Absent, None)
            }
            None => {
                if matches!(asked, Existence::Unknown) {
                    tracing::info!(session = %id.log_tag(), "unknown or expired session id presented; not adopted");
                }
                (Existence::Absent, None)
            }
        }
    }

    /// Hands the dict back when its `Session` is dropped.
    pub(crate) fn park_dict(&self, dict: Dict) {
        self.state.lock().dict = DictSlot::Parked(dict);
    }

    fn past_deadline(&self, created_at: SystemTime) -> bool {
        self.deadline(created_at)
            .is_some_and(|deadline| deadline <= SystemTime::now())
    }

    fn deadline(&self, created_at: SystemTime) -> Option<SystemTime> {
        self.shared
            .config
            .absolute_timeout
            .and_then(|timeout| created_at.checked_add(timeout))
    }

    /// Whether a handler took a `TypedSession` (the response then varies by
    /// cookie).
    pub(crate) fn was_used(&self) -> bool {
        self.state.lock().used
    }

    /// The removal cookie for a cookie refused without the store
    /// (malformed, badly signed, ambiguous), so the client stops sending it;
    /// `None` otherwise.
    pub(crate) fn malformed_cookie_removal(&self) -> Option<HeaderValue> {
        match self.presented {
            Presented::Rejected => self.shared.cookie.removal(),
            Presented::Nothing | Presented::Id(_) | Presented::OldKey(_) => None,
        }
    }
}

/// The expiry a session chose earlier, from the bytes of [`EXPIRY_FIELD`];
/// bytes this build cannot read are logged and ignored (the layer's
/// default applies, and the next `set_expiry` overwrites them).
fn remembered(id: &SessionId, bytes: Option<&[u8]>) -> Option<Expiry> {
    let bytes = bytes?;
    let expiry = crate::remembered::decode(bytes);
    if expiry.is_none() {
        tracing::warn!(session = %id.log_tag(), "unreadable remembered expiry ignored");
    }
    expiry
}

/// The most bytes one namespace may load: a store that returns more is
/// answered with an error, not decoded.
pub(crate) const MAX_NAMESPACE_BYTES: usize = 64 * 1024 * 1024;

/// A store's answer must have one value per requested field and stay within
/// [`MAX_NAMESPACE_BYTES`].
fn check_loaded(found: &LoadedFields, fields: usize) -> Result<(), StoreError> {
    if found.values.len() != fields {
        return Err(StoreError::Malformed(format!(
            "store returned {} values for {fields} fields",
            found.values.len()
        )));
    }
    check_size(found.values.iter().flatten())
}

/// A namespace's loaded values must stay within [`MAX_NAMESPACE_BYTES`].
fn check_size<'a>(values: impl Iterator<Item = &'a Bytes>) -> Result<(), StoreError> {
    let bytes: usize = values.map(Bytes::len).sum();
    if bytes > MAX_NAMESPACE_BYTES {
        return Err(StoreError::TooLarge(format!(
            "a namespace of {bytes} bytes exceeds the {MAX_NAMESPACE_BYTES}-byte limit"
        )));
    }
    Ok(())
}

/// Refuses a save that would leave `namespace` holding more than
/// [`MAX_NAMESPACE_BYTES`].
fn check_write_size(namespace: &'static str, bytes: usize) -> Result<(), SaveError> {
    if bytes > MAX_NAMESPACE_BYTES {
        return Err(SaveError::TooLarge { namespace, bytes });
    }
    Ok(())
}

/// Why the save after the handler failed; the response becomes a 500.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a session field could not be encoded: {0}")]
    Encode(#[from] CodecError),
    #[error(transparent)]
    Random(#[from] crate::id::RandomnessError),
    #[error("the session cookie could not be encoded as a header")]
    Cookie,
    #[error(
        "the session namespace {namespace:?} would hold {bytes} bytes, more than the \
         {MAX_NAMESPACE_BYTES} a load accepts; nothing was saved"
    )]
    TooLarge {
        namespace: &'static str,
        bytes: usize,
    },
}
