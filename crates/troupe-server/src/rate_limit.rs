//! Rate limits: token buckets (GCRA, by `governor`) counted in commands (events and profile
//! writes), per project and per distinct id within a project, and sign-in attempts per client
//! address. A request over a limit stores nothing and is answered 429 with `Retry-After` in
//! its protocol's error shape; every retrying client troupe speaks with honours that header
//! (shared/CLIENT-WIRE.md).
//!
//! The defaults are far above what one machine ingests (the benchmark's ~150k events/s stays
//! under the project limit) and far above what one person does (Amplitude throttles a user at
//! 30 events/s); they stop a runaway script or a hostile key holder, not a busy product.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use troupe_core::{Command, ProjectId};

use crate::error::ApiError;

/// One bucket: a sustained rate and the burst it may spend at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Quota {
        let per_second = NonZeroU32::new(self.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second).allow_burst(burst)
    }
}

/// The limits (the binary's `config.rs` fills them from flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// `false` turns every limit off.
    pub enabled: bool,
    /// Commands per project, unless the project has its own rate.
    pub project: Rate,
    /// Per project by name, overriding [`Self::project`].
    pub projects: HashMap<String, Rate>,
    /// Commands per distinct id within a project.
    pub distinct_id: Rate,
    /// Sign-in and first-run setup attempts per minute per client address, after a burst of
    /// [`SIGN_IN_BURST`].
    pub sign_in_per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            project: Rate { per_second: 500_000, burst: 1_000_000 },
            projects: HashMap::new(),
            distinct_id: Rate { per_second: 100, burst: 1_000 },
            sign_in_per_minute: 10,
        }
    }
}

/// Sign-in attempts one address may make at once.
pub const SIGN_IN_BURST: u32 = 10;

