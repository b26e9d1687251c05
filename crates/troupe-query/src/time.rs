//! Date ranges and interval buckets in a timezone.
//!
//! Events are stored in UTC; a bucket is a local calendar period (day, week, month) whose bounds
//! are computed here as UTC instants, so a day around a DST change is 23 or 25 hours long and
//! holds exactly the events of that local day. Hour buckets are real hours starting at a local
//! full hour: the repeated hour of a fall-back day is two buckets, labelled with their offsets.

use chrono::{
    DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use crate::error::QueryError;
use crate::spec::{DateRange, Interval, WeekStart, Window, WindowUnit};

/// How periods are cut.
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    pub tz: Tz,
    pub interval: Interval,
    pub week_start: WeekStart,
}

impl Calendar {
    pub fn new(timezone: Option<&str>, interval: Interval, week_start: WeekStart) -> Result<Self, QueryError> {
        let tz = match timezone {
            None | Some("") => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                QueryError::invalid(format!("unknown timezone {name:?} (use an IANA name like Europe/Paris)"))
            })?,
        };
        Ok(Calendar { tz, interval, week_start })
    }

    /// The start of the period containing `at`.
    pub fn period_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&self.tz);
        match self.interval {
            Interval::Hour => {
                let into_hour = i64::from(local.minute()) * 60 + i64::from(local.second());
                let at = at - Duration::seconds(into_hour);
                at - Duration::nanoseconds(i64::from(at.nanosecond()))
            }
            Interval::Day => self.midnight(local.date_naive()),
            Interval::Week => {
                let date = local.date_naive();
                let back = match self.week_start {
                    WeekStart::Sunday => date.weekday().num_days_from_sunday(),
                    WeekStart::Monday => date.weekday().num_days_from_monday(),
                };
                self.midnight(date - Duration::days(i64::from(back)))
            }
            Interval::Month => self.midnight(local.date_naive().with_day(1).unwrap_or(local.date_naive())),
        }
    }

    /// The start of the period after the one starting at `start`.
    pub fn next(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let date = start.with_timezone(&self.tz).date_naive();
        match self.interval {
            Interval::Hour => start + Duration::hours(1),
            Interval::Day => self.midnight(date + Duration::days(1)),
            Interval::Week => self.midnight(date + Duration::days(7)),
            Interval::Month => self.midnight(date.checked_add_months(Months::new(1)).unwrap_or(date)),
        }
    }

    /// The start of the period before the one starting at `start`.
    pub fn previous(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        self.period_start(start - Duration::microseconds(1))
    }

    /// Local midnight as UTC; where midnight does not exist (a DST gap), the first local time
    /// after it that does.
    pub fn midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut local = date.and_time(chrono::NaiveTime::MIN);
        for _ in 0..8 {
            if let Some(t) = self.tz.from_local_datetime(&local).earliest() {
                return t.with_timezone(&Utc);
            }
            local += Duration::minutes(30);
        }
        Utc.from_utc_datetime(&local)
    }

    pub fn label(&self, start: DateTime<Utc>) -> String {
        start.with_timezone(&self.tz).to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    /// Buckets covering `[from, to)`: from the period containing `from` to the one containing
    /// the last instant before `to`.
    pub fn buckets(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Buckets {
        let mut starts = vec![self.period_start(from)];
        loop {
            let next = self.next(*starts.last().unwrap_or(&from));
            starts.push(next);
            if next >= to || starts.len() > MAX_BUCKETS {
                break;
            }
        }
        self.buckets_of(&starts)
    }

    /// `n` buckets ending where `buckets` start (the previous period, for comparisons).
    pub fn buckets_before(&self, buckets: &Buckets, n: usize) -> Buckets {
        let mut starts = vec![from_micros(buckets.start())];
        for _ in 0..n {
            let earliest = *starts.last().unwrap_or(&starts[0]);
            starts.push(self.previous(earliest));
        }
        starts.reverse();
        self.buckets_of(&starts)
    }

    /// Buckets from consecutive period starts, the last one being the end.
    fn buckets_of(&self, starts: &[DateTime<Utc>]) -> Buckets {
        Buckets {
            labels: starts[..starts.len() - 1].iter().map(|s| self.label(*s)).collect(),
            bounds: starts.iter().map(|s| s.timestamp_micros()).collect(),
        }
    }
}

/// A range of more buckets than this is refused as a mistake (10 years of days is ~3650).
pub const MAX_BUCKETS: usize = 5000;

/// Consecutive periods: `bounds[i]..bounds[i + 1]` is bucket `i` (UTC microseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub bounds: Vec<i64>,
    pub labels: Vec<String>,
}

