//! Keeping the writer's memory in step with what other processes commit: the sites (added, changed,
//! removed), data deleted by a command, and rollups counted afresh when a site's time zone changed.

use std::collections::HashMap;

use crate::domain::stats::period::Zone;
use crate::domain::stats::visitors;
use crate::error::Result;
use crate::storage::rollups;
use crate::storage::sites::{self, Generations};

use super::{Writer, WriterSite};

impl Writer {
    /// Takes in what other processes committed: sites added, changed or removed (the consent entries and
    /// open visits of a site that went are dropped), and data deleted by a command (open visits are written,
    /// then everything cached is dropped and read afresh from the database when needed). A site whose time
    /// zone changed has its rollups counted afresh.
    pub(super) fn catch_up(&mut self, generations: Generations, now: i64) -> Result<()> {
        if generations.data != self.generations.data {
            self.flush_now(now)?;
            self.open.forget_all(now);
            self.cache.clear();
        }
        if generations.sites != self.generations.sites {
            let before: Vec<(String, String)> = self
                .sites
                .iter()
                .map(|(id, s)| (id.clone(), s.timezone.clone()))
                .collect();
            // Rows of visits in memory are written before anything is counted afresh from the rows.
            self.flush_now(now)?;
            self.load_sites(generations)?;
            for (id, zone) in before {
                if let Some(site) = self.sites.get(&id)
                    && site.timezone != zone
                {
                    self.open.forget_site(site.num, now);
                }
            }
            self.count_afresh()?;
        }
        self.generations = generations;
        Ok(())
    }

    /// Reads the sites: added ones get a number, removed ones (or removed and added again, with a new
    /// secret) leave nothing behind in the consent cache or open visits.
    pub(super) fn load_sites(&mut self, generations: Generations) -> Result<()> {
        let now = crate::now();
        let mut fresh = HashMap::new();
        for s in sites::keys(&mut self.conn.conn())? {
            let num = match self.sites.remove(&s.id) {
                Some(old) if old.secret == s.secret => old.num,
                replaced => {
                    if let Some(old) = replaced {
                        self.open.forget_site(old.num, now);
                    }
                    self.cache.forget_site(&s.id);
                    self.next_site_num += 1;
                    self.next_site_num
                }
            };
            let zone = Zone::parse(&s.timezone).unwrap_or_else(Zone::utc);
            let counted_in_zone = rollups::zone_of(&mut self.conn.conn(), &s.id)?.as_deref()
                == Some(s.timezone.as_str());
            fresh.insert(
                s.id,
                WriterSite {
                    num,
                    salt: visitors::salt_of(&s.secret),
                    secret: s.secret,
                    revision: s.revision,
                    timezone: s.timezone,
                    zone,
                    counted_in_zone,
                },
            );
        }
        // What is left was removed.
        for (id, old) in self.sites.drain() {
            self.cache.forget_site(&id);
            self.open.forget_site(old.num, now);
        }
        self.sites = fresh;
        self.generations.sites = generations.sites;
        Ok(())
    }

    /// Counts afresh the rollups of sites not counted in their time zone (new rollups, a changed zone).
    /// Ingestion waits meanwhile: about a second per hundred thousand events.
    pub(super) fn count_afresh(&mut self) -> Result<()> {
        let stale: Vec<String> = self
            .sites
            .iter()
            .filter(|(_, s)| !s.counted_in_zone)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            let Some(site) = self.sites.get(&id) else {
                continue;
            };
            let (zone, timezone, salt) = (site.zone, site.timezone.clone(), site.salt);
            // The gathered changes of this site are part of what is counted afresh.
            self.pending.rows.retain(|k, _| k.site != id);
            self.conn.conn().begin()?;
            let counted = self.take_turn(crate::now()).and_then(|turn| {
                let mut tx = self.conn.conn();
                let visits = rollups::rebuild(&mut tx, &id, zone, &timezone, salt)?;
                turn.mark(&mut tx)?;
                tx.commit()?;
                Ok(visits)
            });
            let visits = counted.inspect_err(|_| self.conn.conn().rollback())?;
            tracing::info!(site = %id, visits, timezone = %timezone, "statistics counted afresh");
            if let Some(site) = self.sites.get_mut(&id) {
                site.counted_in_zone = true;
            }
        }
        Ok(())
    }
}
