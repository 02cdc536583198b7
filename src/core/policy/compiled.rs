//! The compiled policy: layers with resolved time zones and a DID index, and the lookup of the
//! value in force for a key together with the layer that set it.
//!
//! Owns layer selection (first trunk whose `match_cidrs` contains the source; exact DID, else
//! `"*"`) and zone resolution (system tzdb, then jiff's bundled copy). Must not count or decide:
//! `Admission` does. Immutable once built; a reload builds a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::hours::Window;
use super::settings::{Hours, PolicyConfig};
use super::Scope;

/// A `[[trunk]]` as admission sees it; the lead maps the configuration into this.
#[derive(Debug, Clone, PartialEq)]
pub struct TrunkLayer {
    pub name: String,
    /// Sources that belong to this trunk.
    pub match_cidrs: Vec<IpNet>,
    /// `(name, value)`: each must be present with exactly that value; names case-insensitive.
    pub require_headers: Vec<(String, String)>,
    /// Overrides only (`None` → inherit).
    pub policy: PolicyConfig,
}

/// A `[[number]]` as admission sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberLayer {
    /// Normalised E.164 DID; `None` → `"*"`, every DID no other number matches exactly.
    pub did: Option<String>,
    pub policy: PolicyConfig,
}

/// One layer, compiled.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) scope: Scope,
    pub(crate) cfg: PolicyConfig,
    /// As `cfg.hours`, with the zone resolved.
    pub(crate) hours: Option<Option<Window>>,
    /// The zone whose calendar day this layer's minutes are counted in.
    pub(crate) day_zone: TimeZone,
}

#[derive(Debug)]
pub(crate) struct Trunk {
    pub(crate) layer: Layer,
    pub(crate) match_cidrs: Vec<IpNet>,
    pub(crate) require_headers: Vec<(String, String)>,
}

/// Which layer of a chain set a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerRef {
    Global,
    Trunk(usize),
    Number(usize),
}

/// The admission policy: global settings, trunks and numbers, compiled.
#[derive(Debug)]
pub struct Policy {
    pub(crate) global: Layer,
    pub(crate) trunks: Vec<Trunk>,
    pub(crate) numbers: Vec<Layer>,
    exact: HashMap<String, usize>,
    any: Option<usize>,
    unknown_zones: Vec<String>,
}

impl Policy {
    /// Zones are looked up in the system tzdb, then in jiff's bundled copy.
    pub fn new(global: PolicyConfig, trunks: Vec<TrunkLayer>, numbers: Vec<NumberLayer>) -> Self {
        Self::build(global, trunks, numbers, &system_tz_dbs())
    }

    /// As [`Policy::new`] with zones from `db` only (tests use the bundled copy, so DST
    /// behaviour does not depend on the machine).
    pub fn with_tz_db(
        global: PolicyConfig,
        trunks: Vec<TrunkLayer>,
        numbers: Vec<NumberLayer>,
        db: &TimeZoneDatabase,
    ) -> Self {
        Self::build(global, trunks, numbers, std::slice::from_ref(db))
    }

    /// The global layer's settings (every key set).
    pub fn global(&self) -> &PolicyConfig {
        &self.global.cfg
    }

    /// The trunk a source belongs to and the flood limit its own layer sets, if any.
    pub fn trunk_flood(&self, source: IpAddr) -> Option<(usize, super::Flood)> {
        let i = self.trunk_for(source.to_canonical())?;
        let flood = self.trunks.get(i)?.layer.cfg.flood_per_source?;
        Some((i, flood))
    }

    /// Zone names no database knew; their hours are read in UTC. Log these after a (re)load.
    pub fn unknown_zones(&self) -> &[String] {
        &self.unknown_zones
    }

