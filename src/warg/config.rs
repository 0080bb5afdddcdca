//! The `warg` protocol's part of the configuration: an `[[upstream]]` with
//! `protocol = "warg"` owns namespaces (kebab-case labels, matched
//! case-insensitively; one Warg upstream may be `default = true`) and has:
//!
//! - `operator_key` (required): the operator's public key,
//!   `ecdsa-p256:<base64 SEC1 point>`, pinned (never learnt from the
//!   registry);
//! - `publish` (`"off"`, the default, or `"forward"`): whether client
//!   publishes are forwarded upstream with the client's own credential;
//! - `checkpoint_reuse` (default `2s`, at most `60s`): how long a verified
//!   checkpoint answers `fetch/checkpoint` before the upstream is asked
//!   again.
//!
//! `src/config.rs` reads the generic keys and hands the others here
//! ([`ProtocolConfig::settings`]); the Warg front gets the result back with
//! `upstream.settings::<WargSettings>()`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::{
    truncate, ConfigError, Matching, ProtocolConfig, ProtocolKeys, UpstreamSettings,
};

/// The `protocol = "..."` name.
pub const PROTOCOL: &str = "warg";

/// The `warg` protocol's configuration (registered in `src/ecosystems.rs`
/// through `warg::ECOSYSTEM`).
pub struct WargProtocol;

/// The one instance.
pub static CONFIG: WargProtocol = WargProtocol;

/// Defaults, written once so that the reference in README matches the code.
pub mod defaults {
    /// `upstream.checkpoint_reuse`
    pub const CHECKPOINT_REUSE: &str = "2s";
    /// The longest `upstream.checkpoint_reuse` accepted.
    pub const MAX_CHECKPOINT_REUSE: std::time::Duration = std::time::Duration::from_secs(60);
}

/// What bulwark does with a client's publish (`publish = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WargPublish {
    /// Refused with 403 (the default: a mirror is read-only unless the
    /// operator says otherwise).
    #[default]
    Off,
    /// Forwarded to the upstream owning the namespace with the client's own
    /// `Authorization` header (if any) and never with the upstream `token`,
    /// which is a read credential.
    Forward,
}

/// A `warg` upstream's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WargSettings {
    /// The pinned operator key, `ecdsa-p256:<base64 SEC1 point>`.
    pub operator_key: String,
    /// Whether client publishes are forwarded (with the client's own
    /// credential) or refused.
    pub publish: WargPublish,
    /// How long a verified checkpoint answers `fetch/checkpoint` before the
    /// upstream is asked again (zero: every request asks).
    pub checkpoint_reuse: Duration,
}

impl UpstreamSettings for WargSettings {
    fn pinned(&self) -> String {
        self.operator_key.clone()
    }

    fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
        Err(
            "warg checkpoints are not signed notes, so no witness can cosign them and \
             bulwark cannot enforce a witness policy for a warg upstream; remove the key"
                .to_string(),
        )
    }
}

/// The keys as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarg {
    operator_key: Option<String>,
    publish: Option<WargPublish>,
    checkpoint_reuse: Option<String>,
}

impl ProtocolConfig for WargProtocol {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn matching(&self) -> Matching {
        Matching::Label
    }

    fn namespace(&self, written: &str) -> Result<String, String> {
        if !valid_warg_namespace(written) {
            return Err(format!(
                "expected a kebab-case Warg namespace like \"acme\" or \"wasi\", saw {written:?}"
            ));
        }
        Ok(written.to_ascii_lowercase())
    }

    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
        let raw: RawWarg = keys.parse()?;
        let operator_key = raw.operator_key.ok_or_else(|| {
            keys.err(
                "operator_key",
                "a warg upstream needs its pinned operator key (\"ecdsa-p256:<base64>\")",
            )
        })?;
        check_warg_key(&operator_key).map_err(|m| keys.err("operator_key", m))?;
        let publish = raw.publish.unwrap_or_default();
        if publish == WargPublish::Forward && !keys.server().tokens.is_empty() {
            // The client's Authorization header is what `forward` sends
            // upstream; with server.tokens it is bulwark's own token, which
            // must never reach an upstream.
            return Err(keys.err(
                "publish",
                "\"forward\" sends the client's Authorization header upstream, and with \
                 server.tokens that header is a bulwark token, which would leak to the \
                 upstream; publish to the upstream directly, or serve this upstream from a \
                 bulwark without tokens",
            ));
        }
        let reuse_text = raw
            .checkpoint_reuse
            .unwrap_or_else(|| defaults::CHECKPOINT_REUSE.to_string());
        let checkpoint_reuse = humantime::parse_duration(reuse_text.trim()).map_err(|e| {
            keys.err(
                "checkpoint_reuse",
                format!(
                    "expected a duration like \"2s\" (\"0s\": no reuse), saw {reuse_text:?} ({e})"
                ),
            )
        })?;
        if checkpoint_reuse > defaults::MAX_CHECKPOINT_REUSE {
            return Err(keys.err(
                "checkpoint_reuse",
                format!(
                    "at most {} (a reused checkpoint is not re-confirmed meanwhile), saw {reuse_text:?}",
                    humantime::format_duration(defaults::MAX_CHECKPOINT_REUSE)
                ),
            ));
        }
        Ok(Arc::new(WargSettings {
            operator_key,
            publish,
            checkpoint_reuse,
        }))
    }
}

