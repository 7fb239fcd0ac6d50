//! Time in the site's time zone: the periods a query asks about (Plausible's shorthands, dates and
//! date-times), comparison periods, and the buckets of a time dimension with their labels. Days are
//! numbered as Julian days of the local date; a period of whole local days can be answered from the daily
//! rollups, any other from the rows themselves.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use time_tz::{OffsetDateTimeExt, OffsetResult, PrimitiveDateTimeExt, TimeZone, Tz, timezones};

/// An IANA time zone.
#[derive(Clone, Copy)]
pub struct Zone(&'static Tz);

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Zone {
    pub fn parse(name: &str) -> Option<Zone> {
        timezones::get_by_name(name.trim()).map(Zone)
    }

    pub fn utc() -> Zone {
        // UTC is always in the compiled database.
        Zone(timezones::get_by_name("UTC").expect("UTC is in the time zone database"))
    }

    pub fn local(&self, ts: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(ts)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_timezone(self.0)
    }

    pub fn date(&self, ts: i64) -> Date {
        self.local(ts).date()
    }

    /// The local day of an instant, as a Julian day number.
    pub fn day(&self, ts: i64) -> i32 {
        self.date(ts).to_julian_day()
    }

    pub fn offset(&self, ts: i64) -> UtcOffset {
        self.local(ts).offset()
    }

    /// The first instant of a local date-time (the later one when the clock goes back; the first after a
    /// gap when the clock jumps forward).
    pub fn instant(&self, local: PrimitiveDateTime) -> i64 {
        let mut at = local;
        for _ in 0..4 {
            match at.assume_timezone(self.0) {
                OffsetResult::Some(t) => return t.unix_timestamp(),
                OffsetResult::Ambiguous(a, _) => return a.unix_timestamp(),
                OffsetResult::None => at += Duration::minutes(30),
            }
        }
        local.assume_utc().unix_timestamp()
    }

    /// The first instant of a local date.
    pub fn start_of(&self, date: Date) -> i64 {
        self.instant(PrimitiveDateTime::new(date, Time::MIDNIGHT))
    }

    /// An instant as ISO 8601 with the zone's offset at that instant, seconds precision.
    pub fn iso(&self, ts: i64) -> String {
        let t = self.local(ts);
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
        );
        t.format(&fmt).unwrap_or_default()
    }
}

pub fn date_of_day(day: i32) -> Date {
    Date::from_julian_day(day).unwrap_or(Date::MIN)
}

pub fn format_date(d: Date) -> String {
    d.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A period: instants `[from, to)` and the local dates they cover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub zone: Zone,
    /// Whether both ends fall on local midnights, so that daily rollups can answer.
    pub whole_days: bool,
}

impl Period {
    /// The local dates `first..=last`.
    pub fn days(first: Date, last: Date, zone: Zone) -> Period {
        Period {
            from: zone.start_of(first),
            to: zone.start_of(last.next_day().unwrap_or(last)),
            zone,
            whole_days: true,
        }
    }

    pub fn instants(from: i64, to: i64, zone: Zone) -> Period {
        let aligned = |ts: i64| zone.start_of(zone.date(ts)) == ts;
        Period {
            from,
            to,
            zone,
            whole_days: aligned(from) && aligned(to),
        }
    }

    pub fn first_day(&self) -> i32 {
        self.zone.day(self.from)
    }

    /// The last local day the period touches.
    pub fn last_day(&self) -> i32 {
        self.zone.day((self.to - 1).max(self.from))
    }

    pub fn contains(&self, ts: i64) -> bool {
        self.from <= ts && ts < self.to
    }

    /// The period's ends as Plausible echoes them: ISO date-times, the last second included.
    pub fn echo(&self) -> [String; 2] {
        [self.zone.iso(self.from), self.zone.iso(self.to - 1)]
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        if self.whole_days {
            let n = self.last_day() - self.first_day() + 1;
            let first = date_of_day(self.first_day() - n);
            let last = date_of_day(self.first_day() - 1);
            Period::days(first, last, self.zone)
        } else {
            Period::instants(2 * self.from - self.to, self.from, self.zone)
        }
    }