impl Buckets {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn start(&self) -> i64 {
        self.bounds.first().copied().unwrap_or(0)
    }

    pub fn end(&self) -> i64 {
        self.bounds.last().copied().unwrap_or(0)
    }

    /// The bucket holding `ts`, if any.
    pub fn index(&self, ts: i64) -> Option<usize> {
        if ts < self.start() || ts >= self.end() {
            return None;
        }
        Some(self.bounds.partition_point(|&b| b <= ts) - 1)
    }

    /// [`Self::index`], trying `hint` (the last answer) first: events mostly come in time
    /// order, so most are in the same bucket as the one before.
    pub fn index_near(&self, ts: i64, hint: &mut usize) -> Option<usize> {
        if let (Some(&lo), Some(&hi)) = (self.bounds.get(*hint), self.bounds.get(*hint + 1)) {
            if lo <= ts && ts < hi {
                return Some(*hint);
            }
        }
        let found = self.index(ts)?;
        *hint = found;
        Some(found)
    }
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The resolved range: `from` inclusive, `to` exclusive, UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Resolve a date range in the calendar's timezone; the default is the last 7 days.
pub fn resolve(range: &DateRange, calendar: &Calendar, now: DateTime<Utc>) -> Result<Range, QueryError> {
    let from = range.from.as_deref().unwrap_or("-7d");
    let to = range.to.as_deref().unwrap_or("now");
    let from = bound(from, calendar, now, End::Start)?;
    let to = bound(to, calendar, now, End::End)?;
    if from >= to {
        return Err(QueryError::invalid(format!(
            "date_range: from ({}) must be before to ({})",
            calendar.label(from),
            calendar.label(to)
        )));
    }
    let buckets = calendar.buckets(from, to);
    if buckets.len() > MAX_BUCKETS {
        return Err(QueryError::invalid(format!(
            "date_range holds more than {MAX_BUCKETS} {:?} intervals; use a longer interval",
            calendar.interval
        )));
    }
    Ok(Range { from, to })
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    Start,
    End,
}

fn bound(text: &str, calendar: &Calendar, now: DateTime<Utc>, end: End) -> Result<DateTime<Utc>, QueryError> {
    let text = text.trim();
    let today = now.with_timezone(&calendar.tz).date_naive();
    let instant = |t: DateTime<Utc>| match end {
        End::Start => t,
        End::End => t + Duration::microseconds(1),
    };
    let date = match text {
        "now" => return Ok(instant(now)),
        "today" => Some(today),
        "yesterday" => today.pred_opt(),
        _ => None,
    };
    if let Some(date) = date {
        return Ok(day_bound(calendar, in_query_range(date, text)?, end));
    }
    if let Some(relative) = text.strip_prefix('-') {
        return relative_bound(relative, calendar, now, today, end, text);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day_bound(calendar, in_query_range(date, text)?, end));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        let t = t.with_timezone(&Utc);
        in_query_range(t.date_naive(), text)?;
        return Ok(instant(t));
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        in_query_range(local.date(), text)?;
        if let Some(t) = calendar.tz.from_local_datetime(&local).earliest() {
            return Ok(instant(t.with_timezone(&Utc)));
        }
    }
    Err(bad_bound(text))
}

/// The first and last days a date range may name. Events are stored from 1970 to 2099; the
/// margins leave room for a week or month bucket around them, and keep every calendar
/// computation far from chrono's limits, so no bound can overflow.
const FIRST_QUERY_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");
const LAST_QUERY_DATE: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid date");

