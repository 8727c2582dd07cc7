//! Records the git commit the binary is built from, for `infoutil --version` (bug reports name
//! the exact code). Outside a git checkout (a source archive) the commit is "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
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
