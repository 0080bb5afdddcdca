//! End-to-end proof that the Warg test peers are real: two real
//! `warg-server` 0.10 registries owning different namespaces, packages
//! published to each with the real `warg` CLI, downloaded back
//! byte-identical, `warg info` and `warg update` working, and the wire
//! answers bulwark's Warg front must reproduce (missing log, `Warg-Registry`
//! header, content type) pinned as the reference server gives them.
//!
//! These tests run the CLI straight against the servers; the tests of
//! bulwark's Warg front put bulwark in between. Needs the `warg-server` and
//! `warg` binaries (see `tests/support/warg.rs`).

mod support;

use support::warg::{component, content_digest, WargClient, WargServer, WargServerOptions};
use warg_crypto::signing::PrivateKey;
use warg_crypto::{Encode as _, Signable as _};
use warg_protocol::registry::{LogId, PackageName, TimestampedCheckpoint};
use warg_protocol::SerdeEnvelope;

/// The latest checkpoint of `server`, its signature checked against the
/// operator key the fixture generated.
fn verified_checkpoint(server: &WargServer) -> SerdeEnvelope<TimestampedCheckpoint> {
    let resp = server.get("/v1/fetch/checkpoint");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let envelope: SerdeEnvelope<TimestampedCheckpoint> =
        serde_json::from_slice(&resp.body).expect("checkpoint envelope");
    assert_eq!(envelope.key_id().to_string(), server.operator_key.key_id);
    let public: warg_crypto::signing::PublicKey =
        server.operator_key.public.parse().expect("public key");
    TimestampedCheckpoint::verify(&public, &envelope.as_ref().encode(), envelope.signature())
        .expect("checkpoint signed by the fixture's operator key");
    envelope
}

#[test]
fn component_generator_makes_valid_components_of_the_asked_size() {
    for size in [27, 28, 100, 137, 138, 16_384, 1 << 20] {
        let bytes = component(size, 7);
        assert_eq!(bytes.len(), size);
        wasmparser::Validator::new()
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("component of {size} bytes is invalid: {e}"));
        assert!(wasmparser::Parser::is_component(&bytes));
    }
    assert_ne!(component(100, 1), component(100, 2), "seeds differ");
}

#[test]
fn fixture_operator_key_matches_warg_crypto() {
    let key = support::warg::WargKey::generate();
    let parsed = PrivateKey::decode(key.private.clone()).expect("private key decodes");
    assert_eq!(parsed.public_key().to_string(), key.public);
    assert_eq!(parsed.public_key().fingerprint().to_string(), key.key_id);
}

#[test]
fn server_signs_checkpoints_with_the_generated_operator_key() {
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let checkpoint = verified_checkpoint(&server);
    // A fresh registry holds only the operator's init record.
    assert_eq!(checkpoint.as_ref().checkpoint.log_length, 1);

    // The operator log grants that key everything, and defines `acme`.
    let resp = server.post_json("/v1/fetch/logs", r#"{"logLength":1}"#);
    assert_eq!(resp.status, 200, "{resp:?}");
    let logs = resp.json();
    let operator = logs["operator"].as_array().expect("operator records");
    assert_eq!(operator.len(), 1);
    assert_eq!(operator[0]["registryIndex"], 0);
    assert_eq!(operator[0]["keyId"], server.operator_key.key_id.as_str());
}

#[test]
fn missing_log_is_a_404_json_body_without_a_hint() {
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let name: PackageName = "wasi:http".parse().expect("package name");
    let log_id = LogId::package_log::<warg_crypto::hash::Sha256>(&name);
    let resp = server.post_json(
        "/v1/fetch/logs",
        &format!(r#"{{"logLength":1,"packages":{{"{log_id}":null}}}}"#),
    );
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        serde_json::json!({"status": 404, "type": "log", "id": log_id.to_string()})
    );
    // bulwark's answer for a missing log is the same bytes.
    assert_eq!(resp.body, bulwark::warg::wire::log_not_found(&log_id).1);
    assert_eq!(resp.header("warg-registry-hint"), None);

    // The reference server refuses the federation header outright.
    let resp = support::warg::http(
        server.addr,
        "GET",
        "/v1/fetch/checkpoint",
        &[("Warg-Registry", "elsewhere.example")],
        None,
    );
    assert_eq!(resp.status, 501);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.body, b"`Warg-Registry` header is not supported");

    // It has no well-known document: a bare 404.
    let resp = server.get("/.well-known/wasm-pkg/registry.json");
    assert_eq!(resp.status, 404);
    assert!(resp.body.is_empty());
}

