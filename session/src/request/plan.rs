//! What the save after the handler does, decided without a store: a pure
//! function of what the request found and what the handler asked, so every
//! rule of the per-request flow is unit-tested here, and the save only
//! carries the plan out.

use std::time::{Duration, SystemTime};

use crate::config::{Config, Expiry};

use super::Action;

/// What the save knows when it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// What the handler asked for the whole session.
    pub action: Action,
    /// The stored session the request's cookie named, if the store has it.
    pub live: Option<Live>,
    /// The request came with a cookie of ours (well-formed or not).
    pub had_cookie: bool,
    /// That cookie named an id the store did not know (or a session past
    /// its absolute timeout).
    pub refused: bool,
    /// The cookie was signed with an older key: the response re-signs it.
    pub old_key: bool,
    /// The handler changed some stored field.
    pub has_writes: bool,
    /// The expiry the handler chose with `set_expiry` in this request.
    pub chosen_expiry: Option<Expiry>,
    /// The layer's configured expiry.
    pub config_expiry: Expiry,
    /// The layer's absolute timeout.
    pub absolute_timeout: Option<Duration>,
    /// The time the save runs at.
    pub now: SystemTime,
}

/// The stored session's times and remembered expiry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    pub created_at: SystemTime,
    pub stored_expiry: SystemTime,
    /// The expiry an earlier request chose with `set_expiry`.
    pub remembered: Option<Expiry>,
}

/// One store step and the cookie that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// No store call; the removal cookie when `remove_cookie`.
    Nothing { remove_cookie: bool },
    /// Delete the session and remove its cookie: a logout, or its expiry
    /// date has passed.
    Delete,
    /// Create a session from the writes, expiring at `expires_at`; issue
    /// its cookie.
    Create { expires_at: SystemTime },
    /// Move the session to a new id expiring at `expires_at`, then write
    /// (when there are writes) to the new id; issue the new id's cookie.
    /// If the session is gone by then, writes start a session of their own.
    Cycle { expires_at: SystemTime },
    /// Write, moving the stored expiry to `refresh` when `Some`; the cookie
    /// is issued again exactly then.
    Update { refresh: Option<SystemTime> },
    /// Move the stored expiry to `expires_at` and issue the cookie again.
    Touch { expires_at: SystemTime },
}

/// The plan: the step, the expiry the session follows from now on, and
/// whether the handler's chosen expiry is stored with the writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub step: Step,
    pub expiry: Expiry,
    pub store_chosen: Option<Expiry>,
}

impl Facts {
    fn deadline(&self, created_at: SystemTime) -> Option<SystemTime> {
        self.absolute_timeout
            .and_then(|timeout| created_at.checked_add(timeout))
    }

