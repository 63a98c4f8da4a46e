//! The HTTP test suite, generic over the store: every store runs the same
//! cases over real HTTP (`axum::serve` on 127.0.0.1:0 and a real client) by
//! invoking [`http_suite!`] with an expression that makes the store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod app;
pub mod browser;
pub mod cases;
pub mod cycle_cases;
pub mod dict_cases;
pub mod expiry_cases;
pub mod format_cases;
pub mod http_cases;
pub mod index_cases;
pub mod reset_cases;
pub mod stores;

/// Expands to one module per group of cases (`cases`, `format_cases`, ...)
/// with one `#[tokio::test]` per case, each calling `$make.await` for a
/// fresh store value (stores may share one backend: every case uses its own
/// sessions).
#[macro_export]
macro_rules! http_suite {
    ($make:expr) => {
        $crate::http_suite!(@cases $make, cases;
            counter_round_trip,
            default_cookie_attributes_and_headers,
            builder_options_reach_the_cookie,
            no_store_io_and_no_cookie_for_untouched_or_read_only_new_sessions,
            well_formed_unknown_id_is_not_adopted,
            malformed_cookies_are_ignored,
            destroy_deletes_the_record_and_expires_the_cookie,
            cycle_id_keeps_data_and_kills_the_old_id,
            twelve_concurrent_field_writers_all_survive,
            two_namespaces_in_one_handler,
            old_sessions_survive_fields_added_and_removed,
            logout_is_not_undone_by_a_slower_request,
            large_field_is_not_rewritten_by_small_writes,
            inactivity_expiry_is_enforced,
            absolute_timeout_is_enforced,
            signed_cookies_reject_tampering_and_accept_rotated_keys,
            corrupt_field_is_reset_not_fatal,
            same_state_twice_at_once_is_rejected_and_sequential_sees_changes,
            reset_and_take_restore_defaults,
            renamed_default_and_skipped_fields,
            read_only_requests_refresh_expiry_without_writing,
            writes_refresh_the_cookie_once_per_interval,
            streaming_responses_pass_through,
        );
        $crate::http_suite!(@cases $make, format_cases;
            values_survive_changes_inside_field_types,
            switching_codecs_keeps_sessions_and_rewrites_on_write,
            untouched_fields_are_never_decoded,
        );
        $crate::http_suite!(@cases $make, http_cases;
            expiry_date_passing_over_axum_serve,
            expiry_date_passing_in_process,
            set_expiry_to_a_dead_date_issues_no_cookie,
            refused_cookies_are_removed,
            expired_session_cookie_is_removed,
            issued_cookies_carry_expires,
            server_errors_save_nothing,
            store_error_during_save_is_a_500,
            stacked_layers_fail_loudly,
            non_ascii_neighbour_cookies_do_not_hide_ours,
        );
        $crate::http_suite!(@cases $make, expiry_cases;
            remembered_expiry_survives_later_requests_and_cycles,
            remembered_expiry_slides_with_its_own_limit,
            remembered_expiry_is_bounded_by_the_absolute_timeout,
            writers_racing_a_login_lose_nothing,
            old_id_cannot_read_the_new_session,
            logout_still_wins_over_writers_racing_a_login,
            writes_after_the_forward_window_are_dropped,
        );
        $crate::http_suite!(@cases $make, dict_cases;
            dict_round_trip,
            dict_untouched_does_no_store_io_and_reads_one_namespace,
            dict_writers_of_different_keys_all_survive,
            dict_one_key_changed_among_1000_writes_only_that_key,
            dict_corrupt_value_reads_as_none_and_is_replaced,
            dict_bad_key_names_are_errors_and_any_utf8_works,
            dict_and_typed_namespaces_together,
            dict_controls_cycle_and_destroy_every_namespace,
            dict_logout_is_not_undone_by_a_slower_request,
            dict_store_faults_are_500s_and_garbage_is_not_fatal,
            dict_taken_again_after_drop_sees_changes,
        );
        $crate::http_suite!(@cases $make, reset_cases;
            unusable_loads_reset_the_session,
            store_failures_still_fail_and_keep_the_session,
            writes_past_the_load_limit_are_refused,
            set_expiry_values_are_clamped,
            rejections_name_no_types,
        );
        $crate::http_suite!(@cases $make, cycle_cases;
            a_login_racing_another_cycle_keeps_its_writes_to_itself,
            a_login_failing_halfway_leaves_the_old_id_logged_out,
        );
    };
    (@cases $make:expr, $module:ident; $($case:ident),* $(,)?) => {
        $crate::http_cases_module!($make, $module; $($case),*);
    };
}

/// The HTTP cases of the session index (log out everywhere), for the stores
/// that keep one, as [`http_suite!`] expands them.
#[macro_export]
macro_rules! http_index_suite {
    ($make:expr) => {
        $crate::http_cases_module!($make, index_cases;
            index_lists_the_devices_of_the_current_user,
            index_logout_others_keeps_only_the_current,
            index_logout_everywhere_inside_and_outside_requests,
            index_follows_switches_clears_logouts_and_cycles,
            index_work_only_on_writes_of_the_index_field,
            index_never_lists_expired_sessions,
        );
    };
}

/// One module of cases: one `#[tokio::test]` per case.
#[doc(hidden)]
#[macro_export]
macro_rules! http_cases_module {
    ($make:expr, $module:ident; $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store: ::std::sync::Arc<dyn ::typed_sessions::SessionStore> =
                        ::std::sync::Arc::new($make.await);
                    $crate::$module::$case(store).await;
                }
            )*
        }
    };
}
pub mod chaos;
pub mod inproc;
pub mod model;
