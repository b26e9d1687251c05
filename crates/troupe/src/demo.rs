//! `troupe demo`: realistic B2B sample data, deterministic from a seed, written through the same
//! commands as real clients.
//!
//! Companies of skewed sizes that sign up over the period, teams inside them, users who arrive
//! anonymously and identify, join their company and teams, sometimes switch their active team (so
//! attribution visibly stays where it was stamped), and three months of product events. Accounts
//! differ the way real ones do: the plan sets how engaged a company is, which features it adopts
//! (so funnels do not all convert) and whether it churns (so retention falls, and some come back);
//! some free companies upgrade; profiles are updated at different times.

use std::fmt;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, ProfileOp, ProjectId, Properties, TrackEvent};
use troupe_store::Store;

use crate::config::DemoArgs;

const COMPANIES: &[&str] = &[
    "Acme Inc",
    "Globex",
    "Initech",
    "Umbrella Corp",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Aperture Science",
    "Black Mesa",
    "Vandelay Industries",
    "Pied Piper",
    "Massive Dynamic",
    "Oscorp",
    "Nakatomi",
    "Virtucon",
    "Dunder Mifflin",
    "Prestige Worldwide",
    "Bluth Company",
    "Sterling Cooper",
    "Monsters Inc",
    "Gekko & Co",
    "Wernham Hogg",
    "Los Pollos",
    "Krusty Krab",
];
const TEAMS: &[&str] = &["Engineering", "Design", "Sales", "Support", "Marketing", "Data"];
const FIRST: &[&str] =
    &["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Edsger", "Frances", "Hedy"];
const LAST: &[&str] =
    &["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Perlman", "Lamarr"];
const PLANS: &[&str] = &["free", "pro", "pro", "enterprise"];
const INDUSTRIES: &[&str] = &["SaaS", "Fintech", "Retail", "Healthcare", "Media", "Logistics"];
const COUNTRIES: &[&str] = &["US", "DE", "FR", "GB", "IN", "BR", "JP"];

/// Everyday events with their relative frequency.
const DAILY: &[(&str, u32)] = &[
    ("Signed In", 10),
    ("Viewed Dashboard", 14),
    ("Chart Created", 5),
    ("AI Chart Generated", 3),
    ("Report Exported", 3),
    ("Comment Added", 4),
    ("Project Created", 2),
    ("Invited Teammate", 1),
    ("Integration Connected", 1),
    ("Billing Viewed", 1),
];

#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub seed: u64,
    pub companies: usize,
    pub days: u32,
}

impl Default for DemoSpec {
    fn default() -> Self {
        DemoSpec { seed: 7, companies: 24, days: 90 }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub companies: usize,
    pub teams: usize,
    pub users: usize,
    pub events: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} companies, {} teams, {} users, {} events", self.companies, self.teams, self.users, self.events)
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let store = args.store.open().await?;
    let filled = fill_named(store.as_ref(), &args).await;
    store.close().await;
    filled
}

async fn fill_named(store: &dyn Store, args: &DemoArgs) -> Result<()> {
    let project = match store.projects().await?.into_iter().find(|p| p.name == args.project) {
        Some(p) => p,
        None => {
            let created = crate::project::create_with_keys(store, &args.project, None, None).await?;
            crate::project::print_keys(&created);
            created.project
        }
    };
    let spec = DemoSpec { seed: args.seed, companies: args.companies, days: args.days };
    let summary = fill(store, project.id, &spec).await?;
    println!("filled project '{}': {summary}", project.name);
    Ok(())
}

/// Generate the data and apply it in time order, in batches.
pub async fn fill(store: &dyn Store, project: ProjectId, spec: &DemoSpec) -> Result<Summary> {
    let (timeline, summary) = generate(spec, Utc::now());
    for chunk in timeline.chunks(2000) {
        let commands: Vec<Command> = chunk.iter().map(|(_, c)| c.clone()).collect();
        for result in store.apply(project, commands).await? {
            if let Err(e) = result {
                anyhow::bail!("demo data was refused: {e}");
            }
        }
    }
    Ok(summary)
}

