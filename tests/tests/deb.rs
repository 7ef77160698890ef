//! The Debian package (`cargo xtask deb`): its control data, files, modes
//! and conffiles as dpkg-deb reads them, lintian, `systemd-analyze verify`
//! and `security` on its unit, the shipped configuration as `collecte
//! check` sees it, and its maintainer scripts run by a real dpkg into a
//! scratch root (`dpkg --root`, scripts chrootless with DPKG_ROOT): the
//! API token is created 0600 and never replaced, a removal keeps the
//! configuration, a purge removes it.
//!
//! And the unit's sandbox against the daemon: `collecte run` under the
//! unit's capability bounding set (setpriv) and strace, provisioned
//! through its API, reloaded and stopped, must make only the system calls
//! and socket families the unit allows.
//!
//! Tools: dpkg-deb, dpkg, lintian, systemd-analyze, help2man, strip,
//! dpkg-shlibdeps, setpriv, strace (Debian packages dpkg, dpkg-dev,
//! lintian, systemd, help2man, binutils, util-linux, strace).
use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::json;
use tests::{
    api::{Req, Site, SiteOptions},
    daemon::binary,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs a command; panics with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package, built once per test binary by `cargo xtask deb`.
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        tests::require_root();
        let out = run(Command::new(env!("CARGO"))
            .args(["xtask", "deb"])
            .current_dir(workspace())
            .stdin(Stdio::null()));
        let deb = PathBuf::from(
            out.lines()
                .last()
                .expect("xtask deb prints the package's path"),
        );
        let arch = run(Command::new("dpkg").arg("--print-architecture"));
        assert_eq!(
            deb.file_name().unwrap().to_str().unwrap(),
            format!("collecte_{VERSION}_{}.deb", arch.trim())
        );
        assert!(deb.exists(), "{} is missing", deb.display());
        deb
    })
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("clt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_control_data_files_and_modes() {
    let deb = package();
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "collecte");
    assert_eq!(field("Version"), VERSION);
    assert_eq!(field("Section"), "net");
    assert_eq!(field("Priority"), "optional");
    assert!(field("Maintainer").contains('@'), "{}", field("Maintainer"));
    let depends = field("Depends");
    assert!(depends.starts_with("libc6 (>= "), "Depends: {depends}");
    let description = field("Description");
    assert!(
        description.starts_with("XDP fast path") && description.lines().count() > 3,
        "{description}"
    );

    // Every file, with its mode and owner.
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    let files: BTreeMap<String, (String, String)> = listing
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 6, "unexpected line {l:?}");
            (
                w[5].trim_start_matches('.').to_string(),
                (w[0].to_string(), w[1].to_string()),
            )
        })
        .collect();
    let mut expected: BTreeMap<&str, &str> = BTreeMap::from([
        ("/etc/collecte/collecte.toml", "-rw-r--r--"),
        ("/lib/systemd/system/collecte.service", "-rw-r--r--"),
        ("/usr/sbin/collecte", "-rwxr-xr-x"),
        ("/usr/share/doc/collecte/README.md", "-rw-r--r--"),
        ("/usr/share/doc/collecte/copyright", "-rw-r--r--"),
        ("/usr/share/doc/collecte/changelog.gz", "-rw-r--r--"),
        (
            "/usr/share/doc/collecte/examples/collecte.toml",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/collecte/examples/demo.toml", "-rw-r--r--"),
        ("/usr/share/doc/collecte/examples/bird.conf", "-rw-r--r--"),
        ("/usr/share/man/man8/collecte.8.gz", "-rw-r--r--"),
    ]);
    for dir in [
        "/",
        "/etc/",
        "/etc/collecte/",
        "/lib/",
        "/lib/systemd/",
        "/lib/systemd/system/",
        "/usr/",
        "/usr/sbin/",
        "/usr/share/",
        "/usr/share/doc/",
        "/usr/share/doc/collecte/",
        "/usr/share/doc/collecte/examples/",
        "/usr/share/man/",
        "/usr/share/man/man8/",
    ] {
        expected.insert(dir, "drwxr-xr-x");
    }
    let got: BTreeMap<&str, &str> = files
        .iter()
        .map(|(p, (mode, _))| (p.as_str(), mode.as_str()))
        .collect();
    assert_eq!(got, expected, "the package's files and modes");
    for (p, (_, owner)) in &files {
        assert_eq!(owner, "root/root", "{p}");
    }

    // The control area: conffiles, scripts, md5sums that match.
    let tmp = TempDir::new("deb-ctrl");
    let ctrl = tmp.0.join("DEBIAN");
    let tree = tmp.0.join("tree");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctrl));
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree));
    assert_eq!(
        std::fs::read_to_string(ctrl.join("conffiles")).unwrap(),
        "/etc/collecte/collecte.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let m = std::fs::metadata(ctrl.join(script)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o755, "{script}");
        run(Command::new("sh").arg("-n").arg(ctrl.join(script)));
    }
    assert!(!ctrl.join("preinst").exists());
    let sums = std::fs::read_to_string(ctrl.join("md5sums")).unwrap();
    assert_eq!(
        sums.lines().count(),
        expected.values().filter(|m| m.starts_with('-')).count(),
        "one sum per file:\n{sums}"
    );
    std::fs::write(tmp.0.join("md5sums"), &sums).unwrap();
    run(Command::new("md5sum")
        .args(["--check", "--quiet"])
        .arg(tmp.0.join("md5sums"))
        .current_dir(&tree));

    // The binary: stripped, and the one this tree builds.
    let sbin = tree.join("usr/sbin/collecte");
    let sections = run(Command::new("readelf").arg("-S").arg(&sbin));
    assert!(!sections.contains(".symtab"), "the binary is not stripped");
    let version = run(Command::new(&sbin).arg("--version"));
    assert_eq!(version.trim(), format!("collecte {VERSION}"));
    let man = run(Command::new("zcat").arg(tree.join("usr/share/man/man8/collecte.8.gz")));
    assert!(man.contains(".TH COLLECTE \"8\""), "{man}");
    let changelog = run(Command::new("zcat").arg(tree.join("usr/share/doc/collecte/changelog.gz")));
    assert!(
        changelog.starts_with(&format!("collecte ({VERSION}) ")),
        "{changelog}"
    );
    let copyright = std::fs::read_to_string(tree.join("usr/share/doc/collecte/copyright")).unwrap();
    assert!(
        copyright.contains("\n aya v0.14.0: MIT OR Apache-2.0\n"),
        "{copyright}"
    );

    // The shipped configuration is what `collecte check` (the unit's
    // ExecStartPre) accepts: no member, interfaces to name.
    let check = run(Command::new(&sbin)
        .args(["check", "--config"])
        .arg(tree.join("etc/collecte/collecte.toml")));
    assert!(
        check.contains("valid: 1 uplink(s), 1 access interface(s), 0 member(s), 0 prefix(es)"),
        "{check}"
    );
    let config = std::fs::read_to_string(tree.join("etc/collecte/collecte.toml")).unwrap();
    assert!(config.contains("listen = \"unix:/run/collecte/api.sock\""));
    assert!(config.contains("token_file = \"/etc/collecte/api.token\""));
    assert!(config.contains("state = \"/var/lib/collecte/state.json\""));
}

