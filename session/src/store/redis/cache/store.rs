//! The store's side of the cache: its operations with the cache in front,
//! and the tracked connection the cache opens and keeps alive.

use super::*;

/// The store's operations with the cache in front.
impl RedisStore {
    pub(in crate::store::redis) async fn cached_load(
        &self,
        cache: &Arc<LocalCache>,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        if !cache.ready().await {
            cache.count_miss();
            return self.load_direct(id, namespace, fields).await;
        }
        let key = self.key(id);
        if let Some(hit) = cache.lookup(&key, namespace, fields) {
            return Ok(Some(hit));
        }
        let ticket = cache.begin(key, true);
        let loaded = self.load_direct(id, namespace, fields).await?;
        if let Some(ticket) = ticket {
            ticket.loaded(namespace, fields, loaded.as_ref());
        }
        Ok(loaded)
    }

    /// A new session is not cached: most are written once by the request
    /// that made them, and the next load caches it. (Caching it here would
    /// need the tracked transaction, which costs a brand-new session more
    /// than the load it saves.)
    pub(in crate::store::redis) async fn cached_create(
        &self,
        cache: &Arc<LocalCache>,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        // Dropped, the ticket keeps a concurrent load from caching what it
        // read before the create.
        let _ticket = self.ticket(cache, id, false).await;
        self.create_direct(id, writes, created_at, expires_at).await
    }

    pub(in crate::store::redis) async fn cached_update(
        &self,
        cache: &Arc<LocalCache>,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let ticket = self.ticket(cache, id, true).await;
        let written = self.update_direct(id, writes, expires_at).await?;
        if let (Some(ticket), true) = (ticket, written) {
            ticket.written(writes, expires_at);
        }
        Ok(written)
    }

    pub(in crate::store::redis) async fn cached_touch(
        &self,
        cache: &Arc<LocalCache>,
        id: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let ticket = self.ticket(cache, id, true).await;
        let touched = self.touch_direct(id, expires_at).await?;
        if let (Some(ticket), true) = (ticket, touched) {
            ticket.written(&[], Some(expires_at));
        }
        Ok(touched)
    }

    pub(in crate::store::redis) async fn cached_delete(
        &self,
        cache: &Arc<LocalCache>,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        // Dropped, the ticket drops the entry once the delete is done.
        let _ticket = self.ticket(cache, id, false).await;
        self.delete_direct(id).await
    }

    pub(in crate::store::redis) async fn cached_move_to(
        &self,
        cache: &Arc<LocalCache>,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let _from = self.ticket(cache, from, false).await;
        let _to = self.ticket(cache, to, false).await;
        self.move_to_direct(from, to, expires_at).await
    }

    /// Runs a script (an `EVALSHA` built by `evalsha`) so that its writes
    /// send this connection no invalidation and its first key stays
    /// tracked: `MULTI`, `CLIENT TRACKING OFF`, the script, `CLIENT
    /// TRACKING ON NOLOOP`, `EXISTS` of the key, `EXEC`, in one round trip.
    ///
    /// Redis 7.0 sends a tracking client invalidations for what its own
    /// scripts write, `NOLOOP` or not (it compares the script's client, not
    /// the caller), and stops tracking a key once it has reported it; with
    /// tracking off for the script, inside a transaction that no other
    /// client's command can enter, this store's entry stays valid after its
    /// own write, and the `EXISTS` tracks the key again so that the next
    /// write of another client is reported. Keys tracked before stay tracked
    /// (Redis drops a client's tracked keys lazily, when they change).
    pub(in crate::store::redis) async fn eval_tracked(
        &self,
        cache: &Arc<LocalCache>,
        script: &Script,
        command: &Cmd,
    ) -> Result<Value, StoreError> {
        let Some(Arg::Simple(key)) = command.args_iter().nth(3) else {
            return Err(StoreError::Malformed("a script call without a key".into()));
        };
        let mut off = redis::cmd("CLIENT");
        off.arg("TRACKING").arg("OFF");
        let mut exists = redis::cmd("EXISTS");
        exists.arg(key);
        let mut transaction = redis::pipe();
        transaction
            .atomic()
            .add_command(off)
            .add_command(command.clone())
            .add_command(tracking_on())
            .add_command(exists);
        // The cluster client would route `CLIENT TRACKING` by its
        // argument as if it were a key: the key's node, explicitly.
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
            Slot::for_key(key),
            SlotAddr::Master,
        ));
        let mut loaded = false;
        loop {
            let connection = cache.connection().await.map_err(backend)?;
            let result = match connection {
                RedisConnection::Single(c) => {
                    c.clone().req_packed_commands(&transaction, 5, 1).await
                }
                RedisConnection::Cluster(c) => {
                    c.clone()
                        .route_pipeline(transaction.clone(), 5, 1, route.clone())
                        .await
                }
            };
            let value = match result.map(|mut replies| replies.pop()) {
                // The replies of the commands inside: the script's is second.
                Ok(Some(Value::Array(mut replies))) if replies.len() == 4 => replies.swap_remove(1),
                Ok(_) => {
                    return Err(StoreError::Malformed(
                        "an EXEC reply of another shape".into(),
                    ));
                }
                Err(error) => {
                    cache.observe(&error);
                    return Err(backend(error));
                }
            };
            match value {
                Value::ServerError(error) if error.code() == "NOSCRIPT" && !loaded => {
                    loaded = true;
                    let load = match connection {
                        RedisConnection::Single(c) => script.load_async(&mut c.clone()).await,
                        RedisConnection::Cluster(c) => script.load_async(&mut c.clone()).await,
                    };
                    load.map_err(backend)?;
                }
                Value::ServerError(error) => return Err(backend(error.into())),
                value => return Ok(value),
            }
        }
    }

    /// A ticket for a write of `id`, when the cache is in service.
    pub(in crate::store::redis) async fn ticket<'c>(
        &self,
        cache: &'c Arc<LocalCache>,
        id: &SessionId,
        keep: bool,
    ) -> Option<Ticket<'c>> {
        if cache.ready().await {
            cache.begin(self.key(id), keep)
        } else {
            None
        }
    }
}