    /// The same dates a year before.
    pub fn year_before(&self) -> Period {
        let back = |d: Date| shift_years(d, -1);
        if self.whole_days {
            Period::days(
                back(date_of_day(self.first_day())),
                back(date_of_day(self.last_day())),
                self.zone,
            )
        } else {
            let local = |ts: i64| {
                let t = self.zone.local(ts);
                PrimitiveDateTime::new(back(t.date()), t.time())
            };
            Period::instants(
                self.zone.instant(local(self.from)),
                self.zone.instant(local(self.to)),
                self.zone,
            )
        }
    }
}

fn shift_years(d: Date, years: i32) -> Date {
    let year = d.year() + years;
    let day = d.day().min(time::util::days_in_month(d.month(), year));
    Date::from_calendar_date(year, d.month(), day).unwrap_or(d)
}

fn shift_months(d: Date, months: i32) -> Date {
    let total = d.year() * 12 + d.month() as i32 - 1 + months;
    let (year, m0) = (total.div_euclid(12), total.rem_euclid(12));
    // rem_euclid(12) is in 0..12.
    let month = Month::try_from(m0 as u8 + 1).expect("month in 1..=12");
    Date::from_calendar_date(year, month, 1).unwrap_or(d)
}

fn first_of_month(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

fn last_of_month(d: Date) -> Date {
    shift_months(first_of_month(d), 1)
        .previous_day()
        .unwrap_or(d)
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// What "today" and "now" are for a query, and how far back data goes.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: i64,
    pub zone: Zone,
    /// The first local day with data, for `all`.
    pub first_day: Option<i32>,
}

impl Clock {
    pub fn today(&self) -> Date {
        self.zone.date(self.now)
    }
}

/// The API's flavour of a shorthand: v2 counts `6mo`/`12mo` in whole months before this one, v1 up to
/// and including this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    V2,
    V1,
}

/// A shorthand (`day 24h 7d 28d 30d 91d month 6mo 12mo year all`) relative to `today`.
pub fn shorthand(s: &str, clock: &Clock, today: Date, flavour: Flavour) -> Option<Period> {
    let zone = clock.zone;
    let days_back = |n: i64| {
        Period::days(
            today - Duration::days(n),
            today.previous_day().unwrap_or(today),
            zone,
        )
    };
    Some(match s {
        "day" => Period::days(today, today, zone),
        "24h" => Period::instants(clock.now - 86_400, clock.now, zone),
        "7d" => days_back(7),
        "28d" => days_back(28),
        "30d" => days_back(30),
        "91d" => days_back(91),
        "month" => Period::days(first_of_month(today), last_of_month(today), zone),
        "6mo" | "12mo" => {
            let n = if s == "6mo" { 6 } else { 12 };
            match flavour {
                Flavour::V2 => Period::days(
                    shift_months(today, -n),
                    first_of_month(today).previous_day().unwrap_or(today),
                    zone,
                ),
                Flavour::V1 => Period::days(shift_months(today, 1 - n), last_of_month(today), zone),
            }
        }
        "year" => Period::days(
            Date::from_calendar_date(today.year(), Month::January, 1).ok()?,
            Date::from_calendar_date(today.year(), Month::December, 31).ok()?,
            zone,
        ),
        "all" => {
            let first = clock.first_day.map(date_of_day).unwrap_or(today).min(today);
            Period::days(first, today, zone)
        }
        _ => return None,
    })
}

/// Two dates (inclusive) or two ISO date-times (inclusive, to the second).
pub fn pair(a: &str, b: &str, zone: Zone) -> Option<Period> {
    if let (Some(first), Some(last)) = (parse_date(a), parse_date(b)) {
        return (first <= last).then(|| Period::days(first, last, zone));
    }
    let from = OffsetDateTime::parse(a, &Rfc3339).ok()?.unix_timestamp();
    let to = OffsetDateTime::parse(b, &Rfc3339).ok()?.unix_timestamp() + 1;
    (from < to).then(|| Period::instants(from, to, zone))
}