#[test]
fn publishing_outside_the_defined_namespace_is_refused() {
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let client = WargClient::new(&server.url());
    let run = client.publish("wasi:nope", "1.0.0", &component(64, 1));
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr.contains("namespace `wasi` is not defined"),
        "{run:?}"
    );
}

#[test]
fn two_registries_publish_and_download_byte_identical() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let wasi = WargServer::start(&WargServerOptions::owning("wasi"));
    let small = component(4096, 1);
    let large = component(10 << 20, 2);

    let acme_publisher = WargClient::new(&acme.url());
    let run = acme_publisher.publish("acme:hello", "1.0.0", &small);
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("published version 1.0.0 of package `acme:hello`"),
        "{run:?}"
    );
    let wasi_publisher = WargClient::new(&wasi.url());
    let run = wasi_publisher.publish("wasi:big", "0.2.0", &large);
    assert!(run.success, "{run:?}");

    // The servers store content under its digest.
    assert_eq!(
        std::fs::read(acme.content_file(&content_digest(&small))).expect("acme content"),
        small
    );
    assert_eq!(
        std::fs::read(wasi.content_file(&content_digest(&large))).expect("wasi content"),
        large
    );
    // Both logs grew: init record + one package record each.
    assert_eq!(verified_checkpoint(&acme).as_ref().checkpoint.log_length, 2);
    assert_eq!(verified_checkpoint(&wasi).as_ref().checkpoint.log_length, 2);

    // Fresh clients (empty caches) download both, byte-identical.
    let acme_reader = WargClient::new(&acme.url());
    assert_eq!(
        acme_reader
            .download("acme:hello", None)
            .expect("download acme:hello"),
        small
    );
    let wasi_reader = WargClient::new(&wasi.url());
    assert_eq!(
        wasi_reader
            .download("wasi:big", Some("0.2.0"))
            .expect("download wasi:big"),
        large
    );

    // `warg info` shows the release and its digest.
    let info = acme_reader.info(Some("acme:hello"));
    assert!(info.success, "{info:?}");
    assert!(
        info.stdout
            .contains(&format!("1.0.0 ({})", content_digest(&small))),
        "{info:?}"
    );

    // A second release, then `warg update` brings the reader's log forward
    // (with a consistency proof from the checkpoint it saw).
    let second = component(2048, 3);
    let run = acme_publisher.publish("acme:hello", "1.1.0", &second);
    assert!(run.success, "{run:?}");
    let run = acme_reader.update();
    assert!(run.success, "{run:?}");
    let info = acme_reader.info(Some("acme:hello"));
    assert!(
        info.stdout
            .contains(&format!("1.1.0 ({})", content_digest(&second))),
        "{info:?}"
    );
    assert_eq!(
        acme_reader.download("acme:hello", None).expect("latest"),
        second
    );

    // A registry does not serve the other's namespace.
    let run = acme_reader.download("wasi:big", None);
    let run = run.expect_err("acme has no wasi:big");
    assert!(run.stderr.contains("was not found"), "{run:?}");
}