/// lintian: no error, no warning. The two informational tags it gives
/// cannot be helped: Rust does not use glibc's fortified functions
/// (hardening-no-fortify-functions), and collecte runs under systemd
/// only (package-supports-alternative-init-but-no-init.d-script).
#[test]
fn lintian_finds_no_error_and_no_warning() {
    let deb = package();
    let out = Command::new("lintian")
        .args([
            "--tag-display-limit",
            "0",
            "--info",
            "--pedantic",
            "--display-experimental",
        ])
        .arg(deb)
        .output()
        .expect("lintian is missing: install the Debian package `lintian`");
    let report = text(&out);
    assert!(out.status.code().is_some(), "lintian crashed:\n{report}");
    let tags: Vec<&str> = report
        .lines()
        .filter(|l| l.len() > 2 && l.as_bytes()[1] == b':' && l.contains("collecte"))
        .collect();
    let allowed = [
        "I: collecte: hardening-no-fortify-functions [usr/sbin/collecte]",
        "I: collecte: package-supports-alternative-init-but-no-init.d-script [lib/systemd/system/collecte.service]",
    ];
    for tag in &tags {
        assert!(
            allowed.contains(tag),
            "lintian: {tag}\nwhole report:\n{report}"
        );
    }
    assert!(out.status.success(), "lintian failed:\n{report}");
}