    /// Decides the save.
    pub(crate) fn plan(&self) -> Plan {
        let now = self.now;
        // A chosen expiry is stored with the session (once, while it differs
        // from the stored one) and every later request follows it.
        let remembered = self.live.and_then(|live| live.remembered);
        let expiry = self
            .chosen_expiry
            .or(remembered)
            .unwrap_or(self.config_expiry);
        let store_chosen = self
            .chosen_expiry
            .filter(|chosen| Some(*chosen) != remembered);
        let plan = |step| Plan {
            step,
            expiry,
            store_chosen,
        };

        if self.action == Action::Destroy {
            return plan(match self.live {
                Some(_) => Step::Delete,
                None => Step::Nothing {
                    remove_cookie: self.had_cookie,
                },
            });
        }
        let Some(live) = self.live else {
            let expires_at = expiry.expires_at(now, self.deadline(now));
            // After an `AtDateTime` has passed, a session would be dead on
            // arrival: none is created.
            if !self.has_writes || Config::lifetime(expires_at, now).is_none() {
                return plan(Step::Nothing {
                    remove_cookie: self.refused,
                });
            }
            return plan(Step::Create { expires_at });
        };
        let fresh = expiry.expires_at(now, self.deadline(live.created_at));
        if Config::lifetime(fresh, now).is_none() {
            // Its date has passed (or the handler set one that has): the
            // session ends now rather than outliving its cookie or being
            // kept alive by one that outlives it.
            return plan(Step::Delete);
        }
        if self.action == Action::CycleId {
            return plan(Step::Cycle { expires_at: fresh });
        }
        // The store's expiry and the cookie's Max-Age move together, once
        // per refresh interval (or when the handler chose an expiry, or the
        // cookie needs signing with the current key); in between, writes
        // leave the stored expiry alone, so the cookie the browser holds
        // stays right and most responses carry no Set-Cookie at all.
        let refresh = self.chosen_expiry.is_some()
            || self.old_key
            || expiry.refresh_due(fresh, live.stored_expiry);
        plan(if self.has_writes || store_chosen.is_some() {
            Step::Update {
                refresh: refresh.then_some(fresh),
            }
        } else if refresh {
            Step::Touch { expires_at: fresh }
        } else {
            Step::Nothing {
                remove_cookie: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// A request with nothing in it, under a one-hour inactivity expiry.
    fn facts() -> Facts {
        Facts {
            action: Action::Keep,
            live: None,
            had_cookie: false,
            refused: false,
            old_key: false,
            has_writes: false,
            chosen_expiry: None,
            config_expiry: Expiry::OnInactivity(HOUR),
            absolute_timeout: None,
            now: now(),
        }
    }

    /// A stored session whose expiry was refreshed just now.
    fn live() -> Live {
        Live {
            created_at: now() - HOUR,
            stored_expiry: now() + HOUR,
            remembered: None,
        }
    }

    fn with_live(facts: Facts) -> Facts {
        Facts {
            live: Some(live()),
            had_cookie: true,
            ..facts
        }
    }

    #[test]
    fn nothing_to_do_sends_nothing() {
        assert_eq!(
            facts().plan().step,
            Step::Nothing {
                remove_cookie: false
            }
        );
        assert_eq!(
            with_live(facts()).plan().step,
            Step::Nothing {
                remove_cookie: false
            },
            "a read within the refresh interval"
        );
    }

    #[test]
    fn a_refused_cookie_is_removed_unless_a_session_is_created() {
        let refused = Facts {
            had_cookie: true,
            refused: true,
            ..facts()
        };
        assert_eq!(
            refused.plan().step,
            Step::Nothing {
                remove_cookie: true
            }
        );
        let step = Facts {
            has_writes: true,
            ..refused
        }
        .plan()
        .step;
        assert_eq!(
            step,
            Step::Create {
                expires_at: now() + HOUR
            }
        );
    }

    #[test]
    fn new_sessions_are_created_only_with_writes_and_a_future_date() {
        let writes = Facts {
            has_writes: true,
            ..facts()
        };
        assert_eq!(
            writes.plan().step,
            Step::Create {
                expires_at: now() + HOUR
            }
        );
        let past = Facts {
            config_expiry: Expiry::AtDateTime(now() - HOUR),
            ..writes
        };
        assert_eq!(
            past.plan().step,
            Step::Nothing {
                remove_cookie: false
            }
        );
        let capped = Facts {
            absolute_timeout: Some(Duration::from_secs(60)),
            ..writes
        };
        assert_eq!(
            capped.plan().step,
            Step::Create {
                expires_at: now() + Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn destroy_deletes_a_live_session_and_removes_any_cookie() {
        let destroy = Facts {
            action: Action::Destroy,
            has_writes: true,
            ..facts()
        };
        assert_eq!(with_live(destroy).plan().step, Step::Delete);
        assert_eq!(
            destroy.plan().step,
            Step::Nothing {
                remove_cookie: false
            }
        );
        let stale = Facts {
            had_cookie: true,
            refused: true,
            ..destroy
        };
        assert_eq!(
            stale.plan().step,
            Step::Nothing {
                remove_cookie: true
            }
        );
    }

    #[test]
    fn a_passed_date_or_absolute_timeout_ends_the_session() {
        let dated = with_live(Facts {
            config_expiry: Expiry::AtDateTime(now()),
            has_writes: true,
            ..facts()
        });
        assert_eq!(dated.plan().step, Step::Delete);
        let timed_out = with_live(Facts {
            absolute_timeout: Some(HOUR),
            ..facts()
        });
        assert_eq!(timed_out.plan().step, Step::Delete);
    }

    #[test]
    fn writes_move_the_expiry_once_per_refresh_interval() {
        let writes = with_live(Facts {
            has_writes: true,
            ..facts()
        });
        assert_eq!(writes.plan().step, Step::Update { refresh: None });
        let stale = Facts {
            live: Some(Live {
                stored_expiry: now() + HOUR / 2,
                ..live()
            }),
            ..writes
        };
        assert_eq!(
            stale.plan().step,
            Step::Update {
                refresh: Some(now() + HOUR)
            }
        );
        let read_only = Facts {
            has_writes: false,
            ..stale
        };
        assert_eq!(
            read_only.plan().step,
            Step::Touch {
                expires_at: now() + HOUR
            }
        );
        let old_key = with_live(Facts {
            old_key: true,
            ..facts()
        });
        assert_eq!(
            old_key.plan().step,
            Step::Touch {
                expires_at: now() + HOUR
            },
            "a cookie signed with an old key is signed again"
        );
    }

    #[test]
    fn cycle_moves_with_a_fresh_expiry() {
        let cycle = with_live(Facts {
            action: Action::CycleId,
            ..facts()
        });
        assert_eq!(
            cycle.plan().step,
            Step::Cycle {
                expires_at: now() + HOUR
            }
        );
        let new = Facts {
            live: None,
            has_writes: true,
            ..cycle
        };
        assert!(
            matches!(new.plan().step, Step::Create { .. }),
            "a new session is created under a fresh id anyway"
        );
    }

    #[test]
    fn a_chosen_expiry_is_stored_once_and_followed_after() {
        let month = Expiry::OnInactivity(HOUR * 24 * 30);
        let chosen = with_live(Facts {
            chosen_expiry: Some(month),
            ..facts()
        });
        let plan = chosen.plan();
        assert_eq!(plan.expiry, month);
        assert_eq!(plan.store_chosen, Some(month));
        assert_eq!(
            plan.step,
            Step::Update {
                refresh: Some(now() + HOUR * 24 * 30)
            },
            "stored with the refresh, even without other writes"
        );

        let remembered = Facts {
            live: Some(Live {
                remembered: Some(month),
                stored_expiry: now() + HOUR * 24 * 30,
                ..live()
            }),
            ..facts()
        };
        let later = remembered.plan();
        assert_eq!(later.expiry, month, "later requests follow it");
        assert_eq!(later.store_chosen, None);
        let again = Facts {
            chosen_expiry: Some(month),
            ..remembered
        }
        .plan();
        assert_eq!(again.store_chosen, None, "not stored twice");
        assert_eq!(
            again.step,
            Step::Touch {
                expires_at: now() + HOUR * 24 * 30
            }
        );
    }
}