/// A client that saw the old history updates against the restarted
/// server: it sends the operator fetch token it holds, which the new server
/// does not know, and the reference server's handler panics on it
/// (`memory.rs:527`, an unchecked map index), dropping the connection. The
/// reference client fails with a transport error, not a fork diagnosis.
fn assert_stale_client_update_fails_by_server_panic(client: &WargClient, server: &WargServer) {
    let run = client.update();
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr
            .contains("failed to send request to registry server"),
        "{run:?}"
    );
    assert!(server.handler_panicked(), "{}", server.log());
}

#[test]
fn restart_with_same_key_forks_history() {
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let before = verified_checkpoint(&server);
    let client = WargClient::new(&server.url());
    let run = client.publish("acme:hello", "1.0.0", &component(256, 1));
    assert!(run.success, "{run:?}");

    let server = server.restart_same_key(true);
    let after = verified_checkpoint(&server);
    // Same operator key, same length, different history.
    assert_eq!(before.key_id(), after.key_id());
    assert_eq!(
        before.as_ref().checkpoint.log_length,
        after.as_ref().checkpoint.log_length
    );
    assert_ne!(
        before.as_ref().checkpoint.log_root,
        after.as_ref().checkpoint.log_root,
        "a new init record (new timestamp) roots a different log"
    );

    assert_stale_client_update_fails_by_server_panic(&client, &server);
}

#[test]
fn restart_with_new_key_changes_the_operator() {
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let old_key = server.operator_key.clone();
    let client = WargClient::new(&server.url());
    let run = client.publish("acme:hello", "1.0.0", &component(256, 1));
    assert!(run.success, "{run:?}");

    let server = server.restart_new_key(true);
    assert_ne!(server.operator_key, old_key);
    assert_ne!(
        verified_checkpoint(&server).key_id().to_string(),
        old_key.key_id
    );

    assert_stale_client_update_fails_by_server_panic(&client, &server);
}