fn in_query_range(date: NaiveDate, text: &str) -> Result<NaiveDate, QueryError> {
    if (FIRST_QUERY_DATE..=LAST_QUERY_DATE).contains(&date) {
        return Ok(date);
    }
    Err(out_of_range(text))
}

fn out_of_range(text: &str) -> QueryError {
    QueryError::invalid(format!(
        "date_range: {text:?} is out of range: dates must be from {FIRST_QUERY_DATE} to {LAST_QUERY_DATE}"
    ))
}

/// A whole day: its start for `from`, the next day's start for `to`.
fn day_bound(calendar: &Calendar, date: NaiveDate, end: End) -> DateTime<Utc> {
    match end {
        End::Start => calendar.midnight(date),
        End::End => calendar.midnight(date.succ_opt().unwrap_or(date)),
    }
}

fn relative_bound(
    relative: &str,
    calendar: &Calendar,
    now: DateTime<Utc>,
    today: NaiveDate,
    end: End,
    text: &str,
) -> Result<DateTime<Utc>, QueryError> {
    let unit = relative.chars().last().ok_or_else(|| bad_bound(text))?;
    let n: u32 = relative[..relative.len() - unit.len_utf8()].parse().map_err(|_| bad_bound(text))?;
    let out_of_range = || out_of_range(text);
    let days_back = |days: u64| today.checked_sub_days(Days::new(days)).ok_or_else(out_of_range);
    let date = match unit {
        'h' => {
            let then = now.checked_sub_signed(Duration::hours(i64::from(n))).ok_or_else(out_of_range)?;
            in_query_range(then.date_naive(), text)?;
            let hours = Calendar { interval: Interval::Hour, ..*calendar };
            let start = hours.period_start(then);
            return Ok(if end == End::End { start + Duration::hours(1) } else { start });
        }
        'd' => days_back(u64::from(n))?,
        'w' => days_back(7 * u64::from(n))?,
        'm' => today.checked_sub_months(Months::new(n)).ok_or_else(out_of_range)?,
        'y' => n
            .checked_mul(12)
            .and_then(|months| today.checked_sub_months(Months::new(months)))
            .ok_or_else(out_of_range)?,
        _ => return Err(bad_bound(text)),
    };
    Ok(day_bound(calendar, in_query_range(date, text)?, end))
}

fn bad_bound(text: &str) -> QueryError {
    QueryError::invalid(format!(
        "date_range: cannot read {text:?}; use a date (2026-03-01), a date-time (RFC 3339), \
         -7d / -24h / -4w / -3m / -1y, today, yesterday or now"
    ))
}

