//! `node.pid`: each running node writes its process id beside its `node.toml`, so `dev` can
//! find (and stop) nodes it did not start, such as one restarted by hand with `node run`.
//!
//! A pid file can outlive its process (kill -9) and a pid can be reused, so a pid counts only
//! while `/proc/<pid>` shows a `node run` of that very `node.toml` (Linux; elsewhere no node
//! is found this way).

use std::path::{Path, PathBuf};

/// The file's name, in the node's directory.
pub const NAME: &str = "node.pid";

/// Removes the pid file when the node stops (if it is still this process's).
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id into `dir/node.pid`.
    pub fn write(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(NAME);
        std::fs::write(&path, format!("{}\n", std::process::id()))?;
        Ok(Self { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read(&self.path) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The pid of the node running `dir/node.toml` now, as its pid file says and `/proc` confirms.
pub fn running(dir: &Path) -> Option<u32> {
    let pid = read(&dir.join(NAME))?;
    let config = dir.join("node.toml").canonicalize().ok()?;
    (runs_node(pid)? == config).then_some(pid)
}

/// The `node.toml` process `pid` runs (`... node run --config PATH`), resolved from its cwd.
fn runs_node(pid: u32) -> Option<PathBuf> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc.join("cmdline")).ok()?;
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let run = args.windows(2).any(|w| w[0] == "node" && w[1] == "run");
    let config = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--config") {
        Some("") => args.get(i + 1).cloned(),
        Some(rest) => rest.strip_prefix('=').map(str::to_owned),
        None => None,
    })?;
    let cwd = std::fs::read_link(proc.join("cwd")).ok()?;
    run.then(|| cwd.join(config).canonicalize().ok()).flatten()
}

/// Whether process `pid` still exists.
pub fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) holds no port or file: it is gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid file naming a process that is not a node of this directory finds nothing: a stale
    /// file never makes `dev` signal an unrelated process.
    #[test]
    fn a_stale_pid_file_names_no_node() {
        let dir = std::env::temp_dir().join(format!("warpnet-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("node.toml"), "").unwrap();
        // This test process is alive, but it is not `node run --config dir/node.toml`.
        std::fs::write(dir.join(NAME), format!("{}\n", std::process::id())).unwrap();
        assert!(alive(std::process::id()));
        assert_eq!(running(&dir), None);
        std::fs::write(dir.join(NAME), "4194305\n").unwrap(); // above Linux's pid_max
        assert_eq!(running(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