/// `systemd-analyze verify` on the unit as installed: a root holding the
/// package's files, the system's units (for its targets) and /bin/kill
/// (ExecReload). Any message fails, since unknown keys are only warned of.
#[test]
fn systemd_accepts_the_unit() {
    let deb = package();
    let tmp = TempDir::new("deb-unit");
    let root = &tmp.0;
    std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    run(Command::new("cp")
        .args(["-a", "/lib/systemd/system"])
        .arg(root.join("lib/systemd/")));
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root));
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::copy("/usr/bin/kill", root.join("usr/bin/kill")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["verify", "collecte.service"])
        .output()
        .expect("systemd-analyze is missing: install the Debian package `systemd`");
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "systemd-analyze verify ({}):\n{}",
        out.status,
        text(&out)
    );

    let unit = root.join("lib/systemd/system/collecte.service");
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = text(&out);
    let exposure: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for collecte.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    eprintln!("systemd-analyze security: exposure {exposure}");
    assert!(
        exposure <= 2.0,
        "the unit's exposure went up to {exposure}:\n{report}"
    );
    // What the unit's comments promise.
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "ExecStartPre=/usr/sbin/collecte check --config /etc/collecte/collecte.toml",
        "ExecStart=/usr/sbin/collecte run --config /etc/collecte/collecte.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON",
        "StateDirectory=collecte",
        "ReadWritePaths=/sys/fs/bpf",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks {line:?}");
    }
}

fn dpkg(root: &Path, args: &[&str]) -> String {
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args)
        .env_remove("DPKG_ROOT")
        .output()
        .expect("dpkg");
    assert!(out.status.success(), "dpkg {args:?}:\n{}", text(&out));
    text(&out)
}

/// The token: (bytes, mode, inode).
fn token(root: &Path) -> Option<(Vec<u8>, u32, u64)> {
    let p = root.join("etc/collecte/api.token");
    let m = std::fs::symlink_metadata(&p).ok()?;
    Some((
        std::fs::read(&p).unwrap(),
        m.permissions().mode() & 0o7777,
        m.ino(),
    ))
}

#[test]
fn installs_into_a_scratch_root_with_its_token() {
    let deb = package().to_str().unwrap().to_string();
    let host_had_etc = Path::new("/etc/collecte").exists();
    let tmp = TempDir::new("deb-root");
    let root = &tmp.0;
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::write(admin.join("available"), "").unwrap();

    // First install: the token appears, 0600, 64 hex characters.
    dpkg(root, &["--install", &deb]);
    let (bytes, mode, ino) = token(root).expect("postinst created no token");
    assert_eq!(mode, 0o600, "token mode {mode:o}");
    let t = String::from_utf8(bytes.clone()).unwrap();
    let t = t.strip_suffix('\n').expect("one line");
    assert_eq!(t.len(), 64, "{t:?}");
    assert!(t.bytes().all(|b| b.is_ascii_hexdigit()), "{t:?}");
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--status", "collecte"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(root.join("usr/sbin/collecte").exists());
    assert!(
        !Path::new("/etc/collecte").exists() || host_had_etc,
        "the scripts wrote to the host's /etc"
    );

    // Reinstalled (postinst configure with the old version): the token
    // is the same file, untouched.
    dpkg(root, &["--install", &deb]);
    assert_eq!(token(root), Some((bytes, 0o600, ino)), "the token changed");

    // An operator's own token and configuration are kept.
    let mine = root.join("etc/collecte/api.token");
    std::fs::write(&mine, "operator-chosen-token-0123456789\n").unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o640)).unwrap();
    let conf = root.join("etc/collecte/collecte.toml");
    let edited = std::fs::read_to_string(&conf).unwrap() + "\n# edited by the operator\n";
    std::fs::write(&conf, &edited).unwrap();
    dpkg(root, &["--install", &deb]);
    let (bytes, mode, _) = token(root).unwrap();
    assert_eq!(bytes, b"operator-chosen-token-0123456789\n");
    assert_eq!(
        mode, 0o640,
        "an existing token is never touched, its mode neither"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);

    // A missing token comes back at the next configure.
    std::fs::remove_file(&mine).unwrap();
    dpkg(root, &["--install", &deb]);
    assert_eq!(token(root).expect("token recreated").1, 0o600);

    // Remove: the program goes, the configuration and the token stay;
    // prerm says the datapath stays attached.
    std::fs::create_dir_all(root.join("var/lib/collecte")).unwrap();
    std::fs::write(root.join("var/lib/collecte/state.json"), "{}").unwrap();
    let said = dpkg(root, &["--remove", "collecte"]);
    assert!(said.contains("collecte stop --detach"), "{said}");
    assert!(!root.join("usr/sbin/collecte").exists());
    assert!(!root.join("lib/systemd/system/collecte.service").exists());
    assert!(conf.exists() && token(root).is_some());
    assert!(root.join("var/lib/collecte/state.json").exists());

    // Purge: the configuration, the token and the state go.
    dpkg(root, &["--purge", "collecte"]);
    assert!(!conf.exists(), "purge left the configuration");
    assert!(token(root).is_none(), "purge left the token");
    assert!(
        !root.join("etc/collecte").exists(),
        "purge left /etc/collecte"
    );
    assert!(
        !root.join("var/lib/collecte").exists(),
        "purge left the state"
    );
    let status = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--status", "collecte"])
        .output()
        .unwrap();
    assert!(
        !text(&status).contains("install ok installed"),
        "{}",
        text(&status)
    );
}