/// Collects the data set as (time, command).
struct Timeline {
    rng: StdRng,
    seed: u64,
    items: Vec<(DateTime<Utc>, Command)>,
    event_seq: u64,
    summary: Summary,
}

impl Timeline {
    fn at(&mut self, t: DateTime<Utc>, command: Command) {
        self.items.push((t, command));
    }

    fn track(&mut self, t: DateTime<Utc>, who: &str, name: &str, props: Value) {
        self.event_seq += 1;
        self.summary.events += 1;
        let event = TrackEvent {
            event: name.into(),
            distinct_id: who.into(),
            // Deterministic ids: running the demo twice does not duplicate events.
            id: Some(format!("demo-{}-{}", self.seed, self.event_seq)),
            timestamp: Some(t),
            properties: as_props(props),
            ..TrackEvent::default()
        };
        self.at(t, Command::Track(event));
    }
}

/// The whole data set, sorted by time so memberships apply before the events that follow them.
fn generate(spec: &DemoSpec, now: DateTime<Utc>) -> (Vec<(DateTime<Utc>, Command)>, Summary) {
    let mut tl = Timeline {
        rng: StdRng::seed_from_u64(spec.seed),
        seed: spec.seed,
        items: Vec::new(),
        event_seq: 0,
        summary: Summary::default(),
    };
    let start = now - Duration::days(i64::from(spec.days));
    for index in 0..spec.companies {
        company(&mut tl, index, start, now, spec.days);
    }
    tl.items.sort_by_key(|(t, _)| *t);
    (tl.items, tl.summary)
}

fn company(tl: &mut Timeline, index: usize, start: DateTime<Utc>, now: DateTime<Utc>, days: u32) {
    let base = COMPANIES[index % COMPANIES.len()];
    let name = match index / COMPANIES.len() {
        0 => base.to_string(),
        n => format!("{base} {}", n + 1),
    };
    let key = slug(&name);
    let mut team_names: Vec<&str> = TEAMS.to_vec();
    team_names.shuffle(&mut tl.rng);
    team_names.truncate(tl.rng.gen_range(1..=4));
    let teams: Vec<String> = team_names.iter().map(|t| format!("{key}-{}", slug(t))).collect();
    let plan = PLANS[tl.rng.gen_range(0..PLANS.len())];
    let account = Account::draw(&mut tl.rng, plan, days);
    // Companies sign up over the first two thirds of the period: weekly cohorts to compare.
    let created = start + Duration::hours(tl.rng.gen_range(0..i64::from(days.max(3)) * 16));
    let props = json!({
        "name": name,
        "plan": plan,
        "industry": INDUSTRIES[tl.rng.gen_range(0..INDUSTRIES.len())],
        "employees": tl.rng.gen_range(5..2000),
        "country": COUNTRIES[tl.rng.gen_range(0..COUNTRIES.len())],
    });
    tl.at(created, group_op("company", &key, ProfileOp::Set(as_props(props))));
    for (team_key, team_name) in teams.iter().zip(&team_names) {
        let props = json!({"name": format!("{name} · {team_name}"), "company": key});
        tl.at(created, group_op("team", team_key, ProfileOp::Set(as_props(props.clone()))));
        // `active_team` names the team a user works in right now: same ids, same names.
        tl.at(created, group_op("active_team", team_key, ProfileOp::Set(as_props(props))));
    }
    tl.summary.companies += 1;
    tl.summary.teams += teams.len();

    // Zipf-like company sizes: a few large accounts, many small ones.
    let users = (40.0 / (index as f64 + 1.0).powf(0.8)).ceil() as usize + tl.rng.gen_range(1..4);
    let churned = account.churn_after.map(|d| created + Duration::days(d));
    for u in 0..users {
        user(tl, &key, &teams, u, created, now, days, &account, churned);
    }
    if let Some(upgrade) = account.upgrade_after {
        let at = created + Duration::days(upgrade);
        if at < now {
            tl.at(
                at,
                group_op("company", &key, ProfileOp::Set(as_props(json!({"plan": "pro", "upgraded_from": "free"})))),
            );
        }
    }
    // Seats are counted at different times, as a billing job would.
    let counted = now - Duration::minutes(tl.rng.gen_range(30..3 * 24 * 60));
    tl.at(counted.max(created), group_op("company", &key, ProfileOp::Set(as_props(json!({"seats": users})))));
}

