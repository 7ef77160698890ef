//! Named network namespaces the benchmark creates and always removes.
//!
//! Names are `clt-bench-<pid>-<tag>`; a namespace left behind by a killed
//! run (its pid no longer alive) is removed by the next run
//! ([`remove_stale`]).
use std::{
    fs::File,
    io::Write as _,
    os::fd::AsRawFd as _,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

const PREFIX: &str = "clt-bench-";

/// A network namespace, deleted on drop (with every interface in it).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with its loopback up.
    pub fn new(tag: &str) -> anyhow::Result<Netns> {
        let name = format!("{PREFIX}{}-{tag}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `ip -n NAME -batch -` with `commands` on stdin.
    pub fn ip_batch(&self, commands: &str) -> anyhow::Result<()> {
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start ip -batch")?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(commands.as_bytes())
            .context("writing to ip -batch")?;
        let out = child.wait_with_output().context("waiting for ip -batch")?;
        if !out.status.success() {
            bail!(
                "ip -n {} -batch failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Runs a program inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `sysctl -w KEY=VALUE` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")])
            .map(|_| ())
    }

    /// The namespace's file, for `setns`.
    pub fn file(&self) -> anyhow::Result<File> {
        File::open(format!("/run/netns/{}", self.name))
            .with_context(|| format!("opening namespace {}", self.name))
    }

    /// Moves the calling thread into the namespace until the guard drops.
    pub fn enter(&self) -> anyhow::Result<Entered> {
        let original = File::open("/proc/thread-self/ns/net").context("opening own netns")?;
        setns(&self.file()?)?;
        Ok(Entered { original })
    }

    /// The ifindex of `dev` in the namespace.
    pub fn ifindex(&self, dev: &str) -> anyhow::Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", dev])?;
        let n = out
            .split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("no ifindex for {dev} in {}", self.name))?;
        Ok(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Returns the calling thread to its namespace on drop.
pub struct Entered {
    original: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = setns(&self.original);
    }
}

/// Moves the calling thread into the network namespace of `file`.
pub fn setns(file: &File) -> anyhow::Result<()> {
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Removes namespaces (and daemon pins) of earlier runs whose process is
/// gone.
pub fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            eprintln!("bench: removing namespace {name} left by an earlier run");
            let _ = run("ip", &["netns", "del", name]);
        }
    }
    // The daemon's pins, /sys/fs/bpf/clt-bench-<pid>-<members>.
    let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            eprintln!("bench: removing /sys/fs/bpf/{name} left by an earlier run");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Runs a command; its stdout, or an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPU measurements run on (the last one); timekeeping and everything
/// else stay on CPU 0.
pub fn measure_cpu() -> usize {
    online_cpus().saturating_sub(1)
}

/// CPUs online (whatever this thread's affinity).
pub fn online_cpus() -> usize {
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// Lets the calling thread run on every CPU again (and what it starts).
pub fn unpin() -> anyhow::Result<()> {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..online_cpus() {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives the calling thread a real-time (SCHED_FIFO) priority, or takes it
/// back: the machine is shared, and a measuring thread that waits for the
/// CPU measures the others. The kernel's RT throttling still leaves the
/// others 5% of the CPU. Returns whether it worked (a measurement goes on
/// without it).
pub fn realtime(on: bool) -> bool {
    let done = set_realtime(on);
    if on && !done {
        REALTIME_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    done
}

/// Set once a thread could not get a real-time priority.
pub static REALTIME_FAILED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn set_realtime(on: bool) -> bool {
    let (policy, prio) = if on {
        (libc::SCHED_FIFO, 10)
    } else {
        (libc::SCHED_OTHER, 0)
    };
    let param = libc::sched_param {
        sched_priority: prio,
    };
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), policy, &param) == 0 }
}
