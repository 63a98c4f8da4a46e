//! A MongoStore whose client records every command it sends (the driver's
//! command monitoring), so a test can check what goes over the wire: how many
//! round trips a call costs, which hint and write concern it carries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use mongodb::bson::Document;
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use typed_sessions::store::mongodb::MongoStore;

/// The commands a client sent, in order: name and body.
#[derive(Clone, Default)]
pub struct CommandLog(Arc<Mutex<Vec<(String, Document)>>>);

impl CommandLog {
    /// Takes the commands recorded so far, leaving the log empty.
    pub fn take(&self) -> Vec<(String, Document)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Takes the commands recorded so far that write: what a write concern
    /// applies to.
    pub fn take_writes(&self) -> Vec<(String, Document)> {
        const WRITES: [&str; 6] = [
            "insert",
            "update",
            "delete",
            "findAndModify",
            "createIndexes",
            "commitTransaction",
        ];
        self.take()
            .into_iter()
            .filter(|(name, _)| WRITES.contains(&name.as_str()))
            .collect()
    }

    /// Takes the names of the commands recorded so far.
    pub fn take_names(&self) -> Vec<String> {
        self.take().into_iter().map(|(name, _)| name).collect()
    }
}

/// A store on a fresh collection of the server at `url` whose client logs
/// its commands, with `configure` applied; its TTL index is already in place
/// and the log empty.
pub async fn logged_store(
    url: &str,
    prefix: &str,
    configure: impl FnOnce(MongoStore) -> MongoStore,
) -> (MongoStore, CommandLog) {
    let log = CommandLog::default();
    let mut options = ClientOptions::parse(url).await.unwrap();
    let recorder = log.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            recorder
                .0
                .lock()
                .unwrap()
                .push((started.command_name, started.command));
        }
    }));
    let client = mongodb::Client::with_options(options).unwrap();
    let collection = client
        .database(super::DB)
        .collection(&super::fresh_collection(prefix));
    let store = configure(MongoStore::new(collection));
    store.ensure_index().await.unwrap();
    log.take();
    (store, log)
}
