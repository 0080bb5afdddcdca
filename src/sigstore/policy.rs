//! Who may have signed: an OIDC issuer and a SAN pattern, or a PEP 740
//! Trusted Publisher, matched against the Fulcio certificate's claims.

use super::input::Publisher;
use super::Refusal;
use regex::Regex;
use sigstore_verify::crypto::CertificateInfo;

/// Longest `--identity` pattern accepted, and the compiled-size bound.
const MAX_PATTERN: usize = 1024;
const MAX_REGEX_SIZE: usize = 1 << 20;

/// The identity an attestation's certificate must carry.
#[derive(Debug, Clone)]
pub enum IdentityPolicy {
    /// None: the identity is verified (chain, SCT) and reported, not matched.
    Report,
    /// The OIDC issuer, exactly, and a pattern the whole SAN must match.
    Certificate { issuer: String, identity: Regex },
    /// A Trusted Publisher (`--publisher KIND:REPOSITORY[:WORKFLOW]`).
    Publisher(Publisher),
}

impl IdentityPolicy {
    /// `--issuer URL --identity REGEX`; the pattern is anchored.
    pub fn certificate(issuer: &str, identity: &str) -> Result<IdentityPolicy, String> {
        if identity.len() > MAX_PATTERN {
            return Err(format!(
                "--identity is {} bytes, at most {MAX_PATTERN}",
                identity.len()
            ));
        }
        let identity = regex::RegexBuilder::new(&format!("^(?:{identity})$"))
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| format!("--identity is not a valid pattern: {e}"))?;
        Ok(IdentityPolicy::Certificate {
            issuer: issuer.to_string(),
            identity,
        })
    }

    /// `KIND:REPOSITORY[:WORKFLOW]`, e.g. `GitHub:pypa/sampleproject:release.yml`.
    pub fn publisher(spec: &str) -> Result<IdentityPolicy, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(kind), Some(repository)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "--publisher {spec:?}: want KIND:REPOSITORY[:WORKFLOW]"
            ));
        };
        if !["GitHub", "GitLab"].contains(&kind) {
            return Err(format!("--publisher kind {kind:?}: want GitHub or GitLab"));
        }
        if repository.is_empty() || repository.contains(char::is_whitespace) {
            return Err(format!(
                "--publisher repository {repository:?} is not a repository slug"
            ));
        }
        Ok(IdentityPolicy::Publisher(Publisher {
            kind: kind.to_string(),
            repository: repository.to_string(),
            workflow: parts.next().filter(|w| !w.is_empty()).map(str::to_string),
            workflow_filepath: None,
            environment: None,
            email: None,
        }))
    }

    /// Checks the certificate against the policy.
    pub fn check(&self, cert: Option<&CertificateInfo>) -> Result<(), Refusal> {
        match self {
            IdentityPolicy::Report => Ok(()),
            IdentityPolicy::Certificate { issuer, identity } => {
                let cert = cert.ok_or_else(no_certificate)?;
                let seen_issuer = cert.issuer.as_deref().unwrap_or("none");
                if seen_issuer != issuer {
                    return Err(Refusal::new("issuer", issuer.clone(), seen_issuer));
                }
                let san = cert.identity.as_ref().map_or("none", |s| s.as_str());
                if !identity.is_match(san) {
                    return Err(Refusal::new(
                        "identity",
                        format!("a SAN matching {}", identity.as_str()),
                        san,
                    ));
                }
                Ok(())
            }
            IdentityPolicy::Publisher(p) => check_publisher(p, cert),
        }
    }
}

fn no_certificate() -> Refusal {
    Refusal::new(
        "identity",
        "a Fulcio signing certificate",
        "a bundle signed with a public key",
    )
}