/// Opens the tracked connection: RESP3, its pushes handled by the cache.
pub(super) async fn open(
    origin: &Origin,
    cache: Weak<LocalCache>,
) -> Result<RedisConnection, RedisError> {
    tokio::spawn(heartbeat(cache.clone()));
    let on_push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
        if let Some(cache) = cache.upgrade() {
            cache.on_push(push);
        }
        Ok(())
    };
    match origin {
        Origin::Single(url) => {
            let info = url.as_str().into_connection_info()?;
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let client = redis::Client::open(info.set_redis_settings(settings))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(3)
                .set_max_delay(std::time::Duration::from_secs(1))
                .set_push_sender(on_push);
            let manager = ConnectionManager::new_with_config(client, config).await?;
            Ok(RedisConnection::Single(manager))
        }
        Origin::Cluster(urls) => {
            let client = ClusterClientBuilder::new(urls.iter().map(String::as_str))
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(3)
                .min_retry_wait(50)
                .max_retry_wait(500)
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(on_push)
                .build()?;
            Ok(RedisConnection::Cluster(
                client.get_async_connection().await?,
            ))
        }
    }
}

/// Pings the tracked connection until the cache is gone: an answer renews
/// the cache's lease, a failure is a gap. Also logs the counters at debug level once a minute.
pub(super) async fn heartbeat(cache: Weak<LocalCache>) {
    for beat in 1_u64.. {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        if beat % 60 == 0 {
            tracing::debug!(stats = ?cache.stats(), "session cache");
        }
        let Some(connection) = cache.connection.get() else {
            continue;
        };
        let ping = redis::cmd("PING");
        let answered = match connection {
            RedisConnection::Single(c) => ping.query_async::<Value>(&mut c.clone()).await,
            RedisConnection::Cluster(c) => {
                let every_node = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllNodes,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                c.clone().route_command(ping, every_node).await
            }
        };
        match answered {
            Ok(_) => cache.heard.store(cache.millis(), Ordering::Release),
            Err(error) => cache.observe(&error),
        }
    }
}

/// `CLIENT TRACKING ON NOLOOP`, off first so that it starts afresh.
pub(super) async fn enable_tracking(connection: &RedisConnection) -> Result<(), RedisError> {
    let mut off = redis::cmd("CLIENT");
    off.arg("TRACKING").arg("OFF");
    match connection {
        RedisConnection::Single(c) => {
            let mut c = c.clone();
            redis::pipe()
                .add_command(off)
                .add_command(tracking_on())
                .query_async::<()>(&mut c)
                .await
        }
        RedisConnection::Cluster(c) => {
            let mut c = c.clone();
            let every_node = || {
                RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllNodes,
                    Some(ResponsePolicy::AllSucceeded),
                ))
            };
            c.route_command(off, every_node()).await?;
            c.route_command(tracking_on(), every_node()).await.map(drop)
        }
    }
}

pub(super) fn tracking_on() -> Cmd {
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING").arg("ON").arg("NOLOOP");
    on
}
