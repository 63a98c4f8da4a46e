//! Store wrappers for tests: one that records every call, one that fails or
//! hangs on the calls a test chooses.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;
use typed_sessions::store::{IndexKey, IndexedSession};
use typed_sessions::{
    FieldWrite, LoadedFields, LoadedNamespace, SessionId, SessionStore, StoreError,
};

/// One recorded store call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Load { namespace: String },
    LoadNamespace { namespace: String },
    Create { fields: Vec<String>, bytes: usize },
    Update { fields: Vec<String>, bytes: usize },
    Touch,
    Delete,
    Move,
    ListIndex,
    EndIndex,
}

fn summarize(writes: &[FieldWrite<'_>]) -> (Vec<String>, usize) {
    let fields = writes
        .iter()
        .map(|w| format!("{}.{}", w.key.namespace, w.key.field))
        .collect();
    let bytes = writes.iter().map(|w| w.value.map_or(0, <[u8]>::len)).sum();
    (fields, bytes)
}

/// Passes every call to the inner store and records it.
pub struct Recording {
    pub inner: Arc<dyn SessionStore>,
    pub calls: Arc<Mutex<Vec<Call>>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn SessionStore>) -> (Self, Arc<Mutex<Vec<Call>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                inner,
                calls: calls.clone(),
            },
            calls,
        )
    }
}

#[async_trait]
impl SessionStore for Recording {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        self.calls.lock().push(Call::Load {
            namespace: namespace.to_owned(),
        });
        self.inner.load(id, namespace, fields).await
    }
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        self.calls.lock().push(Call::LoadNamespace {
            namespace: namespace.to_owned(),
        });
        self.inner.load_namespace(id, namespace).await
    }
    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let (fields, bytes) = summarize(writes);
        self.calls.lock().push(Call::Create { fields, bytes });
        self.inner.create(id, writes, created_at, expires_at).await
    }
    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let (fields, bytes) = summarize(writes);
        self.calls.lock().push(Call::Update { fields, bytes });
        self.inner.update(id, writes, expires_at).await
    }
    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.calls.lock().push(Call::Touch);
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.calls.lock().push(Call::Delete);
        self.inner.delete(id).await
    }
    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.calls.lock().push(Call::Move);
        self.inner.move_to(from, to, expires_at).await
    }
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.inner.forwarded(id).await
    }
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        self.calls.lock().push(Call::ListIndex);
        self.inner.list_index(index).await
    }
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.calls.lock().push(Call::EndIndex);
        self.inner.end_index(index, except).await
    }
}

/// What [`Faulty`] does on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Pass the call through.
    #[default]
    None,
    /// Return a backend error.
    Fail,
    /// Never answer.
    Hang,
}

/// The operations [`Faulty`] can break.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Both kinds of load: `load` and `load_namespace`.
    pub load: Fault,
    pub create: Fault,
    pub update: Fault,
    pub touch: Fault,
    pub delete: Fault,
    pub moves: Fault,
}

/// Passes calls to the inner store unless told to fail or hang.
pub struct Faulty {
    pub inner: Arc<dyn SessionStore>,
    pub faults: Arc<Mutex<Faults>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn SessionStore>) -> (Self, Arc<Mutex<Faults>>) {
        let faults = Arc::new(Mutex::new(Faults::default()));
        (
            Self {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }
}

async fn apply(fault: Fault) -> Result<(), StoreError> {
    match fault {
        Fault::None => Ok(()),
        Fault::Fail => Err(StoreError::backend(std::io::Error::other(
            "injected failure",
        ))),
        Fault::Hang => std::future::pending().await,
    }
}

#[async_trait]
impl SessionStore for Faulty {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let fault = self.faults.lock().load;
        apply(fault).await?;
        self.inner.load(id, namespace, fields).await
    }
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let fault = self.faults.lock().load;
        apply(fault).await?;
        self.inner.load_namespace(id, namespace).await
    }
    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let fault = self.faults.lock().create;
        apply(fault).await?;
        self.inner.create(id, writes, created_at, expires_at).await
    }
    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let fault = self.faults.lock().update;
        apply(fault).await?;
        self.inner.update(id, writes, expires_at).await
    }
    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        let fault = self.faults.lock().touch;
        apply(fault).await?;
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let fault = self.faults.lock().delete;
        apply(fault).await?;
        self.inner.delete(id).await
    }
    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let fault = self.faults.lock().moves;
        apply(fault).await?;
        self.inner.move_to(from, to, expires_at).await
    }
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.inner.forwarded(id).await
    }
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        self.inner.list_index(index).await
    }
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.inner.end_index(index, except).await
    }
}