/// How a time dimension buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    /// What `time` resolves to for a period (Plausible's rule).
    pub fn auto(period: &Period) -> Bucket {
        let seconds = period.to - period.from;
        let days = period.last_day() - period.first_day() + 1;
        if seconds <= 48 * 3600 {
            Bucket::Hour
        } else if days <= 40 {
            Bucket::Day
        } else if days <= 52 * 7 {
            Bucket::Week
        } else {
            Bucket::Month
        }
    }

    /// The label of the bucket holding local day `day` (not for hours).
    pub fn day_label(self, day: i32, period: &Period) -> String {
        let d = date_of_day(day);
        match self {
            Bucket::Hour | Bucket::Day => format_date(d),
            Bucket::Week => {
                let monday = d - Duration::days(d.weekday().number_days_from_monday() as i64);
                let start = date_of_day(period.first_day());
                format_date(monday.max(start))
            }
            Bucket::Month => format_date(first_of_month(d)),
        }
    }

    /// The label of the bucket holding instant `ts`.
    pub fn label(self, ts: i64, period: &Period) -> String {
        match self {
            Bucket::Hour => {
                let t = period.zone.local(ts);
                format!("{} {:02}:00:00", format_date(t.date()), t.hour())
            }
            _ => self.day_label(period.zone.day(ts), period),
        }
    }

    /// Every bucket label of a period, in order.
    pub fn labels(self, period: &Period) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |l: String| {
            if out.last() != Some(&l) {
                out.push(l);
            }
        };
        match self {
            Bucket::Hour => {
                let mut ts = period.from;
                while ts < period.to {
                    push(self.label(ts, period));
                    ts += 3600;
                }
            }
            _ => {
                for day in period.first_day()..=period.last_day() {
                    push(self.day_label(day, period));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn clock(now: OffsetDateTime, zone: &str) -> Clock {
        Clock {
            now: now.unix_timestamp(),
            zone: Zone::parse(zone).unwrap(),
            first_day: None,
        }
    }

    #[test]
    fn shorthands_follow_plausible() {
        let c = clock(datetime!(2024-09-11 12:00 UTC), "UTC");
        let today = c.today();
        let p = shorthand("7d", &c, today, Flavour::V2).unwrap();
        assert_eq!(
            p.echo(),
            ["2024-09-04T00:00:00+00:00", "2024-09-10T23:59:59+00:00"]
        );
        let p = shorthand("month", &c, today, Flavour::V2).unwrap();
        assert_eq!(p.echo()[1], "2024-09-30T23:59:59+00:00");
        let p = shorthand("6mo", &c, today, Flavour::V2).unwrap();
        assert_eq!(
            p.echo(),
            ["2024-03-01T00:00:00+00:00", "2024-08-31T23:59:59+00:00"]
        );
        let p = shorthand("6mo", &c, today, Flavour::V1).unwrap();
        assert_eq!(p.echo()[0], "2024-04-01T00:00:00+00:00");
        assert!(shorthand("8d", &c, today, Flavour::V2).is_none());
    }

    #[test]
    fn days_are_local() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        // 23:30 UTC on 31 March is 01:30 on 1 April in Paris (summer time).
        let ts = datetime!(2026-03-31 23:30 UTC).unix_timestamp();
        assert_eq!(date_of_day(paris.day(ts)), date!(2026 - 04 - 01));
        let p = Period::days(date!(2026 - 03 - 29), date!(2026 - 03 - 29), paris);
        // The day the clocks go forward has 23 hours.
        assert_eq!(p.to - p.from, 23 * 3600);
        assert!(p.whole_days);
        assert_eq!(paris.iso(p.from), "2026-03-29T00:00:00+01:00");
        assert_eq!(paris.iso(p.to - 1), "2026-03-29T23:59:59+02:00");
    }

    #[test]
    fn comparisons_and_labels() {
        let utc = Zone::utc();
        let p = Period::days(date!(2021 - 01 - 07), date!(2021 - 01 - 13), utc);
        let prev = p.previous();
        assert_eq!(prev.echo()[0], "2020-12-31T00:00:00+00:00");
        assert_eq!(prev.echo()[1], "2021-01-06T23:59:59+00:00");
        let yoy = p.year_before();
        assert_eq!(yoy.echo()[0], "2020-01-07T00:00:00+00:00");
        // Weeks start on Mondays; the first is clamped to the period's start.
        assert_eq!(Bucket::Week.labels(&p), ["2021-01-07", "2021-01-11"]);
        let day = Period::days(date!(2021 - 01 - 07), date!(2021 - 01 - 07), utc);
        assert_eq!(Bucket::auto(&day), Bucket::Hour);
        let hours = Bucket::Hour.labels(&day);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[1], "2021-01-07 01:00:00");
        assert!(pair("2024-01-02", "2024-01-01", utc).is_none());
        let dt = pair(
            "2024-01-01T12:00:00+02:00",
            "2024-01-01T15:59:59+02:00",
            utc,
        )
        .unwrap();
        assert_eq!(dt.to - dt.from, 4 * 3600);
        assert!(!dt.whole_days);
    }
}
