//! What an ecosystem is to the rest of bulwark: a folder (`src/gomod/`,
//! `src/warg/`) that provides one [`Ecosystem`], registered with one line
//! in `src/ecosystems.rs`. `docs/ecosystem.md` walks through adding one.
//!
//! An ecosystem gives two things:
//!
//! - its configuration ([`Ecosystem::config`], a [`ProtocolConfig`] in its
//!   own `config.rs`): the `protocol = "..."` name, how its namespaces are
//!   written and matched, and its own `[[upstream]]` keys, read and checked
//!   there;
//! - its front ([`Ecosystem::front`]): the routes and wire shapes of its
//!   protocol, built from an [`EcosystemContext`] that carries everything
//!   shared: the configuration, the routing table, the metrics, the
//!   pipeline (the trust state's async facade [`Trust`] and the artifact
//!   service [`Artifacts`]) and the data directory.
//!
//! This file knows no ecosystem; `src/ecosystems.rs` knows them all.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, ProtocolConfig, UpstreamConfig};
use crate::federation::Federation;
use crate::http::Front;
use crate::metrics::Metrics;
use crate::pipeline::artifacts::Artifacts;
use crate::pipeline::rekor::Rekor;
use crate::pipeline::trust::Trust;
use crate::upstream::UpstreamOptions;

/// One ecosystem (a package protocol): its configuration and its front.
pub trait Ecosystem: Sync {
    /// The configuration side: the `protocol` name, namespaces and own
    /// keys.
    fn config(&self) -> &'static dyn ProtocolConfig;

    /// The `protocol = "..."` name.
    fn protocol(&self) -> &'static str {
        self.config().protocol()
    }

    /// The front serving this ecosystem's upstreams, or `None` when the
    /// configuration has none. Called once, at start-up.
    fn front(&self, ctx: &EcosystemContext) -> anyhow::Result<Option<Arc<dyn Front>>>;
}

/// What every front is built from: the shared state, opened once by
/// `main.rs` for all ecosystems.
#[derive(Clone)]
pub struct EcosystemContext {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The routing table ([`Federation::route`]).
    pub federation: Arc<Federation>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// `server.data_dir`: an ecosystem keeps any file of its own below it.
    pub data_dir: PathBuf,
    /// The trust state of every upstream's log (`<data_dir>/state.redb`),
    /// async: the quarantine gate, accepted checkpoints, advancing them.
    pub trust: Trust,
    /// The artifact service: lookup in the index, fill a miss by the
    /// ecosystem's hash rule, stream what was verified.
    pub artifacts: Artifacts,
    /// The Rekor logs attestations are recorded in: each verified entry's
    /// checkpoint proven consistent through the trust state.
    pub rekor: Rekor,
}

impl EcosystemContext {
    /// The upstream client options every ecosystem starts from for `u`
    /// talking to `url`: its name, its bearer `token`, its extra CA
    /// (`ca_file`), and latency observed in the server's metrics.
    pub fn upstream_options(&self, u: &UpstreamConfig, url: &str) -> UpstreamOptions {
        let mut o = UpstreamOptions::new(u.name.clone(), url.to_string());
        o.bearer_token = u.token.as_ref().map(|t| t.0.clone());
        o.extra_ca_pem = u.ca_file.clone();
        o.offline = self.config.server.offline;
        let m = self.metrics.clone();
        o.latency_hook = Some(Arc::new(move |name: &str, d: std::time::Duration, _| {
            m.observe_upstream_latency(name, d)
        }));
        o
    }

    /// The configured upstreams speaking `protocol`, in file order.
    pub fn upstreams<'a>(
        &'a self,
        protocol: &'a str,
    ) -> impl Iterator<Item = &'a UpstreamConfig> + 'a {
        self.config
            .upstreams
            .iter()
            .filter(move |u| u.protocol.name() == protocol)
    }
}
