//! Model-based checks of the derive, the layer and a store, for the
//! property tests: a request plan (field operations plus a session control)
//! runs in a real handler through the layer, in process, and a model kept
//! in the test predicts what the handler sees, which cookie comes back and
//! exactly which store calls the layer makes. A second check runs writers
//! of different fields concurrently in a chosen interleaving and verifies
//! no write is lost.
//!
//! Both take any store, so every store can run them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::Extension;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use typed_sessions::{Expiry, SessionLayer, SessionState, SessionStore, TypedSession};

use crate::inproc::{Client, CookieChange};
use crate::stores::{Call, Recording};

// ---------------------------------------------------------------------------
// The states.

/// The main state of the sequence model: every kind of field attribute.
#[derive(SessionState, Debug)]
#[session(namespace = "prop")]
pub struct Prop {
    pub count: i64,
    pub name: String,
    #[session(rename = "tags")]
    pub list: Vec<u16>,
    #[session(default = "seven")]
    pub seven: u8,
    pub flag: Option<bool>,
    #[session(skip)]
    pub scratch: u32,
}

pub fn seven() -> u8 {
    7
}

/// A second namespace in the same session.
#[derive(SessionState, Debug)]
#[session(namespace = "side")]
pub struct Side {
    pub n: u32,
}

/// The stored names of `Prop`'s fields, in order.
pub const PROP_FIELDS: [&str; 5] = ["count", "name", "tags", "seven", "flag"];

/// What a handler saw of both namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    pub count: i64,
    pub name: String,
    pub tags: Vec<u16>,
    pub seven: u8,
    pub flag: Option<bool>,
    pub n: u32,
}

impl View {
    pub fn defaults() -> Self {
        Self {
            seven: 7,
            ..Self::default()
        }
    }
}

fn view(prop: &TypedSession<Prop>, side: Option<&TypedSession<Side>>) -> View {
    View {
        count: *prop.count(),
        name: prop.name().clone(),
        tags: prop.list().clone(),
        seven: *prop.seven(),
        flag: *prop.flag(),
        n: side.map_or(0, |s| *s.n()),
    }
}

// ---------------------------------------------------------------------------
// Request plans.

/// One operation a handler does on the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    SetCount(i64),
    AddCount(i64),
    SetName(String),
    PushTag(u16),
    TakeTags,
    TakeName,
    SetSeven(u8),
    SetFlag(Option<bool>),
    /// `f_mut()` on field `i` without changing the value.
    Touch(usize),
    Reset,
    SetN(u32),
    ResetSide,
}

impl Op {
    pub fn uses_side(&self) -> bool {
        matches!(self, Op::SetN(_) | Op::ResetSide)
    }
}

/// What the handler asks for the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Keep,
    Cycle,
    Destroy,
}

/// Which cookie the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// The one it has.
    Keep,
    /// None (the browser was closed, or a new device).
    Forget,
    /// The `i`-th (modulo) cookie value ever issued: the current one, a
    /// live one the client had dropped, or a dead (destroyed, cycled) one.
    Reuse(usize),
    /// A malformed value.
    Garbage,
}

/// One request of a sequence.
#[derive(Debug, Clone)]
pub struct Step {
    pub send: Send,
    pub ops: Vec<Op>,
    pub control: Control,
    /// Whether the handler also takes `TypedSession<Side>` (always when an
    /// op uses it).
    pub side: bool,
}

/// What the handler reports back (as a response extension).
#[derive(Debug, Clone)]
struct Seen {
    before: View,
    after: View,
    is_new: bool,
    has_id: bool,
}

