//! The documents under `docs/` against the code, and the repository against references
//! that lead outside it.
//!
//! - `docs/openapi.json` is exactly what `kvserver --print-openapi` prints, and the
//!   document the server serves at `/openapi.json`.
//! - `docs/http-api.md` has a heading naming every route of the OpenAPI document as
//!   `` `METHOD /path` ``, and names no route the document lacks.
//! - No text file of the workspace names a path outside it, and every relative link of
//!   its Markdown files leads to a file inside it (and to a heading, for `#anchor`s).

use crate::util;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use kvserver::AppState;
use serde_json::Value;

/// How `docs/openapi.json` is made.
const REGENERATE: &str = "cargo run -p kvserver -- --print-openapi > docs/openapi.json";

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The workspace root: the directory above this crate.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kvserver lives inside the workspace")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Where two texts first differ, as a line number and the two lines.
fn first_difference(a: &str, b: &str) -> String {
    let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
    for n in 1.. {
        match (a_lines.next(), b_lines.next()) {
            (None, None) => break,
            (x, y) if x != y => {
                return format!(
                    "line {n}: committed {:?}, generated {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
            _ => {}
        }
    }
    "only in line endings or the final newline".into()
}

#[test]
fn committed_openapi_json_is_what_print_openapi_prints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An address that is taken: a server that tried to bind it would fail.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .args(["--print-openapi", "--listen", &listen, "--data-dir"])
        .arg(&data)
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("running kvserver --print-openapi");
    assert!(
        output.status.success(),
        "kvserver --print-openapi failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !data.exists(),
        "--print-openapi must not create the data directory"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "--print-openapi must not write files in the working directory"
    );
    let generated = String::from_utf8(output.stdout).expect("the document is UTF-8");
    assert!(generated.ends_with("}\n"), "the document ends in a newline");
    serde_json::from_str::<Value>(&generated).expect("the document is JSON");
    let committed = read("docs/openapi.json");
    assert!(
        committed == generated,
        "docs/openapi.json differs from what the code generates ({}); regenerate it with\n    {REGENERATE}",
        first_difference(&committed, &generated)
    );
}

#[tokio::test]
async fn committed_openapi_json_is_the_served_document() {
    let state = AppState::build(&util::config(&["--no-persist"])).unwrap();
    let request = util::request("GET", "/openapi.json", None, &[]);
    let served = util::send(&kvserver::app(state), request)
        .await
        .expect(200)
        .json();
    let committed: Value = serde_json::from_str(&read("docs/openapi.json")).unwrap();
    assert!(
        committed == served,
        "docs/openapi.json is not the document the server serves; regenerate it with\n    {REGENERATE}"
    );
}

/// Every `(METHOD, path)` of the OpenAPI document, methods in upper case.
fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(kvserver::openapi::document()).unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Every `` `METHOD /path` `` code span in a heading line of a Markdown text.
fn routes_in_headings(markdown: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        // Code spans are the odd-numbered pieces between backticks.
        for span in line.split('`').skip(1).step_by(2) {
            let Some((method, path)) = span.split_once(' ') else {
                continue;
            };
            if METHODS.contains(&method.to_ascii_lowercase().as_str())
                && method == method.to_ascii_uppercase()
                && path.starts_with('/')
            {
                routes.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn headings_are_read_as_routes() {
    let text = "# `GET /a`\n## `PUT /b/{k}`, `POST /c`\nnot `GET /d`\n```\n# `GET /e`\n```\n### `get /f` `GET x`\n";
    let found: Vec<_> = routes_in_headings(text).into_iter().collect();
    let expected: Vec<_> = [("GET", "/a"), ("POST", "/c"), ("PUT", "/b/{k}")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn http_api_md_has_a_heading_for_every_route() {
    let documented = documented_routes();
    let described = routes_in_headings(&read("docs/http-api.md"));
    let missing: Vec<String> = documented
        .difference(&described)
        .map(|(m, p)| format!("`{m} {p}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/http-api.md lacks these routes of the OpenAPI document; give each a heading \
         that names it as `METHOD /path`: {}",
        missing.join(", ")
    );
    let unknown: Vec<String> = described
        .difference(&documented)
        .map(|(m, p)| format!("`{m} {p}`"))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/http-api.md has headings for routes the OpenAPI document does not have: {}",
        unknown.join(", ")
    );
}

/// Entries of the workspace root that are not part of the repository: version control,
/// build output, and what the root `.gitignore` anchors at the root (`/kvdata`, ...).
fn untracked_roots() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [".git", "target"].map(String::from).into();
    let gitignore = std::fs::read_to_string(workspace().join(".gitignore")).unwrap_or_default();
    for line in gitignore.lines() {
        if let Some(name) = line.trim().strip_prefix('/')
            && !name.is_empty()
            && !name.contains(['*', '?', '[', '/'])
        {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Every text file of the workspace, as (path relative to the root, contents). Files that
/// are not UTF-8 (images) are left out, as is anything under `target/` or `.git`.
fn text_files() -> Vec<(String, String)> {
    let root = workspace();
    let skip_at_root = untracked_roots();
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        // A file that another process removes during the walk is simply not read.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // In a git worktree `.git` is a file naming the main repository; skip it too.
            if name == ".git" || name == "target" || (dir == root && skip_at_root.contains(&name)) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                let relative = path.strip_prefix(&root).unwrap().display().to_string();
                files.push((relative, text));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn no_file_refers_to_a_path_outside_the_repository() {
    // Built here, so that this file does not contain what it looks for.
    let needles = [
        format!("/{}/", "work"),
        format!("../{}/", "shared"),
        format!("{}/{}/", "shared", "spec"),
    ];
    let files = text_files();
    assert!(
        files.iter().any(|(path, _)| path == "README.md"),
        "the walk must reach the workspace's own files"
    );
    let mut found = Vec::new();
    for (path, text) in &files {
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines refer to paths outside the repository; point them at a file inside \
         it (the HTTP API is described in docs/http-api.md) or reword them:\n{}",
        found.join("\n")
    );
}

/// The targets of the inline links `[text](target)` of a Markdown text, outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        // Links are in the even-numbered pieces, outside inline code.
        for prose in line.split('`').step_by(2) {
            let mut rest = prose;
            while let Some(at) = rest.find("](") {
                let after = &rest[at + 2..];
                let Some(end) = after.find(')') else { break };
                targets.push(after[..end].to_owned());
                rest = &after[end..];
            }
        }
    }
    targets
}

/// The anchors GitHub gives the headings of a Markdown text: lower case, spaces as
/// `-`, punctuation other than `-` and `_` dropped, `-1`, `-2`... on repeats.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let slug: String = title
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .collect();
        let mut anchor = slug.clone();
        for n in 1.. {
            if !anchors.contains(&anchor) {
                break;
            }
            anchor = format!("{slug}-{n}");
        }
        anchors.insert(anchor);
    }
    anchors
}

#[test]
fn anchors_are_github_slugs() {
    let text = "# Keys in paths\n## The key API: `/keys`\n### `GET /keys`\n### `GET /keys`\n";
    let expected = [
        "get-keys",
        "get-keys-1",
        "keys-in-paths",
        "the-key-api-keys",
    ];
    assert_eq!(anchors(text), expected.map(String::from).into());
}

#[test]
fn relative_links_in_markdown_lead_to_files_of_the_repository() {
    let root = workspace();
    let mut broken = Vec::new();
    for (path, text) in text_files() {
        if !path.ends_with(".md") {
            continue;
        }
        let dir = root.join(&path).parent().unwrap().to_path_buf();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if file.is_empty() {
                root.join(&path)
            } else {
                dir.join(file)
            };
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(root.canonicalize().unwrap()));
            // An anchor into a Markdown file must name one of its headings.
            let anchored = anchor.is_empty()
                || resolved.extension().is_none_or(|e| e != "md")
                || std::fs::read_to_string(&resolved).is_ok_and(|t| anchors(&t).contains(anchor));
            if !inside || !anchored {
                broken.push(format!("{path}: ({target})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "these Markdown links do not lead to a file (and heading) of the repository:\n{}",
        broken.join("\n")
    );
}
