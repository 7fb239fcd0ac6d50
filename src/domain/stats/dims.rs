//! Dimensions: what figures can be broken down by. Visit dimensions are fixed by a visit's first event
//! (except its exit page, its latest page view); event dimensions belong to each event; time dimensions
//! bucket a visit's start in the site's time zone. Every figure of a visit counts at the visit's start.

/// A dimension of the query language (Plausible's names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Page,
    Name,
    Prop(String),
    EntryPage,
    ExitPage,
    Source,
    Referrer,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Country,
    Browser,
    Os,
    Device,
    Screen,
    Hour,
    Day,
    Week,
    Month,
}

/// The visit dimensions, in the order visit facts and rollups keep their values.
pub const VISIT_DIMS: [Dimension; 14] = [
    Dimension::Source,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::UtmContent,
    Dimension::UtmTerm,
    Dimension::Country,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Device,
    Dimension::Screen,
    Dimension::EntryPage,
    Dimension::ExitPage,
];

/// Positions of the entry and exit page in [`VISIT_DIMS`].
pub const ENTRY: usize = 12;
pub const EXIT: usize = 13;

/// Rollup code of the per-visit totals (no dimension).
pub const TOTAL: u16 = 0;
/// Rollup codes of the event dimensions; visit dimensions are 1 + their index in [`VISIT_DIMS`].
pub const PAGE: u16 = 20;
pub const NAME: u16 = 21;
pub const PROP: u16 = 22;

/// Separates a property's key from its value in rollup values (neither may hold control characters).
pub const PROP_SEPARATOR: char = '\u{1f}';

impl Dimension {
    pub fn parse(s: &str) -> Option<Dimension> {
        use Dimension::*;
        Some(match s {
            "event:page" => Page,
            "event:name" => Name,
            "visit:entry_page" => EntryPage,
            "visit:exit_page" => ExitPage,
            "visit:source" => Source,
            "visit:referrer" => Referrer,
            "visit:utm_source" => UtmSource,
            "visit:utm_medium" => UtmMedium,
            "visit:utm_campaign" => UtmCampaign,
            "visit:utm_content" => UtmContent,
            "visit:utm_term" => UtmTerm,
            "visit:country" => Country,
            "visit:browser" => Browser,
            "visit:os" => Os,
            "visit:device" => Device,
            "visit:screen" => Screen,
            "time:hour" => Hour,
            "time:day" => Day,
            "time:week" => Week,
            "time:month" => Month,
            other => {
                let key = other.strip_prefix("event:props:")?;
                if key.is_empty() || key.len() > 300 || key.chars().any(char::is_control) {
                    return None;
                }
                Prop(key.to_string())
            }
        })
    }

    pub fn name(&self) -> String {
        use Dimension::*;
        match self {
            Page => "event:page".into(),
            Name => "event:name".into(),
            Prop(k) => format!("event:props:{k}"),
            EntryPage => "visit:entry_page".into(),
            ExitPage => "visit:exit_page".into(),
            Source => "visit:source".into(),
            Referrer => "visit:referrer".into(),
            UtmSource => "visit:utm_source".into(),
            UtmMedium => "visit:utm_medium".into(),
            UtmCampaign => "visit:utm_campaign".into(),
            UtmContent => "visit:utm_content".into(),
            UtmTerm => "visit:utm_term".into(),
            Country => "visit:country".into(),
            Browser => "visit:browser".into(),
            Os => "visit:os".into(),
            Device => "visit:device".into(),
            Screen => "visit:screen".into(),
            Hour => "time:hour".into(),
            Day => "time:day".into(),
            Week => "time:week".into(),
            Month => "time:month".into(),
        }
    }

    /// The short name v1's breakdown rows use as their key (`page`, `source`, `country`, ...).
    pub fn v1_key(&self) -> String {
        let name = self.name();
        match self {
            Dimension::Prop(k) => k.clone(),
            _ => name.split(':').nth(1).unwrap_or(&name).to_string(),
        }
    }

    pub fn is_time(&self) -> bool {
        matches!(
            self,
            Dimension::Hour | Dimension::Day | Dimension::Week | Dimension::Month
        )
    }

    pub fn is_event(&self) -> bool {
        matches!(self, Dimension::Page | Dimension::Name | Dimension::Prop(_))
    }

    /// Index into a visit's dimension values, for visit dimensions.
    pub fn visit_index(&self) -> Option<usize> {
        VISIT_DIMS.iter().position(|d| d == self)
    }

    /// The rollup code of a non-time dimension.
    pub fn rollup_code(&self) -> Option<u16> {
        match self {
            Dimension::Page => Some(PAGE),
            Dimension::Name => Some(NAME),
            Dimension::Prop(_) => Some(PROP),
            d => d.visit_index().map(|i| i as u16 + 1),
        }
    }

    /// What an empty value is shown as.
    pub fn empty_label(&self) -> &'static str {
        match self {
            Dimension::Source | Dimension::Referrer => "Direct / None",
            Dimension::Prop(_) => "(none)",
            _ => "(not set)",
        }
    }

    /// A stored value as it is shown, filtered and exported.
    pub fn display<'a>(&self, stored: &'a str) -> &'a str {
        if stored.is_empty() {
            self.empty_label()
        } else {
            stored
        }
    }
}

/// The screen size class of a screen width, as the device classes are drawn.
pub fn screen_class(width: Option<u32>) -> &'static str {
    match width {
        None => "",
        Some(0..576) => "Mobile",
        Some(576..992) => "Tablet",
        Some(992..1440) => "Laptop",
        Some(_) => "Desktop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in VISIT_DIMS.iter().chain(&[
            Dimension::Page,
            Dimension::Name,
            Dimension::Prop("plan".into()),
            Dimension::Hour,
            Dimension::Month,
        ]) {
            assert_eq!(Dimension::parse(&d.name()).as_ref(), Some(d));
        }
        assert_eq!(Dimension::parse("event:props:"), None);
        assert_eq!(Dimension::parse("visit:city"), None);
        assert_eq!(Dimension::Prop("plan".into()).v1_key(), "plan");
        assert_eq!(Dimension::UtmSource.v1_key(), "utm_source");
    }

    #[test]
    fn entry_and_exit_positions() {
        assert_eq!(VISIT_DIMS[ENTRY], Dimension::EntryPage);
        assert_eq!(VISIT_DIMS[EXIT], Dimension::ExitPage);
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u16> = VISIT_DIMS
            .iter()
            .map(|d| d.rollup_code().unwrap())
            .collect();
        codes.extend([TOTAL, PAGE, NAME, PROP]);
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