fn apply(prop: &mut TypedSession<Prop>, side: &mut Option<TypedSession<Side>>, op: &Op) {
    match op {
        Op::SetCount(v) => prop.set_count(*v),
        Op::AddCount(d) => {
            let count = prop.count_mut();
            *count = count.wrapping_add(*d);
        }
        Op::SetName(v) => prop.set_name(v.clone()),
        Op::PushTag(t) => prop.list_mut().push(*t),
        Op::TakeTags => {
            let _ = prop.take_list();
        }
        Op::TakeName => {
            let _ = prop.take_name();
        }
        Op::SetSeven(v) => prop.set_seven(*v),
        Op::SetFlag(v) => prop.set_flag(*v),
        Op::Touch(i) => match i {
            0 => {
                prop.count_mut();
            }
            1 => {
                prop.name_mut();
            }
            2 => {
                prop.list_mut();
            }
            3 => {
                prop.seven_mut();
            }
            _ => {
                prop.flag_mut();
            }
        },
        Op::Reset => TypedSession::reset(prop),
        Op::SetN(v) => side.as_mut().expect("side taken").set_n(*v),
        Op::ResetSide => TypedSession::reset(side.as_mut().expect("side taken")),
    }
}

/// The handler of a step that leaves `Side` alone: the layer then never
/// loads it.
async fn run_plan(
    Extension(step): Extension<Arc<Step>>,
    mut prop: TypedSession<Prop>,
) -> impl IntoResponse {
    let before = view(&prop, None);
    let is_new = TypedSession::is_new(&prop);
    let has_id = TypedSession::id(&prop).is_some();
    for op in &step.ops {
        apply(&mut prop, &mut None, op);
    }
    match step.control {
        Control::Keep => {}
        Control::Cycle => TypedSession::cycle_id(&mut prop),
        Control::Destroy => TypedSession::destroy(&mut prop),
    }
    let after = view(&prop, None);
    Extension(Seen {
        before,
        after,
        is_new,
        has_id,
    })
}

async fn run_plan_both(
    Extension(step): Extension<Arc<Step>>,
    mut prop: TypedSession<Prop>,
    side: TypedSession<Side>,
) -> impl IntoResponse {
    let mut side = Some(side);
    let before = view(&prop, side.as_ref());
    let is_new = TypedSession::is_new(&prop);
    let has_id = TypedSession::id(&prop).is_some();
    for op in &step.ops {
        apply(&mut prop, &mut side, op);
    }
    match step.control {
        Control::Keep => {}
        Control::Cycle => TypedSession::cycle_id(&mut prop),
        Control::Destroy => TypedSession::destroy(&mut prop),
    }
    let after = view(&prop, side.as_ref());
    Extension(Seen {
        before,
        after,
        is_new,
        has_id,
    })
}

async fn read_both(prop: TypedSession<Prop>, side: TypedSession<Side>) -> Extension<(View, bool)> {
    Extension((view(&prop, Some(&side)), TypedSession::is_new(&prop)))
}

/// The router of the sequence model, with an expiry that never asks for a
/// refresh (so every store call is predictable).
pub fn sequence_router(store: Arc<dyn SessionStore>) -> Router {
    let expiry = Expiry::AtDateTime(SystemTime::now() + Duration::from_secs(24 * 3600));
    Router::new()
        .route("/plan", get(run_plan))
        .route("/plan/both", get(run_plan_both))
        .route("/read", get(read_both))
        .layer(SessionLayer::new(store).with_expiry(expiry))
}

// ---------------------------------------------------------------------------
// The model.

/// The stored fields of one session: `None` when not stored.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stored {
    count: Option<i64>,
    name: Option<String>,
    tags: Option<Vec<u16>>,
    seven: Option<u8>,
    flag: Option<Option<bool>>,
    n: Option<u32>,
}

impl Stored {
    fn view(&self) -> View {
        View {
            count: self.count.unwrap_or(0),
            name: self.name.clone().unwrap_or_default(),
            tags: self.tags.clone().unwrap_or_default(),
            seven: self.seven.unwrap_or(7),
            flag: self.flag.unwrap_or(None),
            n: self.n.unwrap_or(0),
        }
    }
}

/// The handler's working copy: values and change flags, as the derive
/// tracks them.
struct Working {
    view: View,
    /// count, name, tags, seven, flag, n
    changed: [bool; 6],
    cleared_prop: bool,
    cleared_side: bool,
}