/// How an account behaves, drawn from its plan.
struct Account {
    /// Chance a user is active on a given day.
    engagement: f64,
    /// Events the account never does (features it did not adopt).
    skipped: Vec<&'static str>,
    /// Days after signing up when the company stops using the product, if it churns.
    churn_after: Option<i64>,
    /// Days after churning when it comes back for a while, if it does.
    back_after: Option<i64>,
    /// Days after signing up when a free company moves to pro, if it does.
    upgrade_after: Option<i64>,
    /// Chance a user of the account stops using the product at some point.
    user_churn: f64,
}

impl Account {
    fn draw(rng: &mut StdRng, plan: &str, days: u32) -> Account {
        // (engagement range, chance to adopt invites / reports / AI, chance to churn)
        let (engagement, adopt, churn, user_churn) = match plan {
            "enterprise" => (0.55..0.9, [0.95, 0.9, 0.7], 0.05, 0.1),
            "pro" => (0.35..0.75, [0.75, 0.6, 0.45], 0.3, 0.25),
            _ => (0.15..0.5, [0.35, 0.2, 0.15], 0.65, 0.45),
        };
        let mut skipped = Vec::new();
        for (feature, chance) in
            [("Invited Teammate", adopt[0]), ("Report Exported", adopt[1]), ("AI Chart Generated", adopt[2])]
        {
            if !rng.gen_bool(chance) {
                skipped.push(feature);
            }
        }
        let span = i64::from(days.max(8));
        let churn_after = rng.gen_bool(churn).then(|| rng.gen_range(10..(span / 2).max(11)));
        let back_after = churn_after.filter(|_| rng.gen_bool(0.25)).map(|_| rng.gen_range(7..21));
        let upgrade_after = (plan == "free" && rng.gen_bool(0.3)).then(|| rng.gen_range(5..span.max(6)));
        Account { engagement: rng.gen_range(engagement), skipped, churn_after, back_after, upgrade_after, user_churn }
    }

