//! A store wrapper for fault injection that goes further than
//! [`stores::Faulty`](crate::stores::Faulty): besides failing and hanging
//! before the call, it can hang or fail *after* the inner store did the
//! work (the answer is lost, the write is not), and answer with garbage:
//! the wrong number of values, absurdly large or undecodable values, an
//! expired session, a denial or a lie. It counts every call.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use typed_sessions::store::Bytes;
use typed_sessions::{
    FieldWrite, LoadedFields, LoadedNamespace, SessionId, SessionStore, StoreError,
};

/// The most bytes the layer accepts for one namespace (the layer's
/// `MAX_NAMESPACE_BYTES`, 64 MiB).
pub const NAMESPACE_LIMIT: usize = 64 * 1024 * 1024;

/// What [`Chaos`] does on one kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Pass the call through.
    #[default]
    Pass,
    /// Return a backend error without calling the inner store.
    Fail,
    /// Never answer, without calling the inner store.
    Hang,
    /// Call the inner store, then never answer: the work is done, the
    /// answer is lost.
    HangAfter,
    /// Call the inner store, then return a backend error.
    FailAfter,
    /// Answer after this many milliseconds (then pass through).
    DelayMs(u64),
    /// Load: one value more than the fields asked for.
    ExtraValue,
    /// Load: one value fewer.
    MissingValue,
    /// Load: no values at all.
    NoValues,
    /// Load: one value of more than [`NAMESPACE_LIMIT`] bytes.
    Huge,
    /// Load: many values that together pass [`NAMESPACE_LIMIT`].
    HugeTotal,
    /// Load: every value replaced by bytes no codec reads as the field.
    Undecodable,
    /// Load: the first value is `u64::MAX`, every other one a string
    /// claiming 4 GiB (a claim of an absurd allocation).
    HugePrefix,
    /// Load: the session as stored, but with an expiry in the past.
    Expired,
    /// Load: the session as stored, but created in the far future and
    /// expiring at the end of time.
    FarFuture,
    /// Writes: deny without calling the inner store (`create`:
    /// `IdExists`; `update`, `touch`, `move_to`: `Ok(false)`).
    Deny,
    /// Writes: claim success without calling the inner store.
    Lie,
}

/// The behavior per operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    pub load: Behavior,
    pub create: Behavior,
    pub update: Behavior,
    pub touch: Behavior,
    pub delete: Behavior,
    pub moves: Behavior,
}

/// How many calls of each kind [`Chaos`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub load: usize,
    pub create: usize,
    pub update: usize,
    pub touch: usize,
    pub delete: usize,
    pub moves: usize,
}

/// The controls of a [`Chaos`] store, kept by the test.
#[derive(Clone, Default)]
pub struct Controls {
    pub plan: Arc<Mutex<Plan>>,
    pub counts: Arc<Mutex<Counts>>,
}

impl Controls {
    /// Back to passing every call through.
    pub fn heal(&self) {
        *self.plan.lock() = Plan::default();
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        *self.counts.lock()
    }
}

/// Passes calls to the inner store, or misbehaves as [`Plan`] says.
pub struct Chaos {
    pub inner: Arc<dyn SessionStore>,
    controls: Controls,
}

impl Chaos {
    pub fn new(inner: Arc<dyn SessionStore>) -> (Self, Controls) {
        let controls = Controls::default();
        (
            Self {
                inner,
                controls: controls.clone(),
            },
            controls,
        )
    }

    fn plan(&self) -> Plan {
        *self.controls.plan.lock()
    }
}

fn injected() -> StoreError {
    StoreError::backend(std::io::Error::other("injected failure"))
}