fn sign_in_quota(per_minute: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(SIGN_IN_BURST).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The buckets of a running server.
pub struct RateLimiter {
    settings: RateLimitSettings,
    projects: RwLock<HashMap<ProjectId, Arc<DefaultDirectRateLimiter>>>,
    distinct_ids: DefaultKeyedRateLimiter<(ProjectId, String)>,
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        RateLimiter {
            distinct_ids: DefaultKeyedRateLimiter::dashmap(settings.distinct_id.quota()),
            sign_in: DefaultKeyedRateLimiter::dashmap(sign_in_quota(settings.sign_in_per_minute)),
            projects: RwLock::new(HashMap::new()),
            settings,
        }
    }

    /// Take the tokens of a write of `commands` to project `project` (named `name`); the
    /// error is the 429. `per_distinct_id` is `false` for writes authenticated with the secret
    /// key (a historical import sends many events of one person at once).
    pub fn check_write(
        &self,
        project: ProjectId,
        name: &str,
        commands: &[Command],
        per_distinct_id: bool,
    ) -> Result<(), ApiError> {
        if !self.settings.enabled || commands.is_empty() {
            return Ok(());
        }
        if per_distinct_id {
            let mut counts: HashMap<&str, u32> = HashMap::new();
            for id in commands.iter().filter_map(Command::distinct_id) {
                *counts.entry(id).or_default() += 1;
            }
            for (id, n) in counts {
                let key = (project, id.to_string());
                let n = clamp(n, self.settings.distinct_id.burst);
                if let Ok(Err(not_until)) = self.distinct_ids.check_key_n(&key, n) {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Err(limited(format!("distinct id '{id}'"), wait));
                }
            }
        }
        self.check_project(project, name, commands.len())
    }

    /// Take `n` writes from the project's bucket alone (a secret-key import).
    pub fn check_project(&self, project: ProjectId, name: &str, n: usize) -> Result<(), ApiError> {
        if !self.settings.enabled || n == 0 {
            return Ok(());
        }
        let rate = self.settings.projects.get(name).copied().unwrap_or(self.settings.project);
        let bucket = self.project_bucket(project, rate);
        let n = clamp(u32::try_from(n).unwrap_or(u32::MAX), rate.burst);
        if let Ok(Err(not_until)) = bucket.check_n(n) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(limited(format!("project '{name}'"), wait));
        }
        Ok(())
    }

    /// Take a sign-in attempt of `client` (`None`: the address is not known, as in the
    /// in-process router of tests; nothing is limited).
    pub fn check_sign_in(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(client) = client.filter(|_| self.settings.enabled) else { return Ok(()) };
        self.sign_in.check_key(&client).map_err(|not_until| {
            limited(
                "sign-in attempts from this address".into(),
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Forget buckets that are full again (idle distinct ids and addresses); called now and
    /// then so that the map does not grow with every id ever seen.
    pub fn forget_idle(&self) {
        self.distinct_ids.retain_recent();
        self.sign_in.retain_recent();
        self.distinct_ids.shrink_to_fit();
        self.sign_in.shrink_to_fit();
    }

    fn project_bucket(&self, project: ProjectId, rate: Rate) -> Arc<DefaultDirectRateLimiter> {
        if let Some(bucket) = self.projects.read().unwrap_or_else(|p| p.into_inner()).get(&project) {
            return Arc::clone(bucket);
        }
        let mut buckets = self.projects.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(buckets.entry(project).or_insert_with(|| Arc::new(DefaultDirectRateLimiter::direct(rate.quota()))))
    }
}

/// The address a request came from, when the server runs with connect info (`troupe serve`
/// does; the in-process router of tests does not, and then nothing is limited by address).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(ClientAddr(peer.map(|axum::extract::ConnectInfo(addr)| addr.ip())))
    }
}

/// A write larger than a bucket's burst takes the whole burst (it could never pass otherwise,
/// and its client would retry it forever).
fn clamp(n: u32, burst: u32) -> NonZeroU32 {
    NonZeroU32::new(n.min(burst.max(1))).unwrap_or(NonZeroU32::MIN)
}

fn limited(scope: String, wait: Duration) -> ApiError {
    // Whole seconds, rounded up, at least one: what `Retry-After` can say.
    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited { scope, retry_after: retry_after.max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_core::TrackEvent;

    fn track(id: &str) -> Command {
        Command::Track(TrackEvent { event: "e".into(), distinct_id: id.into(), ..TrackEvent::default() })
    }

    fn settings(user: u32, project: u32) -> RateLimitSettings {
        RateLimitSettings {
            project: Rate { per_second: project, burst: project },
            distinct_id: Rate { per_second: user, burst: user },
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn a_distinct_id_over_its_burst_is_refused_with_a_retry_after() {
        let limiter = RateLimiter::new(settings(3, 1000));
        assert!(limiter.check_write(1, "p", &[track("a"), track("a"), track("a")], true).is_ok());
        match limiter.check_write(1, "p", &[track("a")], true) {
            Err(ApiError::RateLimited { scope, retry_after }) => {
                assert_eq!((scope.as_str(), retry_after), ("distinct id 'a'", 1));
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        // Another id, another project, and the secret key's writes are not held back.
        assert!(limiter.check_write(1, "p", &[track("b")], true).is_ok());
        assert!(limiter.check_write(2, "q", &[track("a")], true).is_ok());
        assert!(limiter.check_write(1, "p", &[track("a")], false).is_ok());
    }

    #[test]
    fn a_project_over_its_rate_is_refused_and_overrides_apply_by_name() {
        let mut s = settings(1000, 5);
        s.projects.insert("big".into(), Rate { per_second: 100, burst: 100 });
        let limiter = RateLimiter::new(s);
        let ten: Vec<Command> = (0..10).map(|i| track(&i.to_string())).collect();
        // Larger than the burst: takes the whole burst once, then is refused.
        assert!(limiter.check_write(1, "small", &ten, true).is_ok());
        assert!(matches!(limiter.check_write(1, "small", &ten[..1], true), Err(ApiError::RateLimited { .. })));
        assert!(limiter.check_write(2, "big", &ten, true).is_ok());
        assert!(limiter.check_write(2, "big", &ten, true).is_ok());
    }

    #[test]
    fn disabled_limits_never_refuse() {
        let limiter = RateLimiter::new(RateLimitSettings { enabled: false, ..settings(1, 1) });
        for _ in 0..100 {
            assert!(limiter.check_write(1, "p", &[track("a"), track("a")], true).is_ok());
            assert!(limiter.check_sign_in(Some(IpAddr::from([127, 0, 0, 1]))).is_ok());
        }
    }

    #[test]
    fn sign_in_attempts_are_counted_per_address() {
        let limiter = RateLimiter::new(RateLimitSettings { sign_in_per_minute: 1, ..RateLimitSettings::default() });
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..SIGN_IN_BURST {
            assert!(limiter.check_sign_in(Some(a)).is_ok());
        }
        match limiter.check_sign_in(Some(a)) {
            Err(ApiError::RateLimited { retry_after, .. }) => assert!((1..=60).contains(&retry_after), "{retry_after}"),
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(limiter.check_sign_in(Some(b)).is_ok());
    }
}