    fn build(
        global: PolicyConfig,
        trunks: Vec<TrunkLayer>,
        numbers: Vec<NumberLayer>,
        dbs: &[TimeZoneDatabase],
    ) -> Self {
        let mut unknown = Vec::new();
        // Guarantee every global key is set, whatever the caller passed.
        let global_cfg = PolicyConfig::defaults().merged(&global);
        let global_hours = compile_hours(&global_cfg, dbs, &mut unknown);
        let global_zone = match &global_hours {
            Some(Some(w)) => w.tz.clone(),
            _ => TimeZone::UTC,
        };
        let mut layer = |scope: Scope, cfg: PolicyConfig| {
            let hours = compile_hours(&cfg, dbs, &mut unknown);
            let day_zone = match &hours {
                Some(Some(w)) => w.tz.clone(),
                _ => global_zone.clone(),
            };
            Layer {
                scope,
                cfg,
                hours,
                day_zone,
            }
        };
        let trunks: Vec<Trunk> = trunks
            .into_iter()
            .map(|t| Trunk {
                layer: layer(Scope::Trunk(Arc::from(t.name.as_str())), t.policy),
                match_cidrs: t.match_cidrs,
                require_headers: t.require_headers,
            })
            .collect();
        let mut exact = HashMap::new();
        let mut any = None;
        let mut compiled = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.into_iter().enumerate() {
            let scope = match &n.did {
                Some(did) => {
                    exact.entry(did.clone()).or_insert(i);
                    Scope::Number(Arc::from(did.as_str()))
                }
                None => {
                    any.get_or_insert(i);
                    Scope::Number(Arc::from("*"))
                }
            };
            compiled.push(layer(scope, n.policy));
        }
        unknown.sort();
        unknown.dedup();
        Policy {
            global: Layer {
                scope: Scope::Global,
                cfg: global_cfg,
                hours: global_hours,
                day_zone: global_zone,
            },
            trunks,
            numbers: compiled,
            exact,
            any,
            unknown_zones: unknown,
        }
    }

    /// The first trunk whose `match_cidrs` contains `source`.
    pub(crate) fn trunk_for(&self, source: IpAddr) -> Option<usize> {
        self.trunks
            .iter()
            .position(|t| t.match_cidrs.iter().any(|n| n.contains(&source)))
    }

    /// The number layer for a normalised DID: exact, else `"*"`.
    pub(crate) fn number_for(&self, did: Option<&str>) -> Option<usize> {
        did.and_then(|d| self.exact.get(d).copied()).or(self.any)
    }

    pub(crate) fn layer(&self, r: LayerRef) -> Option<&Layer> {
        match r {
            LayerRef::Global => Some(&self.global),
            LayerRef::Trunk(i) => self.trunks.get(i).map(|t| &t.layer),
            LayerRef::Number(i) => self.numbers.get(i),
        }
    }

    /// Every layer with its reference, global first.
    pub(crate) fn layers(&self) -> impl Iterator<Item = (LayerRef, &Layer)> {
        std::iter::once((LayerRef::Global, &self.global))
            .chain(
                self.trunks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (LayerRef::Trunk(i), &t.layer)),
            )
            .chain(
                self.numbers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (LayerRef::Number(i), l)),
            )
    }
}

fn compile_hours(
    cfg: &PolicyConfig,
    dbs: &[TimeZoneDatabase],
    unknown: &mut Vec<String>,
) -> Option<Option<Window>> {
    cfg.hours
        .as_ref()
        .map(|h| h.as_ref().map(|h| compile_window(h, dbs, unknown)))
}

/// One `hours` value with its zone resolved from the first database that knows it; an unknown
/// zone is read as UTC and its name pushed to `unknown` (inbound and outbound share this).
pub(crate) fn compile_window(
    h: &Hours,
    dbs: &[TimeZoneDatabase],
    unknown: &mut Vec<String>,
) -> Window {
    let tz = dbs.iter().find_map(|db| db.get(&h.tz).ok());
    if tz.is_none() {
        unknown.push(h.tz.clone());
    }
    Window {
        start_min: h.start_min,
        end_min: h.end_min,
        tz: tz.unwrap_or(TimeZone::UTC),
    }
}

/// The databases zones are looked up in: the system tzdb, then jiff's bundled copy.
pub(crate) fn system_tz_dbs() -> [TimeZoneDatabase; 2] {
    [jiff::tz::db().clone(), TimeZoneDatabase::bundled()]
}

/// The layers that apply to one attempt, lowest (most specific) last.
#[derive(Clone, Copy)]
pub(crate) struct Chain<'p> {
    pub(crate) policy: &'p Policy,
    pub(crate) trunk: Option<usize>,
    pub(crate) number: Option<usize>,
}

impl<'p> Chain<'p> {
    /// The value in force for a key and the layer that set it.
    pub(crate) fn pick<T: ?Sized>(
        &self,
        key: impl Fn(&'p Layer) -> Option<&'p T>,
    ) -> Option<(&'p T, LayerRef)> {
        let number = self.number.map(LayerRef::Number);
        let trunk = self.trunk.map(LayerRef::Trunk);
        [number, trunk, Some(LayerRef::Global)]
            .into_iter()
            .flatten()
            .find_map(|r| self.policy.layer(r).and_then(&key).map(|v| (v, r)))
    }

    pub(crate) fn trunk(&self) -> Option<&'p Trunk> {
        self.trunk.and_then(|i| self.policy.trunks.get(i))
    }
}