/// Runs the part of a behavior that comes before the inner call.
async fn before(behavior: Behavior) -> Result<(), StoreError> {
    match behavior {
        Behavior::Fail => Err(injected()),
        Behavior::Hang => std::future::pending().await,
        Behavior::DelayMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Runs the part of a behavior that comes after the inner call.
async fn after<T>(behavior: Behavior, result: Result<T, StoreError>) -> Result<T, StoreError> {
    match behavior {
        Behavior::HangAfter => std::future::pending().await,
        Behavior::FailAfter => Err(injected()),
        _ => result,
    }
}

/// A value that is not a valid encoding of any usual field type: the
/// MessagePack tag, then a marker MessagePack never uses.
const UNDECODABLE: &[u8] = &[0x01, 0xc1, 0xff, 0xff, b'{', 0];

/// MessagePack's `u64::MAX`: a valid number, for the first field.
const MAX_NUMBER: &[u8] = &[0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// A MessagePack string claiming 4 GiB: a length prefix the value cannot
/// back, for every other field.
const HUGE_PREFIX: &[u8] = &[0x01, 0xdb, 0xff, 0xff, 0xff, 0xff];

fn garble(behavior: Behavior, mut found: LoadedFields) -> LoadedFields {
    match behavior {
        Behavior::ExtraValue => found.values.push(None),
        Behavior::MissingValue => {
            found.values.pop();
        }
        Behavior::NoValues => found.values.clear(),
        Behavior::Huge => {
            // Zeroed memory: the pages are not touched until read.
            if let Some(first) = found.values.first_mut() {
                *first = Some(vec![0; NAMESPACE_LIMIT + 1].into());
            }
        }
        Behavior::HugeTotal => {
            let each = NAMESPACE_LIMIT / found.values.len().max(1) + 1;
            for value in &mut found.values {
                *value = Some(vec![0; each].into());
            }
            if found.values.len() == 1 {
                found.values[0] = Some(vec![0; NAMESPACE_LIMIT + 1].into());
            }
        }
        Behavior::Undecodable => {
            for value in &mut found.values {
                *value = Some(UNDECODABLE.into());
            }
            found.expiry = Some(UNDECODABLE.into());
        }
        Behavior::HugePrefix => {
            for (index, value) in found.values.iter_mut().enumerate() {
                let bytes = if index == 0 { MAX_NUMBER } else { HUGE_PREFIX };
                *value = Some(bytes.into());
            }
        }
        Behavior::Expired => found.expires_at = SystemTime::now() - Duration::from_secs(3600),
        Behavior::FarFuture => {
            found.created_at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
            found.expires_at = found.created_at;
        }
        _ => {}
    }
    found
}

/// [`garble`] for a namespace load: the same behaviors, applied to its
/// values (`ExtraValue` adds a field, `MissingValue` drops one, `NoValues`
/// drops all).
fn garble_namespace(behavior: Behavior, found: LoadedNamespace) -> LoadedNamespace {
    let (names, values): (Vec<String>, Vec<Bytes>) = found.fields.into_iter().unzip();
    let garbled = garble(
        behavior,
        LoadedFields {
            created_at: found.created_at,
            expires_at: found.expires_at,
            values: values.into_iter().map(Some).collect(),
            expiry: found.expiry,
        },
    );
    let mut names = names.into_iter();
    let fields = garbled
        .values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let name = names.next().unwrap_or_else(|| format!("extra{index}"));
            (name, value.unwrap_or_else(|| UNDECODABLE.into()))
        })
        .collect();
    LoadedNamespace {
        expiry: garbled.expiry,
        created_at: garbled.created_at,
        expires_at: garbled.expires_at,
        fields,
    }
}

#[async_trait]
impl SessionStore for Chaos {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        self.controls.counts.lock().load += 1;
        let behavior = self.plan().load;
        before(behavior).await?;
        let result = self
            .inner
            .load(id, namespace, fields)
            .await
            .map(|found| found.map(|found| garble(behavior, found)));
        after(behavior, result).await
    }

    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        self.controls.counts.lock().load += 1;
        let behavior = self.plan().load;
        before(behavior).await?;
        let result = self
            .inner
            .load_namespace(id, namespace)
            .await
            .map(|found| found.map(|found| garble_namespace(behavior, found)));
        after(behavior, result).await
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.controls.counts.lock().create += 1;
        let behavior = self.plan().create;
        before(behavior).await?;
        match behavior {
            Behavior::Deny => return Err(StoreError::IdExists),
            Behavior::Lie => return Ok(()),
            _ => {}
        }
        let result = self.inner.create(id, writes, created_at, expires_at).await;
        after(behavior, result).await
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.controls.counts.lock().update += 1;
        let behavior = self.plan().update;
        before(behavior).await?;
        match behavior {
            Behavior::Deny => return Ok(false),
            Behavior::Lie => return Ok(true),
            _ => {}
        }
        let result = self.inner.update(id, writes, expires_at).await;
        after(behavior, result).await
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.controls.counts.lock().touch += 1;
        let behavior = self.plan().touch;
        before(behavior).await?;
        match behavior {
            Behavior::Deny => return Ok(false),
            Behavior::Lie => return Ok(true),
            _ => {}
        }
        let result = self.inner.touch(id, expires_at).await;
        after(behavior, result).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.controls.counts.lock().delete += 1;
        let behavior = self.plan().delete;
        before(behavior).await?;
        if matches!(behavior, Behavior::Lie | Behavior::Deny) {
            return Ok(());
        }
        let result = self.inner.delete(id).await;
        after(behavior, result).await
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.controls.counts.lock().moves += 1;
        let behavior = self.plan().moves;
        before(behavior).await?;
        match behavior {
            Behavior::Deny => return Ok(false),
            Behavior::Lie => return Ok(true),
            _ => {}
        }
        let result = self.inner.move_to(from, to, expires_at).await;
        after(behavior, result).await
    }

    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.inner.forwarded(id).await
    }
}
