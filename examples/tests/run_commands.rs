// cargo test -p examples --test run_commands
//! Every example's first line is the command that runs it, and `examples/README.md`
//! lists the same commands: the package name and file names in them must be real.

use std::fs;
use std::path::Path;

const PACKAGE: &str = env!("CARGO_PKG_NAME");

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `.rs` files directly under `sub`, as (file stem, contents), sorted by stem.
fn sources(sub: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = fs::read_dir(dir().join(sub))
        .unwrap_or_else(|e| panic!("cannot list {sub}/: {e}"))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| {
            let stem = path.file_stem().expect("a file name").to_string_lossy();
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (stem.into_owned(), text)
        })
        .collect();
    found.sort();
    found
}

/// The commands `(sub, cargo verb, target kind)` run the files of `sub` with.
const KINDS: [(&str, &str, &str); 2] = [("examples", "run", "example"), ("tests", "test", "test")];

#[test]
fn package_is_named_for_its_folder() {
    assert_eq!(
        PACKAGE, "examples",
        "`cargo run -p examples` must find this package"
    );
}

#[test]
fn first_lines_are_the_commands_that_run_each_file() {
    let mut checked = 0;
    for (sub, verb, kind) in KINDS {
        for (stem, text) in sources(sub) {
            let expected = format!("// cargo {verb} -p {PACKAGE} --{kind} {stem}");
            let first = text.lines().next().unwrap_or_default();
            assert_eq!(first, expected, "first line of {sub}/{stem}.rs");
            checked += 1;
        }
    }
    assert!(checked >= 4, "found only {checked} files to check");
}

#[test]
fn readme_lists_every_file_with_its_command() {
    let readme = fs::read_to_string(dir().join("README.md")).expect("examples/README.md");
    for (sub, verb, kind) in KINDS {
        for (stem, _) in sources(sub) {
            let command = format!("`cargo {verb} -p {PACKAGE} --{kind} {stem}`");
            assert!(readme.contains(&command), "README.md lacks {command}");
        }
    }
    assert!(
        readme.contains(&format!("`cargo test -p {PACKAGE}`")),
        "README.md lacks the command that runs them all"
    );
    let named: Vec<&str> = readme
        .split("-p ")
        .skip(1)
        .map(|rest| rest.split([' ', '`']).next().unwrap_or_default())
        .collect();
    assert!(!named.is_empty(), "README.md names no package");
    assert!(
        named.iter().all(|name| *name == PACKAGE),
        "README.md names other packages: {named:?}"
    );
}