impl Working {
    fn apply(&mut self, op: &Op) {
        let v = &mut self.view;
        let c = &mut self.changed;
        match op {
            Op::SetCount(x) => (v.count, c[0]) = (*x, true),
            Op::AddCount(d) => (v.count, c[0]) = (v.count.wrapping_add(*d), true),
            Op::SetName(x) => (v.name, c[1]) = (x.clone(), true),
            Op::PushTag(t) => {
                v.tags.push(*t);
                c[2] = true;
            }
            Op::TakeTags => (v.tags, c[2]) = (Vec::new(), true),
            Op::TakeName => (v.name, c[1]) = (String::new(), true),
            Op::SetSeven(x) => (v.seven, c[3]) = (*x, true),
            Op::SetFlag(x) => (v.flag, c[4]) = (*x, true),
            Op::Touch(i) => c[(*i).min(4)] = true,
            Op::Reset => {
                let n = v.n;
                *v = View {
                    n,
                    ..View::defaults()
                };
                c[..5].iter_mut().for_each(|f| *f = false);
                self.cleared_prop = true;
            }
            Op::SetN(x) => (v.n, c[5]) = (*x, true),
            Op::ResetSide => {
                v.n = 0;
                c[5] = false;
                self.cleared_side = true;
            }
        }
    }

    /// The fields the save writes (`ns.field`, with whether it is a
    /// removal), given what was loaded, and the stored state afterwards.
    fn writes(&self, loaded: &Stored, side_taken: bool) -> (Vec<(String, bool)>, Stored) {
        let mut writes = Vec::new();
        let mut after = loaded.clone();
        let v = &self.view;
        // One macro-free helper per field type would be noisier than this.
        fn field<T: Clone + PartialEq>(
            name: &str,
            changed: bool,
            cleared: bool,
            value: &T,
            stored: &mut Option<T>,
            writes: &mut Vec<(String, bool)>,
        ) {
            if changed {
                if stored.as_ref() != Some(value) {
                    writes.push((name.to_owned(), false));
                    *stored = Some(value.clone());
                }
            } else if cleared && stored.is_some() {
                writes.push((name.to_owned(), true));
                *stored = None;
            }
        }
        let (c, cp) = (&self.changed, self.cleared_prop);
        field(
            "prop.count",
            c[0],
            cp,
            &v.count,
            &mut after.count,
            &mut writes,
        );
        field("prop.name", c[1], cp, &v.name, &mut after.name, &mut writes);
        field("prop.tags", c[2], cp, &v.tags, &mut after.tags, &mut writes);
        field(
            "prop.seven",
            c[3],
            cp,
            &v.seven,
            &mut after.seven,
            &mut writes,
        );
        field("prop.flag", c[4], cp, &v.flag, &mut after.flag, &mut writes);
        if side_taken {
            field(
                "side.n",
                c[5],
                self.cleared_side,
                &v.n,
                &mut after.n,
                &mut writes,
            );
        }
        writes.sort();
        (writes, after)
    }
}

/// The model: every session the store should hold, by cookie value, and
/// every cookie value ever issued.
#[derive(Default)]
pub struct Model {
    sessions: HashMap<String, Stored>,
    issued: Vec<String>,
}

fn sorted_fields(fields: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = fields.iter().cloned().collect();
    assert_eq!(set.len(), fields.len(), "a field written twice: {fields:?}");
    set.into_iter().collect()
}

