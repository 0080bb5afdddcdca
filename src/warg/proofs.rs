//! The proofs a client asks for (`POST /v1/proof/inclusion`, `POST
//! /v1/proof/consistency`), forwarded and checked before they are
//! returned: proof counts and positions, against the roots of checkpoints
//! bulwark verified and leaves it proved. While the upstream cannot be
//! reached, the verified answer to the same request, if bulwark has one.

use bytes::Bytes;

use crate::pipeline::refusal::Refusal;
use crate::upstream::UpstreamRequest;
use crate::warg::memory::AnswerKind;
use crate::warg::refuse::{expect_ok, malformed, refuse};
use crate::warg::registry::{Registries, Registry, Served, MAX_JSON_ANSWER};
use crate::warg::verify::{self as wv, LeafRef};
use crate::warg::wire::{self, ConsistencyRequest, InclusionRequest, InclusionResponse};

impl Registries {
    /// A client's inclusion-proof request (raw `body`, decoded `request`).
    pub async fn prove_inclusion(
        &self,
        reg: &Registry,
        epoch: u64,
        body: Bytes,
        request: &InclusionRequest,
    ) -> Result<Served, Refusal> {
        let forwarded = UpstreamRequest::post_json_idempotent("/v1/proof/inclusion", body.clone());
        let resp = match self.post_json(reg, forwarded).await {
            Ok(r) => r,
            Err(e) => return self.offline(reg, AnswerKind::Inclusion, &body, &e),
        };
        let resp = expect_ok(&reg.name, "the inclusion proof", resp)?;
        let inc: InclusionResponse =
            wire::decode_json("inclusion response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| malformed(&reg.name, e))?;
        let cp = self
            .checkpoint_at(reg, epoch, request.log_length as u64)
            .await?;
        let leafs = {
            let memory = reg.memory()?;
            let mut leafs = Vec::new();
            for i in &request.leafs {
                let Some(l) = memory.leaf(*i) else {
                    return Err(refuse(
                        &reg.name,
                        "inclusion",
                        format!("bulwark has not verified a record at registry index {i}"),
                    ));
                };
                leafs.push(LeafRef {
                    registry_index: *i,
                    log_id: l.log_id.clone(),
                    record_id: l.record_id.clone(),
                });
            }
            leafs
        };
        self.verified(reg, "inclusion", wv::verify_inclusion(&cp, &leafs, &inc))?;
        reg.memory()?
            .remember_answer(epoch, AnswerKind::Inclusion, &body, &resp.body);
        Ok(Served {
            body: resp.body,
            warning: None,
        })
    }

    /// A client's consistency-proof request (raw `body`, decoded
    /// `request`).
    pub async fn prove_consistency(
        &self,
        reg: &Registry,
        epoch: u64,
        body: Bytes,
        request: &ConsistencyRequest,
    ) -> Result<Served, Refusal> {
        let forwarded =
            UpstreamRequest::post_json_idempotent("/v1/proof/consistency", body.clone());
        let resp = match self.post_json(reg, forwarded).await {
            Ok(r) => r,
            Err(e) => return self.offline(reg, AnswerKind::Consistency, &body, &e),
        };
        let resp = expect_ok(&reg.name, "the consistency proof", resp)?;
        let c: wire::ConsistencyResponse =
            wire::decode_json("consistency response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| malformed(&reg.name, e))?;
        let old = self.checkpoint_at(reg, epoch, request.from as u64).await?;
        let new = self.checkpoint_at(reg, epoch, request.to as u64).await?;
        self.verified(
            reg,
            "consistency",
            wv::verify_consistency(&old, &new, &c.proof),
        )?;
        reg.memory()?
            .remember_answer(epoch, AnswerKind::Consistency, &body, &resp.body);
        Ok(Served {
            body: resp.body,
            warning: None,
        })
    }
}
