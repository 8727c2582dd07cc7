//! Records the git commit the binary is built from, for `infoutil --version` (bug reports name
//! the exact code). Outside a git checkout, the commit written into the source archive
//! (`.build-commit`, which `scripts/sdist` writes and `maturin sdist` packs), else "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The commit recorded in a source archive, when this is not a git checkout.
const ARCHIVE_COMMIT: &str = ".build-commit";

fn archive_commit() -> Option<String> {
    let text = std::fs::read_to_string(ARCHIVE_COMMIT).ok()?;
    let commit = text.trim();
    let hex =
        !commit.is_empty() && commit.len() <= 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| commit.to_string())
}

/// HEAD of the git checkout whose top folder is this crate's (not of some repository an
/// unpacked source archive happens to sit in).
fn own_checkout_commit() -> Option<String> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let same = std::fs::canonicalize(top).ok()? == std::fs::canonicalize(here).ok()?;
    same.then(|| git(&["rev-parse", "--short=12", "HEAD"]))?
}

fn main() {
    let commit = own_checkout_commit()
        .or_else(archive_commit)
        .unwrap_or_else(|| "unknown".into());
    // Named only when there: cargo runs a build script on every build when a file it names is
    // missing, and that would compile the crate again each time.
    if std::path::Path::new(ARCHIVE_COMMIT).exists() {
        println!("cargo:rerun-if-changed={ARCHIVE_COMMIT}");
    }
    println!("cargo:rustc-env=INFOUTIL_GIT_COMMIT={commit}");
    // Run again when HEAD moves: a checkout rewrites HEAD, a commit the branch it names (in a
    // worktree both live outside ./.git, so git says where).
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD".to_string()].into_iter().chain(branch) {
        if let Some(p) = git(&["rev-parse", "--git-path", &name]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
