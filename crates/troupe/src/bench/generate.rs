//! The benchmark's data set: B2B product usage, deterministic from a seed, sized by the number of
//! events, produced as command batches (never all in memory).
//!
//! Companies get users by a Zipf-like law (a few big accounts, a long tail); users belong to one
//! or two teams of their company and sometimes switch their active team; a third arrive
//! anonymously and identify after their first session; sessions of 3–30 events with gaps of
//! seconds to minutes, spread over `days` days; ~50 event names with skewed frequencies, some
//! properties of high cardinality.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, ProfileOp, Properties, TrackEvent};

/// The funnel the benchmark asks about: frequent, less frequent, rare.
pub const FUNNEL: [&str; 3] = ["Signed In", "Project Created", "Invited Teammate"];
pub const RETURN_EVENT: &str = "Chart Created";

/// ~50 names; earlier ones are more frequent.
const CATALOGUE: &[&str] = &[
    "Dashboard Viewed",
    "Chart Created",
    "Chart Viewed",
    "Project Created",
    "Report Exported",
    "Comment Added",
    "Search Performed",
    "Filter Applied",
    "Invited Teammate",
    "Integration Connected",
    "Billing Viewed",
    "Settings Changed",
    "File Uploaded",
    "Notification Opened",
    "Query Run",
    "Alert Created",
    "Alert Triggered",
    "Annotation Added",
    "Cohort Created",
    "Dataset Imported",
    "Dashboard Shared",
    "Dashboard Created",
    "Template Used",
    "API Key Created",
    "Webhook Added",
    "Role Changed",
    "SSO Configured",
    "Plan Upgraded",
    "Plan Downgraded",
    "Invoice Downloaded",
    "Help Opened",
    "Tour Started",
    "Tour Completed",
    "Feedback Sent",
    "Feature Flag Toggled",
    "Experiment Started",
    "Experiment Stopped",
    "Session Recorded",
    "Heatmap Viewed",
    "Funnel Built",
    "Retention Viewed",
    "Export Scheduled",
    "Theme Changed",
    "Shortcut Used",
    "Mobile App Opened",
    "Workspace Created",
    "Workspace Archived",
    "Password Reset",
    "Two Factor Enabled",
    "Logged Out",
];
const PLANS: &[&str] = &["free", "free", "pro", "pro", "enterprise"];
const INDUSTRIES: &[&str] = &["SaaS", "Fintech", "Retail", "Healthcare", "Media", "Logistics", "Energy"];
const COUNTRIES: &[&str] = &["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA"];

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub events: u64,
    pub seed: u64,
    pub days: i64,
    pub end: DateTime<Utc>,
}

impl Shape {
    pub fn companies(&self) -> usize {
        (self.events / 2000).max(10) as usize
    }

    pub fn users(&self) -> usize {
        (self.events / 100).max(50) as usize
    }
}

struct User {
    company: usize,
    teams: Vec<String>,
    anonymous: bool,
    seen: bool,
    identified: bool,
}

/// Produces the commands batch by batch.
pub struct Generator {
    shape: Shape,
    rng: StdRng,
    users: Vec<User>,
    user_weights: Vec<f64>,
    name_weights: Vec<f64>,
    companies_described: bool,
    emitted: u64,
}

impl Generator {
    pub fn new(shape: Shape) -> Self {
        let mut rng = StdRng::seed_from_u64(shape.seed);
        let company_weights = zipf(shape.companies(), 1.1);
        let mut team_counts = vec![0usize; shape.companies()];
        let users: Vec<User> = (0..shape.users())
            .map(|_| {
                let company = pick(&mut rng, &company_weights);
                team_counts[company] += 1;
                User { company, teams: Vec::new(), anonymous: rng.gen_bool(0.3), seen: false, identified: false }
            })
            .collect();
        // Teams of ~8 users; a user is in one or two of its company's teams.
        let mut users = users;
        for u in &mut users {
            let teams = team_counts[u.company] / 8 + 1;
            let first = rng.gen_range(0..teams);
            u.teams.push(format!("c{}-t{first}", u.company));
            if teams > 1 && rng.gen_bool(0.3) {
                let second = (first + 1 + rng.gen_range(0..teams - 1)) % teams;
                u.teams.push(format!("c{}-t{second}", u.company));
            }
        }
        let user_weights = zipf(users.len(), 0.7);
        Generator {
            shape,
            rng,
            users,
            user_weights,
            name_weights: zipf(CATALOGUE.len(), 0.9),
            companies_described: false,
            emitted: 0,
        }
    }

