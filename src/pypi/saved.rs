//! The last good page of each project, kept on disk (the pipeline's
//! [`Saved`], `<data_dir>/pypi/<upstream>/<epoch>/<project>.json`) so that
//! what was verified keeps being installable after a restart while the
//! upstream cannot be reached, and in offline mode after `bulwark
//! import`. The page is kept as the checked model written in the PEP 691
//! JSON form, its URLs as the upstream gave them; it is read back only
//! while the upstream cannot be reached, and then parsed and checked again
//! like a fresh answer.

use std::path::Path;

use crate::pipeline::saved::Saved;

use super::name::ProjectName;
use super::simple::{parse_project_json, Format, Links, ProjectPage, MAX_PAGE_BYTES};

/// The saved pages of one upstream.
#[derive(Debug, Clone)]
pub struct SavedPages(Saved);

fn file(project: &ProjectName) -> String {
    format!("{project}.json")
}

impl SavedPages {
    /// The directory of `upstream` under `data_dir`.
    pub fn new(data_dir: &Path, upstream: &str) -> SavedPages {
        SavedPages(Saved::new(data_dir, "pypi", upstream, MAX_PAGE_BYTES))
    }

    /// Keeps `page` as the last good page of its project (blocking I/O).
    pub fn save(&self, epoch: u64, page: &ProjectPage) -> std::io::Result<()> {
        let body = page.render(Format::Json, |f| {
            Some(Links {
                file: f.url.clone(),
                provenance: f.provenance.clone(),
            })
        });
        self.0.save(epoch, &file(&page.name), &body)
    }

    /// The last good page of `project` in `epoch`, parsed and checked
    /// again, with the size of its document (blocking I/O).
    pub fn load(
        &self,
        epoch: u64,
        project: &ProjectName,
    ) -> Result<Option<(ProjectPage, u32)>, String> {
        let Some(body) = self
            .0
            .load(epoch, &file(project))
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let weight = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let page = parse_project_json(&body, project).map_err(|e| e.to_string())?;
        Ok(Some((page, weight)))
    }

    /// [`SavedPages::save`] off the async threads; a page that cannot be
    /// kept is logged (it was checked and is served all the same).
    pub async fn keep(&self, upstream: &str, epoch: u64, page: &ProjectPage) {
        let (saved, p) = (self.clone(), page.clone());
        let kept = tokio::task::spawn_blocking(move || saved.save(epoch, &p)).await;
        if let Err(e) = kept
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(upstream, project = %page.name, "page not saved: {e}");
        }
    }

    /// [`SavedPages::load`] off the async threads.
    pub async fn read(
        &self,
        epoch: u64,
        project: &ProjectName,
    ) -> Result<Option<(ProjectPage, u32)>, String> {
        let (saved, n) = (self.clone(), project.clone());
        tokio::task::spawn_blocking(move || saved.load(epoch, &n))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| format!("saved page of {project}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pypi::simple::parse_project_html;

    #[test]
    fn a_saved_page_reads_back_as_the_same_checked_page() {
        let dir = tempfile::tempdir().unwrap();
        let s = SavedPages::new(dir.path(), "py");
        let project = ProjectName::parse("alpha").unwrap();
        let html = format!(
            "<a href=\"../../files/alpha-1.0.tar.gz#sha256={}\" data-requires-python=\"&gt;=3\" \
             data-yanked=\"bad\" data-provenance=\"/p/alpha-1.0.tar.gz\">alpha-1.0.tar.gz</a>",
            "ab".repeat(32)
        );
        let page = parse_project_html(html.as_bytes(), &project).unwrap();
        assert_eq!(s.load(1, &project).unwrap(), None);
        s.save(1, &page).unwrap();
        let (back, _) = s.load(1, &project).unwrap().unwrap();
        assert_eq!(back, page);
    }
}