/// Warg namespaces are kebab-case labels (`acme`, `my-org`); compared
/// case-insensitively.
pub fn valid_warg_namespace(s: &str) -> bool {
    if s.is_empty() || s.len() > 128 {
        return false;
    }
    s.split('-').enumerate().all(|(i, word)| {
        let b = word.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric())
            && (i > 0 || b[0].is_ascii_alphabetic())
    })
}

/// Checks a Warg public key `ecdsa-p256:<base64 SEC1 point>`: it must
/// parse as the reference crates' key (the type the Warg verifier checks
/// signatures with), so a key accepted here is one the front can use; the
/// messages say what is wrong with one that does not.
pub fn check_warg_key(key: &str) -> Result<(), String> {
    let Some(b64) = key.strip_prefix("ecdsa-p256:") else {
        return Err(format!(
            "expected a Warg public key \"ecdsa-p256:<base64>\", saw {:?}",
            truncate(key)
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the part after \"ecdsa-p256:\" is not base64 ({e})"))?;
    if key.parse::<warg_crypto::signing::PublicKey>().is_err() {
        let hint = if bytes.len() == 32 {
            " (32 bytes: is this the private key?)"
        } else {
            ""
        };
        return Err(format!(
            "not a P-256 public key: expected a 33- or 65-byte SEC1 point, saw {} bytes{hint}",
            bytes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, "t.toml", Path::new("."), &[&CONFIG])
    }

    fn warg_upstream(extra: &str) -> String {
        format!(
            "[[upstream]]\nname = \"w\"\nprotocol = \"warg\"\nurl = \"https://w.example\"\noperator_key = \"ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW\"\ndefault = true\n{extra}\n"
        )
    }

    fn settings(c: &Config) -> &WargSettings {
        c.upstreams[0].settings::<WargSettings>().unwrap()
    }

    #[test]
    fn forwarding_publishes_is_refused_where_clients_authenticate_with_bulwark_tokens() {
        let text = format!(
            "[server]\ntokens = [\"a-long-enough-test-token\"]\n\n{}",
            warg_upstream("publish = \"forward\"")
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "upstream[0].publish", "{e}");
        assert!(e.message.contains("leak"), "{e}");
        let text = format!(
            "[server]\ntokens = [\"a-long-enough-test-token\"]\n\n{}",
            warg_upstream("")
        );
        parse(&text).unwrap();
    }

    #[test]
    fn warg_publish_is_off_unless_forward_and_only_on_warg() {
        let c = parse(&warg_upstream("")).unwrap();
        assert_eq!(settings(&c).publish, WargPublish::Off);
        let c = parse(&warg_upstream("publish = \"forward\"")).unwrap();
        assert_eq!(settings(&c).publish, WargPublish::Forward);
        let e = parse(&warg_upstream("publish = \"yes\"")).unwrap_err();
        assert!(e.message.contains("yes"), "{e}");
        // On a gomod upstream: see `gomod::config`'s
        // keys_of_other_protocols_are_refused_naming_the_key.
    }

    #[test]
    fn warg_checkpoint_reuse_defaults_and_is_bounded() {
        let c = parse(&warg_upstream("")).unwrap();
        assert_eq!(settings(&c).checkpoint_reuse, Duration::from_secs(2));
        let c = parse(&warg_upstream("checkpoint_reuse = \"0s\"")).unwrap();
        assert_eq!(settings(&c).checkpoint_reuse, Duration::ZERO);
        let e = parse(&warg_upstream("checkpoint_reuse = \"5m\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].checkpoint_reuse", "{e}");
    }

    #[test]
    fn refuses_a_warg_private_key_in_place_of_the_public_key() {
        let e =
            check_warg_key("ecdsa-p256:I+UlDo0HxyBBFeelhPPWmD+LnklOpqZDkrFP5VduASk=").unwrap_err();
        assert!(e.contains("private key"), "{e}");
    }

    #[test]
    fn a_warg_upstream_needs_its_operator_key_and_a_namespace_or_default() {
        let text = warg_upstream("").replace(
            "operator_key = \"ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW\"\n",
            "",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "upstream[0].operator_key", "{e}");
        let e = parse(&warg_upstream("").replace("default = true\n", "")).unwrap_err();
        assert_eq!(e.key, "upstream[0].namespaces", "{e}");
        let e = parse(&warg_upstream("sumdb = { name = \"x\", key = \"y\" }")).unwrap_err();
        assert_eq!(e.key, "upstream[0].sumdb", "{e}");
        let e = parse(&warg_upstream("witness_policy = \"p.policy\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].witness_policy", "{e}");
        assert!(e.message.contains("cannot enforce"), "{e}");
    }

    #[test]
    fn warg_namespaces_are_kebab_case_and_lowercased() {
        assert!(valid_warg_namespace("acme"));
        assert!(valid_warg_namespace("my-org2"));
        assert!(valid_warg_namespace("WASI"));
        assert!(!valid_warg_namespace("my_org"));
        assert!(!valid_warg_namespace("-x"));
        assert!(!valid_warg_namespace("1abc"));
        assert!(!valid_warg_namespace("a:b"));
        let c = parse(&warg_upstream("namespaces = [\"ACME\"]")).unwrap();
        assert_eq!(c.upstreams[0].namespaces, ["acme"]);
    }
}