    /// The next commands, about `size` events' worth; empty when done.
    pub fn next_batch(&mut self, size: usize) -> Vec<Command> {
        let mut out = Vec::with_capacity(size + 64);
        if !self.companies_described {
            self.describe_companies(&mut out);
            self.companies_described = true;
        }
        while self.emitted < self.shape.events && out.len() < size {
            self.session(&mut out);
        }
        out
    }

    fn describe_companies(&mut self, out: &mut Vec<Command>) {
        for c in 0..self.shape.companies() {
            let properties = json!({
                "name": format!("Company {c}"),
                "plan": PLANS[self.rng.gen_range(0..PLANS.len())],
                "industry": INDUSTRIES[self.rng.gen_range(0..INDUSTRIES.len())],
                "employees": self.rng.gen_range(5..5000),
            });
            out.push(Command::GroupProfile {
                group_type: "company".into(),
                group_key: format!("c{c}"),
                name: Some(format!("Company {c}")),
                op: ProfileOp::Set(object(properties)),
            });
        }
    }

    fn session(&mut self, out: &mut Vec<Command>) {
        let u = pick(&mut self.rng, &self.user_weights);
        let distinct_id = self.distinct_id(u);
        if !self.users[u].seen {
            self.first_sight(u, &distinct_id, out);
        } else if self.users[u].teams.len() > 1 && self.rng.gen_bool(0.2) {
            // Switch the active team: later events carry the new one, earlier ones keep theirs.
            let team = self.users[u].teams[self.rng.gen_range(0..self.users[u].teams.len())].clone();
            out.push(membership(&distinct_id, "active_team", MembershipOp::Set(vec![team])));
        }
        let span = self.shape.days * 86_400;
        let mut at = self.shape.end - Duration::seconds(self.rng.gen_range(0..span));
        let length = self.rng.gen_range(3..30);
        for i in 0..length {
            if self.emitted >= self.shape.events {
                break;
            }
            let name = if i == 0 { FUNNEL[0] } else { CATALOGUE[pick(&mut self.rng, &self.name_weights)] };
            let mut properties = object(json!({
                "$current_url": format!("/p/{}", self.rng.gen_range(0..100_000)),
                "duration_ms": self.rng.gen_range(10..5000),
            }));
            if self.rng.gen_bool(0.5) {
                properties
                    .insert("source".into(), Value::from(["ads", "seo", "email", "direct"][self.rng.gen_range(0..4)]));
            }
            out.push(Command::Track(TrackEvent {
                event: name.into(),
                distinct_id: distinct_id.clone(),
                timestamp: Some(at),
                properties,
                ..TrackEvent::default()
            }));
            self.emitted += 1;
            at += Duration::seconds(self.rng.gen_range(5..300));
        }
        if self.users[u].anonymous && !self.users[u].identified {
            out.push(Command::Identify { anon_distinct_id: distinct_id, distinct_id: format!("u{u}") });
            self.users[u].identified = true;
        }
    }

    fn distinct_id(&self, u: usize) -> String {
        let user = &self.users[u];
        if user.anonymous && !user.identified {
            format!("anon-{u}")
        } else {
            format!("u{u}")
        }
    }

    fn first_sight(&mut self, u: usize, distinct_id: &str, out: &mut Vec<Command>) {
        let user = &mut self.users[u];
        user.seen = true;
        out.push(membership(distinct_id, "company", MembershipOp::Set(vec![format!("c{}", user.company)])));
        for team in &user.teams {
            out.push(membership(distinct_id, "team", MembershipOp::Add(team.clone())));
        }
        out.push(membership(distinct_id, "active_team", MembershipOp::Set(vec![user.teams[0].clone()])));
        let person = json!({
            "email": format!("u{u}@c{}.example", user.company),
            "country": COUNTRIES[self.rng.gen_range(0..COUNTRIES.len())],
        });
        out.push(Command::PersonProfile { distinct_id: distinct_id.to_string(), op: ProfileOp::Set(object(person)) });
    }
}

fn membership(distinct_id: &str, group_type: &str, op: MembershipOp) -> Command {
    Command::Membership { distinct_id: distinct_id.into(), group_type: group_type.into(), op }
}

fn object(v: Value) -> Properties {
    match v {
        Value::Object(o) => o,
        _ => Properties::new(),
    }
}

/// Cumulative weights 1/rank^s.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    (0..n)
        .map(|i| {
            total += 1.0 / ((i + 1) as f64).powf(s);
            total
        })
        .collect()
}

fn pick(rng: &mut StdRng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let x = rng.gen_range(0.0..total);
    cumulative.partition_point(|&c| c <= x).min(cumulative.len().saturating_sub(1))
}