/// The system calls the unit's SystemCallFilter lets through, with the
/// calls its other settings forbid taken away, as systemd expands groups.
fn allowed_syscalls(unit: &str) -> BTreeSet<String> {
    let listing = run(Command::new("systemd-analyze").args(["syscall-filter", "--no-pager"]));
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in listing.lines() {
        let word = line.trim();
        if line.starts_with('@') {
            current = Some(word.to_string());
            groups.insert(word.to_string(), Vec::new());
        } else if !word.is_empty()
            && !word.starts_with('#')
            && let Some(g) = &current
        {
            groups.get_mut(g).unwrap().push(word.to_string());
        }
    }
    fn expand(name: &str, groups: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
        if !name.starts_with('@') {
            return BTreeSet::from([name.to_string()]);
        }
        let members = groups
            .get(name)
            .unwrap_or_else(|| panic!("systemd knows no group {name}"));
        members.iter().flat_map(|m| expand(m, groups)).collect()
    }
    let mut allowed: BTreeSet<String> = BTreeSet::new();
    let mut first = true;
    for line in unit.lines() {
        let Some(value) = line.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        if let Some(denied) = value.strip_prefix('~') {
            assert!(!first, "the unit's filter should start with an allow list");
            for name in denied.split_whitespace() {
                for call in expand(name, &groups) {
                    allowed.remove(&call);
                }
            }
        } else {
            for name in value.split_whitespace() {
                allowed.extend(expand(name, &groups));
            }
        }
        first = false;
    }
    assert!(!allowed.is_empty(), "the unit has no SystemCallFilter");
    for (setting, denied) in [
        ("ProtectClock=yes", "@clock"),
        ("PrivateDevices=yes", "@raw-io"),
        ("ProtectKernelModules=yes", "@module"),
        ("ProtectKernelLogs=yes", "syslog"),
    ] {
        if unit.lines().any(|l| l == setting) {
            for call in expand(denied, &groups) {
                allowed.remove(&call);
            }
        }
    }
    allowed
}

/// The unit's CapabilityBoundingSet as setpriv's `-all,+bpf,...`.
fn bounding_set(unit: &str) -> String {
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("a CapabilityBoundingSet");
    let mut arg = "-all".to_string();
    for c in caps.split_whitespace() {
        arg += &format!(",+{}", c.strip_prefix("CAP_").unwrap().to_lowercase());
    }
    arg
}

