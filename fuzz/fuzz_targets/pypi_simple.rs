//! Fuzzes the simple-repository index parsers (`pypi::simple`): PEP 503
//! HTML and PEP 691 JSON project pages and project lists. No input may
//! panic; every page accepted is written back in both formats, and what
//! bulwark writes parses back to the same files. Distribution file names
//! (`pypi::filename`): the ultranormal form is a fixed point.
#![no_main]

use bulwark::pypi::filename::DistFilename;
use bulwark::pypi::name::ProjectName;
use bulwark::pypi::simple::{
    parse_list_html, parse_list_json, parse_project_html, parse_project_json, DistFile, Format,
    Links, ProjectPage,
};
use libfuzzer_sys::fuzz_target;

fn links(f: &DistFile) -> Option<Links> {
    Some(Links {
        file: format!("/pypi/files/x/{}", f.filename),
        provenance: f.provenance.as_ref().map(|_| format!("/pypi/integrity/x/{}", f.filename)),
    })
}

fn same_files(a: &ProjectPage, b: &ProjectPage) {
    assert_eq!(a.files.len(), b.files.len());
    for (x, y) in a.files.iter().zip(&b.files) {
        assert_eq!(
            (&x.filename, x.sha256, &x.requires_python, &x.yanked, x.core_metadata),
            (&y.filename, y.sha256, &y.requires_python, &y.yanked, y.core_metadata)
        );
    }
}

fn filename(s: &str) {
    if let Ok(d) = DistFilename::parse(s) {
        let u = d.ultranormal();
        let again = DistFilename::parse(&u).expect("the ultranormal form parses");
        assert_eq!(again.ultranormal(), u);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        filename(s);
    }
    let name = ProjectName::parse("x").unwrap();
    for page in [
        parse_project_html(data, &name),
        parse_project_json(data, &name),
    ]
    .into_iter()
    .flatten()
    {
        for f in &page.files {
            filename(&f.filename);
        }
        let html = page.render(Format::Html, links);
        let back = parse_project_html(&html, &name).expect("bulwark's own HTML parses");
        same_files(&page, &back);
        let json = page.render(Format::Json, links);
        let back = parse_project_json(&json, &name).expect("bulwark's own JSON parses");
        same_files(&page, &back);
    }
    for list in [parse_list_html(data), parse_list_json(data)].into_iter().flatten() {
        let html = list.render(Format::Html, |p| format!("/pypi/simple/{p}/"));
        assert_eq!(parse_list_html(&html).as_ref(), Ok(&list));
        let json = list.render(Format::Json, |p| format!("/pypi/simple/{p}/"));
        assert_eq!(parse_list_json(&json).as_ref(), Ok(&list));
    }
});