/// Runs `steps` against `store` and checks every request against the
/// model, then reads every session back.
pub async fn check_sequence(store: Arc<dyn SessionStore>, steps: &[Step]) {
    let (recording, calls) = Recording::new(store);
    let mut client = Client::new(sequence_router(Arc::new(recording)));
    let mut model = Model::default();
    for (index, step) in steps.iter().enumerate() {
        let context = format!("step {index}: {step:?}");
        match step.send {
            Send::Keep => {}
            Send::Forget => client.cookie = None,
            Send::Reuse(i) => {
                if !model.issued.is_empty() {
                    client.cookie = Some(model.issued[i % model.issued.len()].clone());
                }
            }
            Send::Garbage => client.cookie = Some("not-an-id".to_owned()),
        }
        let sent = client.cookie.clone();
        let live = sent.as_ref().and_then(|c| model.sessions.get(c)).cloned();
        let well_formed = sent.as_ref().is_some_and(|c| c != "not-an-id");

        let mut extensions = http::Extensions::new();
        extensions.insert(Arc::new(step.clone()));
        calls.lock().clear();
        let path = if step.side { "/plan/both" } else { "/plan" };
        let (answer, change) = client.send(path, extensions).await;
        assert_eq!(answer.status, 200, "{context}: {}", answer.body);
        let seen: Seen = answer.extension().expect("the handler's report");

        // What the handler saw.
        let loaded = live.clone().unwrap_or_default();
        let mut before = loaded.view();
        if !step.side {
            before.n = 0;
        }
        assert_eq!(seen.before, before, "{context}: loaded state");
        assert_eq!(seen.is_new, live.is_none(), "{context}: is_new");
        assert_eq!(seen.has_id, live.is_some(), "{context}: id");
        let mut working = Working {
            view: before,
            changed: [false; 6],
            cleared_prop: false,
            cleared_side: false,
        };
        for op in &step.ops {
            working.apply(op);
        }
        assert_eq!(seen.after, working.view, "{context}: state after the ops");

        // What the layer did: loads, then the save.
        let mut expected = Vec::new();
        if well_formed {
            expected.push(Call::Load {
                namespace: "prop".into(),
            });
            if step.side && live.is_some() {
                expected.push(Call::Load {
                    namespace: "side".into(),
                });
            }
        }
        let (writes, stored_after) = working.writes(&loaded, step.side);
        let set: Vec<String> = writes.iter().map(|(f, _)| f.clone()).collect();
        let sets: Vec<String> = writes
            .iter()
            .filter(|(_, removal)| !removal)
            .map(|(f, _)| f.clone())
            .collect();
        // `None`: a new cookie value is expected (a new or cycled id).
        let expected_change = match (step.control, &live) {
            (Control::Destroy, Some(_)) => {
                expected.push(Call::Delete);
                model.sessions.remove(sent.as_ref().unwrap());
                Some(CookieChange::Removed)
            }
            (Control::Destroy, None) if sent.is_some() => Some(CookieChange::Removed),
            (Control::Destroy, None) => Some(CookieChange::None),
            // A refused cookie (garbage, or an id the store does not
            // hold) is removed.
            (_, None) if sets.is_empty() && sent.is_some() => Some(CookieChange::Removed),
            (_, None) if sets.is_empty() => Some(CookieChange::None),
            (_, None) => {
                // A new session; removals do not reach the store.
                expected.push(Call::Create {
                    fields: sets.clone(),
                    bytes: 0,
                });
                None
            }
            (Control::Cycle, Some(_)) => {
                // The move first, then the writes on the new id: a failure
                // between the two never leaves them on the old id.
                expected.push(Call::Move);
                if !set.is_empty() {
                    expected.push(Call::Update {
                        fields: set.clone(),
                        bytes: 0,
                    });
                }
                model.sessions.remove(sent.as_ref().unwrap());
                None
            }
            (Control::Keep, Some(_)) if set.is_empty() => Some(CookieChange::None),
            (Control::Keep, Some(_)) => {
                expected.push(Call::Update {
                    fields: set.clone(),
                    bytes: 0,
                });
                model
                    .sessions
                    .insert(sent.clone().unwrap(), stored_after.clone());
                // The cookie is refreshed once per interval (a minute),
                // which no sequence lasts.
                Some(CookieChange::None)
            }
        };
        let actual: Vec<Call> = calls
            .lock()
            .iter()
            .map(|call| match call {
                Call::Create { fields, .. } => Call::Create {
                    fields: sorted_fields(fields),
                    bytes: 0,
                },
                Call::Update { fields, .. } => Call::Update {
                    fields: sorted_fields(fields),
                    bytes: 0,
                },
                other => other.clone(),
            })
            .collect();
        assert_eq!(actual, expected, "{context}: store calls");
        match expected_change {
            Some(expected) => assert_eq!(change, expected, "{context}: cookie"),
            None => {
                // A new id: a cookie value never issued before, holding the
                // state the request left.
                let CookieChange::Set(value) = &change else {
                    panic!("{context}: expected a new cookie, got {change:?}");
                };
                assert!(
                    !model.issued.contains(value) && Some(value) != sent.as_ref(),
                    "{context}: a reissued cookie value"
                );
                model.issued.push(value.clone());
                model.sessions.insert(value.clone(), stored_after);
            }
        }
    }
    // Every session ever issued reads back as the model says.
    for value in model.issued.clone() {
        let mut reader = client.fresh();
        reader.cookie = Some(value.clone());
        calls.lock().clear();
        let answer = reader.get("/read").await;
        assert_eq!(answer.status, 200);
        let (seen, is_new): (View, bool) = answer.extension().expect("the reader's report");
        match model.sessions.get(&value) {
            Some(stored) => {
                assert!(!is_new, "a live session read as new");
                assert_eq!(seen, stored.view(), "read back");
            }
            None => {
                assert!(is_new, "a dead session was adopted");
                assert_eq!(seen, View::defaults(), "a dead session's data came back");
            }
        }
        let writes = calls
            .lock()
            .iter()
            .filter(|c| !matches!(c, Call::Load { .. }))
            .count();
        assert_eq!(writes, 0, "a read-only request wrote");
    }
}