#[test]
fn the_units_sandbox_lets_the_daemon_work() {
    let unit = std::fs::read_to_string(workspace().join("contrib/collecte.service")).unwrap();
    let allowed = allowed_syscalls(&unit);
    let families: BTreeSet<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestrictAddressFamilies="))
        .expect("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let site = Site::new(
        "sandbox",
        SiteOptions {
            unix_socket: true,
            ..SiteOptions::default()
        },
    );
    let config = site.dir.join("collecte.toml");
    std::fs::write(&config, site.config()).unwrap();
    let trace = site.dir.join("strace.out");
    let log = std::fs::File::create(site.dir.join("collecte.log")).unwrap();
    let mut strace = Command::new("ip")
        .args(["netns", "exec", site.ns.name(), "setpriv"])
        .arg(format!("--bounding-set={}", bounding_set(&unit)))
        .args(["strace", "-f", "-qq", "-o"])
        .arg(&trace)
        .arg(binary())
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("setpriv and strace (Debian packages util-linux, strace)");
    // Whatever happens, the daemon goes (strace's child) and strace too.
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(pid) = daemon_pid(self.0) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let _reap = Reap(strace.id());
    let read_log = || std::fs::read_to_string(site.dir.join("collecte.log")).unwrap_or_default();

    let client = site.client();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = strace.try_wait().unwrap() {
            panic!(
                "collecte exited ({status}) under the unit's sandbox; log:\n{}",
                read_log()
            );
        }
        let health = Req {
            method: "GET",
            path: "/v1/health",
            auth: None,
            content_type: None,
            body: None,
        };
        if client.send(health).is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the API never answered; log:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Work: the API writes (journal, state file), metrics, a reload.
    let bob = json!({"interface": "acc1", "c_vlan": 101, "prefixes": ["198.51.100.16/29"]});
    assert_eq!(client.put("/v1/members/bob", &bob).status, 201);
    let mut synced = bob.clone();
    synced["id"] = json!("bob");
    assert_eq!(
        client
            .put("/v1/members", &json!({"members": [synced]}))
            .status,
        200
    );
    assert_eq!(client.delete("/v1/members/bob").status, 204);
    let metrics = tests::daemon::scrape(site.ns.name(), site.metrics).expect("metrics");
    assert!(metrics.contains("collecte_members 2"), "{metrics}");
    let pid = daemon_pid(strace.id()).expect("the daemon under strace");
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(20);
    while strace.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < end,
            "collecte did not stop; log:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log_text = read_log();
    assert!(
        log_text.contains("SIGHUP"),
        "no reload in the log:\n{log_text}"
    );
    assert!(
        !log_text.contains("ERROR") && !log_text.contains("Permission denied"),
        "{log_text}"
    );

    let traced = std::fs::read_to_string(&trace).unwrap();
    let mut used = BTreeSet::new();
    let mut used_families = BTreeSet::new();
    // Where the daemon may write (ProtectSystem=strict, ProtectKernelTunables):
    // in the unit, the state directory, /run/collecte and the pins; here,
    // the site's directory (state, socket) and its bpffs.
    let writable = [site.dir.clone(), site.bpffs.path.clone()];
    let mut written = BTreeSet::new();
    for line in traced.lines() {
        // "PID name(args...) = ret", or "PID name(... <unfinished ...>".
        let Some(call) = line.split_once(' ').map(|(_, rest)| rest.trim_start()) else {
            continue;
        };
        let Some((name, args)) = call.split_once('(') else {
            continue;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        used.insert(name.to_string());
        if name == "socket" {
            used_families.insert(args.split(',').next().unwrap().to_string());
        }
        if (name == "mmap" || name == "mprotect")
            && args.contains("PROT_WRITE")
            && args.contains("PROT_EXEC")
        {
            panic!("writable and executable memory (MemoryDenyWriteExecute): {line}");
        }
        let first_path = args.split('"').nth(1).unwrap_or_default();
        let writes = match name {
            "openat" => ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| args.contains(f)),
            "mkdir" | "mkdirat" | "unlink" | "unlinkat" | "rmdir" | "chmod" | "fchmodat" => true,
            _ => false,
        };
        // rename* and link* write their last path.
        let target = if name.starts_with("rename") || name.starts_with("link") {
            args.rsplit('"').nth(1).unwrap_or_default()
        } else if writes {
            first_path
        } else {
            ""
        };
        if target.starts_with('/') {
            written.insert(target.to_string());
        }
        if name == "unshare"
            || name == "setns"
            || (name.starts_with("clone") && args.contains("CLONE_NEW"))
        {
            panic!("a namespace (RestrictNamespaces): {line}");
        }
    }
    assert!(
        used.contains("bpf") && used.len() > 30,
        "strace saw little: {used:?}"
    );
    // execve is the traced start itself (setpriv's exec of collecte).
    let refused: Vec<&String> = used
        .iter()
        .filter(|c| !allowed.contains(*c) && c.as_str() != "execve")
        .collect();
    assert!(
        refused.is_empty(),
        "system calls the unit's SystemCallFilter refuses: {refused:?}"
    );
    let refused: Vec<&String> = used_families.difference(&families).collect();
    assert!(
        refused.is_empty(),
        "socket families the unit's RestrictAddressFamilies refuses: {refused:?} (used {used_families:?})"
    );
    let outside: Vec<&String> = written
        .iter()
        .filter(|p| !writable.iter().any(|w| Path::new(p).starts_with(w)))
        .collect();
    assert!(
        outside.is_empty(),
        "the daemon wrote outside its state, socket and pin directories: {outside:?}"
    );
    assert!(!written.is_empty(), "strace saw no write at all");
    eprintln!(
        "the daemon made {} distinct system calls, sockets {used_families:?}, wrote {written:?}",
        used.len()
    );
}

/// The process strace started (its only child).
fn daemon_pid(strace: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