    /// Whether the account's users use the product on `day`.
    fn active_on(&self, day: DateTime<Utc>, churned: Option<DateTime<Utc>>) -> bool {
        match churned {
            Some(gone) if day >= gone => self.back_after.is_some_and(|b| {
                let back = gone + Duration::days(b);
                day >= back && day < back + Duration::days(10)
            }),
            _ => true,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn user(
    tl: &mut Timeline,
    company: &str,
    teams: &[String],
    u: usize,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    days: u32,
    account: &Account,
    churned: Option<DateTime<Utc>>,
) {
    let user_id = format!("{company}-user-{u}");
    let first = FIRST[tl.rng.gen_range(0..FIRST.len())];
    let last = LAST[tl.rng.gen_range(0..LAST.len())];
    // Most users join in the company's first weeks.
    let joined =
        (created + Duration::hours(tl.rng.gen_range(0..i64::from(days.max(2)) * 4))).min(now - Duration::hours(2));
    let anon = format!("anon-{:016x}", tl.rng.gen::<u64>());
    let source = ["google", "newsletter", "direct"][u % 3];
    tl.track(joined - Duration::minutes(5), &anon, "Landing Page Viewed", json!({"utm_source": source}));
    tl.at(joined, Command::Identify { anon_distinct_id: anon, distinct_id: user_id.clone() });
    let profile = json!({
        "name": format!("{first} {last}"),
        "email": format!("{}.{}@{company}.example", first.to_lowercase(), slug(last)),
        "role": pick(&mut tl.rng, &["admin", "member", "member", "viewer"]),
    });
    tl.at(joined, Command::PersonProfile { distinct_id: user_id.clone(), op: ProfileOp::Set(as_props(profile)) });
    tl.at(joined, membership(&user_id, "company", MembershipOp::Set(vec![company.to_string()])));
    let mut my_teams = teams.to_vec();
    my_teams.shuffle(&mut tl.rng);
    my_teams.truncate(tl.rng.gen_range(1..=teams.len().min(2)));
    for team in &my_teams {
        tl.at(joined, membership(&user_id, "team", MembershipOp::Add(team.clone())));
    }
    tl.at(joined, membership(&user_id, "active_team", MembershipOp::Set(vec![my_teams[0].clone()])));
    // Some users switch their active team halfway: later events follow the new team.
    if my_teams.len() > 1 && tl.rng.gen_bool(0.5) {
        let switch = joined + (now - joined) / 2;
        tl.at(switch, membership(&user_id, "active_team", MembershipOp::Set(vec![my_teams[1].clone()])));
    }
    tl.summary.users += 1;

    let daily: Vec<(&str, u32)> = DAILY.iter().copied().filter(|(name, _)| !account.skipped.contains(name)).collect();
    // Some users leave before their company does.
    let leaves = tl.rng.gen_bool(account.user_churn).then(|| joined + Duration::days(tl.rng.gen_range(3..40)));
    let mut day = joined;
    while day < now {
        let here = leaves.is_none_or(|l| day < l);
        if here && account.active_on(day, churned) && tl.rng.gen_bool(account.engagement) {
            for _ in 0..tl.rng.gen_range(1..8) {
                let t = day + Duration::minutes(tl.rng.gen_range(0..600));
                if t < now {
                    let name = pick_weighted(&mut tl.rng, &daily);
                    let props = event_properties(&mut tl.rng, name);
                    tl.track(t, &user_id, name, props);
                }
            }
        }
        day += Duration::days(1);
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn pick_weighted<'a>(rng: &mut StdRng, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (name, weight) in items {
        if roll < *weight {
            return name;
        }
        roll -= weight;
    }
    items[0].0
}

fn event_properties(rng: &mut StdRng, name: &str) -> Value {
    match name {
        "Chart Created" | "AI Chart Generated" => {
            json!({"chart_type": pick(rng, &["line", "bar", "funnel", "retention"])})
        }
        "Report Exported" => json!({"format": pick(rng, &["csv", "pdf", "png"])}),
        "Viewed Dashboard" => {
            json!({"dashboard": pick(rng, &["overview", "growth", "revenue"]), "widgets": rng.gen_range(2..12)})
        }
        "Integration Connected" => {
            json!({"integration": pick(rng, &["slack", "github", "salesforce", "hubspot"])})
        }
        "Signed In" => json!({"method": pick(rng, &["password", "google", "sso"])}),
        _ => json!({}),
    }
}

fn group_op(group_type: &str, key: &str, op: ProfileOp) -> Command {
    Command::GroupProfile { group_type: group_type.into(), group_key: key.into(), name: None, op }
}

fn membership(who: &str, group_type: &str, op: MembershipOp) -> Command {
    Command::Membership { distinct_id: who.into(), group_type: group_type.into(), op }
}

fn as_props(v: Value) -> Properties {
    v.as_object().cloned().unwrap_or_default()
}

fn slug(s: &str) -> String {
    let dashed: String = s.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    dashed.split('-').filter(|part| !part.is_empty()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let now = Utc::now();
        let spec = DemoSpec { seed: 3, companies: 4, days: 7 };
        let (a, summary_a) = generate(&spec, now);
        let (b, summary_b) = generate(&spec, now);
        assert_eq!(a, b);
        assert_eq!(summary_a, summary_b);
        assert_eq!(summary_a.companies, 4);
        assert!(summary_a.users >= 8 && summary_a.events > summary_a.users);
    }

    #[test]
    fn memberships_come_before_the_users_events() {
        let (timeline, _) = generate(&DemoSpec { seed: 1, companies: 2, days: 5 }, Utc::now());
        let first_join = timeline.iter().position(|(_, c)| matches!(c, Command::Membership { .. }));
        let first_user_event =
            timeline.iter().position(|(_, c)| matches!(c, Command::Track(e) if !e.distinct_id.starts_with("anon-")));
        assert!(first_join < first_user_event);
    }

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slug("Gekko & Co"), "gekko-co");
        assert_eq!(slug("Acme Inc"), "acme-inc");
    }
}