/// The CI publisher a Fulcio certificate names: the kind (by OIDC
/// issuer), the source repository and the workflow file, such that
/// [`check_publisher`] accepts it for this certificate. `None` for a
/// certificate from another issuer or without those claims.
pub fn publisher_of(cert: &CertificateInfo) -> Option<Publisher> {
    let claims = &cert.ci_claims;
    let (kind, host, workflow_dir) = match cert.issuer.as_deref()? {
        "https://token.actions.githubusercontent.com" => {
            ("GitHub", "https://github.com/", "/.github/workflows/")
        }
        "https://gitlab.com" => ("GitLab", "https://gitlab.com/", "//"),
        _ => return None,
    };
    let repo_uri = claims.source_repository_uri.as_deref()?;
    let repository = repo_uri.strip_prefix(host)?.to_string();
    let config = claims.build_config_uri.as_deref()?;
    let at = [
        claims.source_repository_ref.as_deref(),
        claims.source_repository_digest.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find_map(|s| config.strip_suffix(s)?.strip_suffix('@'))?;
    let workflow = at.strip_prefix(repo_uri)?.strip_prefix(workflow_dir)?;
    if repository.is_empty() || workflow.is_empty() {
        return None;
    }
    let workflow = Some(workflow.to_string());
    let (workflow, workflow_filepath) = if kind == "GitHub" {
        (workflow, None)
    } else {
        (None, workflow)
    };
    Some(Publisher {
        kind: kind.to_string(),
        repository,
        workflow,
        workflow_filepath,
        environment: None,
        email: None,
    })
}

/// Checks a Trusted Publisher against the certificate's claims, as PyPI
/// does: issuer, source repository, and the build config URI equal to
/// the publisher's workflow at the certificate's own ref or commit.
pub fn check_publisher(p: &Publisher, cert: Option<&CertificateInfo>) -> Result<(), Refusal> {
    let cert = cert.ok_or_else(no_certificate)?;
    let claims = &cert.ci_claims;
    let seen_issuer = cert.issuer.as_deref().unwrap_or("none");
    let (issuer, host, workflow_path) = match p.kind.as_str() {
        "GitHub" => (
            "https://token.actions.githubusercontent.com",
            "https://github.com",
            p.workflow
                .as_deref()
                .map(|w| format!("/.github/workflows/{w}")),
        ),
        "GitLab" => (
            "https://gitlab.com",
            "https://gitlab.com",
            p.workflow_filepath
                .as_deref()
                .or(p.workflow.as_deref())
                .map(|w| format!("//{w}")),
        ),
        "Google" => {
            let want = p.email.as_deref().unwrap_or("");
            if seen_issuer != "https://accounts.google.com" {
                return Err(Refusal::new(
                    "publisher",
                    "issuer https://accounts.google.com",
                    seen_issuer,
                ));
            }
            let san = cert.identity.as_ref().map_or("none", |s| s.as_str());
            if want.is_empty() || san != want {
                return Err(Refusal::new(
                    "publisher",
                    format!("service account {want}"),
                    san,
                ));
            }
            return Ok(());
        }
        other => {
            return Err(Refusal::new(
                "publisher",
                "a GitHub, GitLab or Google publisher",
                format!("kind {other:?}"),
            ));
        }
    };
    if seen_issuer != issuer {
        return Err(Refusal::new(
            "publisher",
            format!("{} issuer {issuer}", p.kind),
            seen_issuer,
        ));
    }
    let repo = format!("{host}/{}", p.repository);
    let seen_repo = claims.source_repository_uri.as_deref().unwrap_or("none");
    if !seen_repo.eq_ignore_ascii_case(&repo) {
        return Err(Refusal::new(
            "publisher",
            format!("source repository {repo}"),
            seen_repo,
        ));
    }
    if let Some(path) = workflow_path {
        let seen = claims.build_config_uri.as_deref().unwrap_or("none");
        let prefix = format!("{repo}{path}@");
        let suffixes = [
            claims.source_repository_digest.as_deref(),
            claims.source_repository_ref.as_deref(),
        ];
        let ok = suffixes.iter().flatten().any(|s| {
            seen.strip_prefix(&prefix) == Some(s)
                || seen.eq_ignore_ascii_case(&format!("{prefix}{s}"))
        });
        if !ok {
            return Err(Refusal::new(
                "publisher",
                format!("build config {prefix}<ref or commit>"),
                seen,
            ));
        }
    }
    Ok(())
}