/// What bulwark's verifier will do, against real proofs: the log inclusion
/// proofs of registry indices 0 (operator init) and 1 (the package record)
/// are for leaf nodes 0 and 2 and evaluate to the checkpoint's log root; the
/// map proofs evaluate to its map root; the consistency proof from the first
/// checkpoint evaluates to both roots.
#[test]
fn real_proofs_decode_and_evaluate_against_the_checkpoints() {
    use bulwark::warg::wire::{self, LogLeaf, MapLeaf, RecordId};
    use warg_crypto::hash::{AnyHash, Hash, Sha256};
    use warg_protocol::{operator, package, PublishedProtoEnvelope};

    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let first = verified_checkpoint(&server);
    let client = WargClient::new(&server.url());
    let run = client.publish("acme:hello", "1.0.0", &component(512, 9));
    assert!(run.success, "{run:?}");
    let cp = verified_checkpoint(&server);
    let cp = &cp.as_ref().checkpoint;
    assert_eq!(cp.log_length, 2);

    // The records, and their record IDs (which are also their fetch tokens).
    let name: PackageName = "acme:hello".parse().unwrap();
    let package_log = wire::package_log_id(&name);
    let resp = server.post_json(
        "/v1/fetch/logs",
        &format!(r#"{{"logLength":2,"packages":{{"{package_log}":null}}}}"#),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let logs: wire::FetchLogsResponse =
        wire::decode_json("fetch logs", &resp.body, wire::DEFAULT_JSON_LIMIT).unwrap();
    assert!(!logs.more);
    let op = &logs.operator[0];
    let op_envelope: PublishedProtoEnvelope<operator::OperatorRecord> = op
        .envelope
        .clone()
        .try_into()
        .expect("operator record decodes");
    let op_record = RecordId::operator_record::<Sha256>(&op_envelope.envelope);
    assert_eq!(op.fetch_token, op_record.to_string());
    assert_eq!(op_envelope.registry_index, 0);
    let pkg = &logs.packages[&package_log][0];
    let pkg_envelope: PublishedProtoEnvelope<package::PackageRecord> = pkg
        .envelope
        .clone()
        .try_into()
        .expect("package record decodes");
    let pkg_record = RecordId::package_record::<Sha256>(&pkg_envelope.envelope);
    assert_eq!(pkg.fetch_token, pkg_record.to_string());
    assert_eq!(pkg_envelope.registry_index, 1);

    let leaves = [
        (0, wire::operator_log_id(), op_record),
        (1, package_log.clone(), pkg_record),
    ];

    // Inclusion: log and map bundles, one proof per requested leaf, in order.
    let resp = server.post_json("/v1/proof/inclusion", r#"{"logLength":2,"leafs":[0,1]}"#);
    assert_eq!(resp.status, 200, "{resp:?}");
    let inclusion: wire::InclusionResponse =
        wire::decode_json("inclusion", &resp.body, wire::DEFAULT_JSON_LIMIT).unwrap();
    let (data, consistency, proofs) =
        wire::decode_log_bundle(&inclusion.log, wire::DEFAULT_BUNDLE_LIMIT)
            .unwrap()
            .unbundle();
    assert!(consistency.is_empty());
    assert_eq!(proofs.len(), 2);
    let log_root: Hash<Sha256> = cp.log_root.clone().try_into().unwrap();
    for ((index, log_id, record_id), proof) in leaves.iter().zip(&proofs) {
        assert_eq!(proof.leaf(), wire::leaf_node(*index).unwrap());
        assert_eq!(proof.log_length(), 2);
        let leaf = LogLeaf {
            log_id: log_id.clone(),
            record_id: record_id.clone(),
        };
        assert_eq!(proof.evaluate_value(&data, &leaf).unwrap(), log_root);
    }
    let maps = wire::decode_map_bundle(&inclusion.map, wire::DEFAULT_BUNDLE_LIMIT)
        .unwrap()
        .unbundle();
    assert_eq!(maps.len(), 2);
    let map_root: Hash<Sha256> = cp.map_root.clone().try_into().unwrap();
    for ((_, log_id, record_id), proof) in leaves.iter().zip(&maps) {
        assert!(proof.peers.len() <= wire::MAP_DEPTH);
        let leaf = MapLeaf {
            record_id: record_id.clone(),
        };
        assert_eq!(proof.evaluate(log_id, &leaf), map_root);
    }

    // Consistency from the first checkpoint (length 1) to this one.
    let resp = server.post_json("/v1/proof/consistency", r#"{"from":1,"to":2}"#);
    assert_eq!(resp.status, 200, "{resp:?}");
    let consistency: wire::ConsistencyResponse =
        wire::decode_json("consistency", &resp.body, wire::DEFAULT_JSON_LIMIT).unwrap();
    let (data, proofs, inclusions) =
        wire::decode_log_bundle(&consistency.proof, wire::DEFAULT_BUNDLE_LIMIT)
            .unwrap()
            .unbundle();
    assert!(inclusions.is_empty());
    assert_eq!(proofs.len(), 1);
    assert_eq!((proofs[0].old_length, proofs[0].new_length), (1, 2));
    let (old, new) = proofs[0].evaluate(&data).unwrap();
    assert_eq!(AnyHash::from(old), first.as_ref().checkpoint.log_root);
    assert_eq!(AnyHash::from(new), cp.log_root);

    // A checkpoint length the server never signed has no proofs (the log
    // part is built first and fails: 422) and no logs (404).
    let resp = server.post_json("/v1/proof/inclusion", r#"{"logLength":3,"leafs":[0]}"#);
    assert_eq!(resp.status, 422, "{resp:?}");
    assert_eq!(
        resp.json(),
        serde_json::json!({"status": 422, "reason": "failure", "message": "Necessary hash not found"})
    );
    let resp = server.post_json("/v1/fetch/logs", r#"{"logLength":3}"#);
    assert_eq!(resp.status, 404, "{resp:?}");
    assert_eq!(
        resp.json(),
        serde_json::json!({"status": 404, "type": "logLength", "id": 3})
    );
}