/// The latest time a step may happen after an entry at `entry` (inclusive).
pub fn window_end(window: Window, entry: i64) -> i64 {
    let micros =
        |secs: i64| entry.saturating_add(secs.saturating_mul(1_000_000).saturating_mul(i64::from(window.value)));
    match window.unit {
        WindowUnit::Second => micros(1),
        WindowUnit::Minute => micros(60),
        WindowUnit::Hour => micros(3600),
        WindowUnit::Day => micros(86_400),
        WindowUnit::Week => micros(7 * 86_400),
        WindowUnit::Month => {
            from_micros(entry).checked_add_months(Months::new(window.value)).map_or(i64::MAX, |t| t.timestamp_micros())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_hint_gives_the_same_answers() {
        let buckets = Buckets { bounds: vec![0, 10, 20, 35], labels: vec!["a".into(), "b".into(), "c".into()] };
        let mut hint = 0;
        for ts in [-1, 0, 9, 10, 10, 34, 35, 5, 20, 19, 100, 21] {
            assert_eq!(buckets.index_near(ts, &mut hint), buckets.index(ts), "at {ts}");
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).expect("test time")
    }

    #[test]
    fn days_across_spring_forward_are_local_days() {
        let cal = Calendar::new(Some("Europe/Paris"), Interval::Day, WeekStart::Sunday).expect("tz");
        let b = cal.buckets(at("2026-03-28T00:00:00+01:00"), at("2026-03-30T00:00:00+02:00"));
        assert_eq!(b.labels, vec!["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00"]);
        // 29 March is 23 hours long in Paris.
        assert_eq!(b.bounds[2] - b.bounds[1], 23 * 3_600_000_000);
        assert_eq!(b.index(at("2026-03-29T23:30:00+02:00").timestamp_micros()), Some(1));
        assert_eq!(b.index(at("2026-03-28T23:30:00+01:00").timestamp_micros()), Some(0));
    }

    #[test]
    fn weeks_start_on_sunday_or_monday() {
        let sunday = Calendar::new(None, Interval::Week, WeekStart::Sunday).expect("tz");
        let monday = Calendar { week_start: WeekStart::Monday, ..sunday };
        let wednesday = at("2026-11-25T12:00:00Z");
        assert_eq!(sunday.period_start(wednesday), at("2026-11-22T00:00:00Z"));
        assert_eq!(monday.period_start(wednesday), at("2026-11-23T00:00:00Z"));
    }

    #[test]
    fn fall_back_hour_is_two_buckets() {
        let cal = Calendar::new(Some("Europe/Paris"), Interval::Hour, WeekStart::Sunday).expect("tz");
        let b = cal.buckets(at("2026-10-25T02:00:00+02:00"), at("2026-10-25T03:00:00+01:00"));
        assert_eq!(b.labels, vec!["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]);
    }

    #[test]
    fn ranges_resolve_in_the_timezone() {
        let cal = Calendar::new(Some("America/New_York"), Interval::Day, WeekStart::Sunday).expect("tz");
        let now = at("2026-11-23T15:00:00Z");
        let r = resolve(&DateRange { from: Some("-1d".into()), to: None }, &cal, now).expect("range");
        assert_eq!(r.from, at("2026-11-22T00:00:00-05:00"));
        let r = resolve(&DateRange { from: Some("2026-11-01".into()), to: Some("2026-11-01".into()) }, &cal, now)
            .expect("range");
        // 1 November 2026 is the fall-back day in New York: 25 hours.
        assert_eq!(r.to - r.from, Duration::hours(25));
        assert!(resolve(&DateRange { from: Some("last week".into()), to: None }, &cal, now).is_err());
        assert!(Calendar::new(Some("Mars/Olympus"), Interval::Day, WeekStart::Sunday).is_err());
    }

    #[test]
    fn extreme_bounds_are_refused_not_overflowed() {
        let now = at("2026-11-23T15:00:00Z");
        for interval in [Interval::Hour, Interval::Day, Interval::Week, Interval::Month] {
            for tz in [None, Some("Pacific/Kiritimati"), Some("Pacific/Pago_Pago")] {
                let cal = Calendar::new(tz, interval, WeekStart::Sunday).expect("tz");
                for from in [
                    "-99999999w",
                    "-4294967295d",
                    "-4294967295h",
                    "-4294967295m",
                    "-4294967295y",
                    "-357913942y",
                    "+262142-12-31",
                    "262142-12-31",
                    "-262143-01-01",
                    "0001-01-01",
                    "9999-12-31",
                    "9999-12-31T23:59:59Z",
                    "9999-12-31T23:59:59",
                    "0000-01-01T00:00:00+23:59",
                    "-0d",
                    "-d",
                    "-",
                    "-99999999999999999999d",
                ] {
                    for to in [None, Some(from)] {
                        let range = DateRange { from: Some(from.into()), to: to.map(Into::into) };
                        if let Err(e) = resolve(&range, &cal, now) {
                            assert!(e.to_string().starts_with("date_range"), "{from}: {e}");
                        }
                    }
                }
            }
        }
        let cal = Calendar::new(None, Interval::Month, WeekStart::Sunday).expect("tz");
        let range = DateRange { from: Some("1900-01-01".into()), to: Some("2199-12-31".into()) };
        assert!(resolve(&range, &cal, now).is_ok(), "the whole supported range, in months");
        let err = resolve(&DateRange { from: Some("-99999999w".into()), to: None }, &cal, now).expect_err("refused");
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