// ---------------------------------------------------------------------------
// Concurrent writers of different fields.

/// Eight independent counters.
#[derive(SessionState, Debug)]
#[session(namespace = "conc")]
pub struct Conc {
    pub f0: u64,
    pub f1: u64,
    pub f2: u64,
    pub f3: u64,
    pub f4: u64,
    pub f5: u64,
    pub f6: u64,
    pub f7: u64,
}

/// Two more fields in another namespace of the same session.
#[derive(SessionState, Debug)]
#[session(namespace = "conc2")]
pub struct Conc2 {
    pub g0: Vec<u8>,
    pub g1: Option<String>,
}

/// The number of distinct fields writers can own.
pub const WRITABLE: usize = 10;

/// One writer: it owns `field` (0-7: `conc.f0`-`f7`, 8: `conc2.g0`,
/// 9: `conc2.g1`), loads when its batch `start` begins, and saves in batch
/// `release` (never before `start`).
#[derive(Debug, Clone)]
pub struct Writer {
    pub field: usize,
    pub value: u64,
    /// Write with `f_mut()` from the loaded value instead of `set_f()`.
    pub mutate: bool,
    pub start: usize,
    pub release: usize,
}

/// The channels that let the test hold a writer between its load and its
/// save.
struct Hold {
    writer: Writer,
    loaded: Mutex<Option<oneshot::Sender<()>>>,
    go: Mutex<Option<oneshot::Receiver<()>>>,
}

const INITIAL: u64 = 1000;

fn initial_g0() -> Vec<u8> {
    vec![0]
}

async fn init(mut a: TypedSession<Conc>, mut b: TypedSession<Conc2>) -> &'static str {
    a.set_f0(INITIAL);
    a.set_f1(INITIAL + 1);
    a.set_f2(INITIAL + 2);
    a.set_f3(INITIAL + 3);
    a.set_f4(INITIAL + 4);
    a.set_f5(INITIAL + 5);
    a.set_f6(INITIAL + 6);
    a.set_f7(INITIAL + 7);
    b.set_g0(initial_g0());
    b.set_g1(Some("init".to_owned()));
    "ok"
}

async fn write_one(
    Extension(hold): Extension<Arc<Hold>>,
    mut a: TypedSession<Conc>,
    mut b: TypedSession<Conc2>,
) -> &'static str {
    if let Some(loaded) = hold.loaded.lock().take() {
        let _ = loaded.send(());
    }
    let go = hold.go.lock().take();
    if let Some(go) = go {
        let _ = go.await;
    }
    let w = &hold.writer;
    let v = w.value;
    if w.mutate {
        match w.field {
            0 => *a.f0_mut() += v,
            1 => *a.f1_mut() += v,
            2 => *a.f2_mut() += v,
            3 => *a.f3_mut() += v,
            4 => *a.f4_mut() += v,
            5 => *a.f5_mut() += v,
            6 => *a.f6_mut() += v,
            7 => *a.f7_mut() += v,
            8 => b.g0_mut().push(v as u8),
            _ => {
                let old = b.g1().as_deref().unwrap_or("").to_owned();
                *b.g1_mut() = Some(format!("{old}+{v}"));
            }
        }
    } else {
        match w.field {
            0 => a.set_f0(v),
            1 => a.set_f1(v),
            2 => a.set_f2(v),
            3 => a.set_f3(v),
            4 => a.set_f4(v),
            5 => a.set_f5(v),
            6 => a.set_f6(v),
            7 => a.set_f7(v),
            8 => b.set_g0(vec![v as u8; 3]),
            _ => b.set_g1(Some(v.to_string())),
        }
    }
    "ok"
}

