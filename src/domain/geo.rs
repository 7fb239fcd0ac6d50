//! Country lookup from a MaxMind DB file. Reads both the GeoLite2/GeoIP2 shape (`country.iso_code`) and
//! the flat shape (`country_code`) of free databases. Only ever given a network address (invariant 1).
//! A missing or broken database means "country unknown", never a failed request.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::domain::network::ClientNet;

#[derive(Deserialize)]
struct Country {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    country: Option<Country>,
    registered_country: Option<Country>,
    country_code: Option<String>,
}

pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl Geo {
    /// Opens and probes the database. The error is a one-line reason for the start-up warning.
    pub fn open(path: &Path) -> Result<Geo, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| format!("{} is not a usable MaxMind database: {e}", path.display()))?;
        // A database whose tree or data section is damaged is refused here rather than failing mid-request.
        reader
            .verify()
            .map_err(|e| format!("{} is damaged: {e}", path.display()))?;
        let geo = Geo { reader };
        Ok(geo)
    }

    fn try_lookup(&self, addr: IpAddr) -> Result<Option<String>, String> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let found = self.reader.lookup(addr).map_err(|e| e.to_string())?;
            let rec: Option<Record> = found.decode().map_err(|e| e.to_string())?;
            Ok::<_, String>(rec.and_then(|r| {
                r.country
                    .and_then(|c| c.iso_code)
                    .or(r.country_code)
                    .or_else(|| r.registered_country.and_then(|c| c.iso_code))
            }))
        }));
        match result {
            Ok(r) => r.map(|c| c.filter(|c| c.len() == 2).map(|c| c.to_ascii_uppercase())),
            Err(_) => Err("the reader panicked".into()),
        }
    }

    /// The ISO country code of a client network, if known.
    pub fn country(&self, net: ClientNet) -> Option<String> {
        self.try_lookup(net.addr()).ok().flatten()
    }
}
