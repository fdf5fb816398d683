//! A small file system of a test's own, for the disk-full tests: a tmpfs mounted on a fresh
//! directory, filled to within a few megabytes of its end by a ballast file, given its space
//! back by deleting the ballast, and unmounted when dropped. A server whose data lives on it
//! runs out of space exactly as on a full volume (ENOSPC), without touching the machine's disks.
//!
//! Mounting needs root (CAP_SYS_ADMIN). Where it is refused, [`SmallDisk::mount`] says so and
//! the test says it could not run ([`small_disk`]).

use std::path::PathBuf;
use std::process::Command;

/// A mounted tmpfs.
pub struct SmallDisk {
    /// Where it is mounted.
    pub dir: PathBuf,
}

impl SmallDisk {
    /// Mount a tmpfs of `megabytes` on a fresh directory.
    pub fn mount(megabytes: u64) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "mounting a tmpfs needs root: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    /// Bytes free.
    pub fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.dir)
            .output()
            .expect("df runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the space free")
    }

    /// Take all but `leave_megabytes` of the space free with a ballast file.
    pub fn fill(&self, leave_megabytes: u64) {
        let take = self.available().saturating_sub(leave_megabytes << 20);
        let status = Command::new("fallocate")
            .args(["-l", &take.to_string()])
            .arg(self.ballast())
            .status()
            .expect("fallocate runs");
        assert!(status.success(), "fallocate took the space");
    }

    /// Give the ballast's space back.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.ballast());
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a server that still has files open on it lets go when it exits.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A small disk for a test, or `None` after saying why the test cannot run here. With
/// `CONTINUITY_REQUIRE_EVERY_FAULT` set (`scripts/evidence.sh` sets it), not being able to
/// mount one fails the test instead.
pub fn small_disk(megabytes: u64) -> Option<SmallDisk> {
    match SmallDisk::mount(megabytes) {
        Ok(disk) => Some(disk),
        Err(why) if std::env::var_os("CONTINUITY_REQUIRE_EVERY_FAULT").is_none() => {
            eprintln!("NOT RUN: this disk-full test needs a file system of its own: {why}");
            None
        }
        Err(why) => panic!("{why}"),
    }
}