/// What every field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct All {
    f: [u64; 8],
    g0: Vec<u8>,
    g1: Option<String>,
}

async fn read_all(a: TypedSession<Conc>, b: TypedSession<Conc2>) -> Extension<All> {
    Extension(All {
        f: [
            *a.f0(),
            *a.f1(),
            *a.f2(),
            *a.f3(),
            *a.f4(),
            *a.f5(),
            *a.f6(),
            *a.f7(),
        ],
        g0: b.g0().clone(),
        g1: b.g1().clone(),
    })
}

/// The router of the concurrent-writers check.
pub fn writers_router(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/init", get(init))
        .route("/write", get(write_one))
        .route("/all", get(read_all))
        .layer(SessionLayer::new(store))
}

/// Runs `writers` on one session in batches: in batch `b`, the writers
/// that start in `b` load (all of them, concurrently, and wait), then the
/// writers released in `b` save, concurrently, their releases sent in the
/// given order. Every write must survive.
pub async fn check_writers(store: Arc<dyn SessionStore>, writers: &[Writer]) {
    let mut client = Client::new(writers_router(store));
    assert_eq!(client.get("/init").await.status, 200);
    assert!(client.cookie.is_some(), "a session");
    let batches = writers.iter().map(|w| w.release).max().unwrap_or(0) + 1;
    let mut held = HashMap::new();
    for batch in 0..batches {
        let mut loads = Vec::new();
        for (index, writer) in writers.iter().enumerate() {
            if writer.start != batch {
                continue;
            }
            let (loaded_tx, loaded_rx) = oneshot::channel();
            let (go_tx, go_rx) = oneshot::channel();
            let hold = Arc::new(Hold {
                writer: writer.clone(),
                loaded: Mutex::new(Some(loaded_tx)),
                go: Mutex::new(Some(go_rx)),
            });
            let mut extensions = http::Extensions::new();
            extensions.insert(hold);
            let mut client = client.clone();
            let task = tokio::spawn(async move { client.send("/write", extensions).await });
            held.insert(index, (go_tx, task));
            loads.push(loaded_rx);
        }
        for loaded in loads {
            loaded.await.expect("the writer loaded");
        }
        let mut running = Vec::new();
        for (index, writer) in writers.iter().enumerate() {
            if writer.release == batch {
                let (go, task) = held.remove(&index).expect("held writer");
                go.send(()).expect("the writer waits");
                running.push((writer, task));
            }
        }
        for (writer, task) in running {
            let (answer, change) = task.await.expect("writer task");
            assert_eq!(answer.status, 200, "{writer:?}: {}", answer.body);
            // The session keeps its cookie; within the refresh interval it
            // is not re-sent.
            assert_eq!(change, CookieChange::None, "{writer:?}");
        }
    }
    assert!(held.is_empty());

    let mut expected = All {
        f: std::array::from_fn(|i| INITIAL + i as u64),
        g0: initial_g0(),
        g1: Some("init".to_owned()),
    };
    for w in writers {
        let v = w.value;
        match (w.field, w.mutate) {
            (f @ 0..=7, true) => expected.f[f] += v,
            (f @ 0..=7, false) => expected.f[f] = v,
            (8, true) => expected.g0.push(v as u8),
            (8, false) => expected.g0 = vec![v as u8; 3],
            (_, true) => expected.g1 = Some(format!("init+{v}")),
            (_, false) => expected.g1 = Some(v.to_string()),
        }
    }
    let answer = client.get("/all").await;
    assert_eq!(answer.status, 200);
    let all: All = answer.extension().expect("the reader's report");
    assert_eq!(all, expected, "a write was lost: {writers:?}");
}
