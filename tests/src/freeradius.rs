//! FreeRADIUS 3 (Debian `freeradius`) as the tests run it: a real
//! `freeradius -f -d DIR` with a generated configuration
//! (`freeradius/radiusd.conf`) in a directory of its own, never the
//! system's service: clients with a secret, a `files` users file, and
//! accounting written to a `detail` file whose records the tests read.
//!
//! Each instance listens on ports of its own (tests run in parallel), on
//! 127.0.0.1 or, with [`Builder::netns`], on an address inside a namespace.
//! [`FreeRadius`] waits until the server is ready, and stops it when
//! dropped (printing its log if the test failed).
//!
//! The default users ([`default_users`]), each with its password:
//!
//! | user | password | answer |
//! | --- | --- | --- |
//! | `pap-v4` | `pap-v4-pass` | Framed-IP-Address 198.51.100.10, Session-Timeout 3600 |
//! | `pap-v6` | `pap-v6-pass` | Framed-IPv6-Prefix 2001:db8:1:1::/64, Delegated-IPv6-Prefix 2001:db8:100::/56 |
//! | `dual@isp` | `dual-pass` | all three: 198.51.100.11, 2001:db8:1:2::/64, 2001:db8:200::/56 |
//! | `chap-user` | `chap-pass` | Framed-IP-Address 198.51.100.12 (for CHAP) |
//! | `rejected` | `rejected-pass` | always Access-Reject, Reply-Message "account disabled" |
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// The default shared secret.
pub const SECRET: &str = "collecte-test-secret";
/// The Reply-Message of the `rejected` user.
pub const REJECT_MESSAGE: &str = "account disabled";

const TEMPLATE: &str = include_str!("freeradius/radiusd.conf");
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A user of the `files` module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Its Cleartext-Password (for PAP and CHAP).
    pub password: String,
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed-IPv6-Prefix, e.g. `2001:db8:1:1::/64`.
    pub framed_ipv6_prefix: Option<String>,
    /// Delegated-IPv6-Prefix, e.g. `2001:db8:100::/56`.
    pub delegated_ipv6_prefix: Option<String>,
    pub session_timeout: Option<u32>,
    /// `Some(message)`: always rejected, with this Reply-Message.
    pub reject: Option<String>,
    /// Any other reply attributes, as the users file writes them
    /// (`("Acct-Interim-Interval", "10")`).
    pub reply: Vec<(String, String)>,
}

impl User {
    /// A user who gets an Access-Accept with no attribute.
    pub fn new(name: &str, password: &str) -> User {
        User {
            name: name.to_owned(),
            password: password.to_owned(),
            framed_ip: None,
            framed_ipv6_prefix: None,
            delegated_ipv6_prefix: None,
            session_timeout: None,
            reject: None,
            reply: Vec::new(),
        }
    }

    pub fn framed_ip(mut self, ip: Ipv4Addr) -> User {
        self.framed_ip = Some(ip);
        self
    }

    pub fn framed_ipv6_prefix(mut self, prefix: &str) -> User {
        self.framed_ipv6_prefix = Some(prefix.to_owned());
        self
    }

    pub fn delegated_ipv6_prefix(mut self, prefix: &str) -> User {
        self.delegated_ipv6_prefix = Some(prefix.to_owned());
        self
    }

    pub fn session_timeout(mut self, seconds: u32) -> User {
        self.session_timeout = Some(seconds);
        self
    }

    /// Always rejected, with `message` as Reply-Message.
    pub fn rejected(mut self, message: &str) -> User {
        self.reject = Some(message.to_owned());
        self
    }

    /// Another reply attribute.
    pub fn reply(mut self, attribute: &str, value: &str) -> User {
        self.reply.push((attribute.to_owned(), value.to_owned()));
        self
    }

    /// Its entry in the users file.
    fn entry(&self) -> String {
        let mut check = format!("{}\tCleartext-Password := {:?}", self.name, self.password);
        let mut reply: Vec<String> = Vec::new();
        if let Some(message) = &self.reject {
            check.push_str(", Auth-Type := Reject");
            reply.push(format!("Reply-Message = {message:?}"));
        }
        if let Some(ip) = self.framed_ip {
            reply.push(format!("Framed-IP-Address = {ip}"));
        }
        if let Some(p) = &self.framed_ipv6_prefix {
            reply.push(format!("Framed-IPv6-Prefix = {p}"));
        }
        if let Some(p) = &self.delegated_ipv6_prefix {
            reply.push(format!("Delegated-IPv6-Prefix = {p}"));
        }
        if let Some(s) = self.session_timeout {
            reply.push(format!("Session-Timeout = {s}"));
        }
        for (a, v) in &self.reply {
            reply.push(format!("{a} = {v}"));
        }
        let mut out = check;
        out.push('\n');
        out.push_str(
            &reply
                .iter()
                .map(|r| format!("\t{r}"))
                .collect::<Vec<_>>()
                .join(",\n"),
        );
        out.push_str("\n\n");
        out
    }
}

/// The default users (see the [module](self)).
pub fn default_users() -> Vec<User> {
    vec![
        User::new("pap-v4", "pap-v4-pass")
            .framed_ip(Ipv4Addr::new(198, 51, 100, 10))
            .session_timeout(3600),
        User::new("pap-v6", "pap-v6-pass")
            .framed_ipv6_prefix("2001:db8:1:1::/64")
            .delegated_ipv6_prefix("2001:db8:100::/56"),
        User::new("dual@isp", "dual-pass")
            .framed_ip(Ipv4Addr::new(198, 51, 100, 11))
            .framed_ipv6_prefix("2001:db8:1:2::/64")
            .delegated_ipv6_prefix("2001:db8:200::/56"),
        User::new("chap-user", "chap-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 12)),
        User::new("rejected", "rejected-pass").rejected(REJECT_MESSAGE),
    ]
}

/// How to start a [`FreeRadius`].
#[derive(Clone, Debug)]
pub struct Builder {
    secret: String,
    users: Vec<User>,
    netns: Option<String>,
    listen: IpAddr,
    clients: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            secret: SECRET.to_owned(),
            users: default_users(),
            netns: None,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            clients: vec!["127.0.0.0/8".to_owned()],
        }
    }
}

impl Builder {
    pub fn secret(mut self, secret: &str) -> Builder {
        self.secret = secret.to_owned();
        self
    }

    /// Adds `user`, replacing a user of the same name.
    pub fn user(mut self, user: User) -> Builder {
        self.users.retain(|u| u.name != user.name);
        self.users.push(user);
        self
    }

    /// Only these users (no default one).
    pub fn users(mut self, users: Vec<User>) -> Builder {
        self.users = users;
        self
    }

    /// Runs the server inside namespace `ns` (its name), listening on
    /// `listen` there.
    pub fn netns(mut self, ns: &str, listen: IpAddr) -> Builder {
        self.netns = Some(ns.to_owned());
        self.listen = listen;
        self
    }

    /// Another client network (`10.0.0.0/8`, `fd00::/8`) allowed with the
    /// secret, besides 127.0.0.0/8.
    pub fn client(mut self, network: &str) -> Builder {
        self.clients.push(network.to_owned());
        self
    }

    /// Starts the server and waits until it is ready.
    pub fn start(self) -> FreeRadius {
        // Ports are picked free, then bound by freeradius: another test may
        // take one in between, so a failed bind is tried again.
        let mut last_log = String::new();
        for _ in 0..5 {
            match self.try_start() {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("freeradius did not start; last log:\n{last_log}");
    }

    fn try_start(&self) -> Result<FreeRadius, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("collecte-radius-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("freeradius directory");
        set_mode(&dir, 0o700);
        let (auth_port, acct_port) = match &self.netns {
            // A fresh namespace is the test's own: any port is free there.
            Some(_) => (1812, 1813),
            None => (free_udp_port(self.listen), free_udp_port(self.listen)),
        };
        let listen = match self.listen {
            IpAddr::V4(a) => format!("ipaddr = {a}"),
            IpAddr::V6(a) => format!("ipv6addr = {a}"),
        };
        let mut clients = String::new();
        for (i, network) in self.clients.iter().enumerate() {
            let key = if network.contains(':') {
                "ipv6addr"
            } else {
                "ipaddr"
            };
            write!(
                clients,
                "client c{i} {{\n\t{key} = {network}\n\tsecret = {:?}\n\
                 \trequire_message_authenticator = no\n}}\n",
                self.secret
            )
            .unwrap();
        }
        let conf = TEMPLATE
            .replace("@DIR@", &dir.display().to_string())
            .replace("@LISTEN@", &listen)
            .replace("@AUTH_PORT@", &auth_port.to_string())
            .replace("@ACCT_PORT@", &acct_port.to_string())
            .replace("@CLIENTS@", &clients);
        std::fs::write(dir.join("radiusd.conf"), conf).expect("write radiusd.conf");
        let users: String = self.users.iter().map(User::entry).collect();
        std::fs::write(dir.join("users"), users).expect("write users");
        std::fs::write(dir.join("acct_users"), "").expect("write acct_users");
        let log = dir.join("radius.log");

        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "freeradius"]);
                c
            }
            None => Command::new("freeradius"),
        };
        let out = std::fs::File::create(dir.join("stdout.log")).expect("freeradius stdout");
        let child = command
            .arg("-f")
            .arg("-d")
            .arg(&dir)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect(
                "freeradius is missing: install the Debian package freeradius (cargo xtask setup)",
            );
        let mut server = FreeRadius {
            dir,
            secret: self.secret.clone(),
            users: self.users.clone(),
            auth: SocketAddr::new(self.listen, auth_port),
            acct: SocketAddr::new(self.listen, acct_port),
            child: Some(child),
        };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                server.child = None;
                let log = format!("exited ({status}):\n{}", server.log());
                let _ = std::fs::remove_dir_all(&server.dir);
                return Err(log);
            }
            if server.log().contains("Ready to process requests") {
                return Ok(server);
            }
            assert!(
                Instant::now() < end,
                "freeradius is not ready after 20 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running FreeRADIUS, stopped on drop.
pub struct FreeRadius {
    dir: PathBuf,
    secret: String,
    users: Vec<User>,
    auth: SocketAddr,
    acct: SocketAddr,
    child: Option<Child>,
}

/// One record of the detail file: when it was written, and its attributes
/// (values unquoted; FreeRADIUS's own `Timestamp` included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRecord {
    pub time: String,
    pub attributes: BTreeMap<String, String>,
}

impl DetailRecord {
    /// The value of `attribute`, if present.
    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute).map(String::as_str)
    }

    /// The value of `attribute` as a number (enumerated values such as
    /// `Start` are not numbers: use [`DetailRecord::get`]).
    pub fn number(&self, attribute: &str) -> Option<u64> {
        self.get(attribute).and_then(|v| v.parse().ok())
    }
}

impl FreeRadius {
    /// A server with the default users, on 127.0.0.1.
    pub fn start() -> FreeRadius {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The authentication address (`HOST:PORT`).
    pub fn auth_addr(&self) -> SocketAddr {
        self.auth
    }

    /// The accounting address.
    pub fn acct_addr(&self) -> SocketAddr {
        self.acct
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no user {name:?} in this FreeRADIUS"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log.
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(self.dir.join("radius.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default());
        text
    }

    /// Writes `secret` to a file of mode 0600 in the server's directory,
    /// for a `[radius] secret_file`; returns its path.
    pub fn secret_file(&self) -> PathBuf {
        let path = self.dir.join("client.secret");
        std::fs::write(&path, format!("{}\n", self.secret)).expect("write secret file");
        set_mode(&path, 0o600);
        path
    }

    /// A `[radius]` section for this server, with `extra` lines appended
    /// (e.g. `timeout = "1s"`).
    pub fn radius_section(&self, extra: &str) -> String {
        format!(
            "[radius]\nservers = [\"{}\"]\naccounting_servers = [\"{}\"]\nsecret_file = {:?}\n{extra}",
            self.auth,
            self.acct,
            self.secret_file().display().to_string()
        )
    }

    /// The detail file's records, in order (none before the first
    /// accounting request).
    pub fn detail(&self) -> Vec<DetailRecord> {
        parse_detail(&std::fs::read_to_string(self.dir.join("detail")).unwrap_or_default())
    }

    /// Waits up to `timeout` for a detail record that `pred` accepts.
    pub fn wait_detail(
        &self,
        timeout: Duration,
        pred: impl Fn(&DetailRecord) -> bool,
    ) -> DetailRecord {
        let end = Instant::now() + timeout;
        loop {
            if let Some(r) = self.detail().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < end,
                "no such accounting record within {timeout:?}; detail file:\n{:#?}\nlog:\n{}",
                self.detail(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs freeradius: the child is the server.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- freeradius {} log ----\n{}",
                self.dir.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses a detail file (attribute lines start with a tab):
///
/// ```text
/// Mon Dec  7 03:04:34 2026
///     User-Name = "pap-v4"
///     Acct-Status-Type = Start
///     Timestamp = 1796612674
///
/// ```
pub fn parse_detail(text: &str) -> Vec<DetailRecord> {
    let mut out: Vec<DetailRecord> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            out.push(DetailRecord {
                time: line.to_owned(),
                attributes: BTreeMap::new(),
            });
            continue;
        }
        let Some(record) = out.last_mut() else {
            continue;
        };
        if let Some((name, value)) = line.trim().split_once(" = ") {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            record
                .attributes
                .entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    out
}

fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free UDP port on {ip}: {e}"))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_records() {
        let text = "Mon Dec  7 03:04:34 2026\n\tUser-Name = \"pap-v4\"\n\
                    \tAcct-Status-Type = Start\n\tAcct-Input-Gigawords = 2\n\n\
                    Mon Dec  7 03:04:35 2026\n\tAcct-Status-Type = Stop\n\n";
        let records = parse_detail(text);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].get("User-Name"), Some("pap-v4"));
        assert_eq!(records[0].number("Acct-Input-Gigawords"), Some(2));
        assert_eq!(records[1].get("Acct-Status-Type"), Some("Stop"));
        assert_eq!(records[1].time, "Mon Dec  7 03:04:35 2026");
    }

    #[test]
    fn users_file_entries() {
        let users: String = default_users().iter().map(User::entry).collect();
        assert!(
            users.contains(
                "rejected\tCleartext-Password := \"rejected-pass\", Auth-Type := Reject\n\
                 \tReply-Message = \"account disabled\"\n"
            ),
            "{users}"
        );
        assert!(
            users.contains(
                "pap-v6\tCleartext-Password := \"pap-v6-pass\"\n\
                 \tFramed-IPv6-Prefix = 2001:db8:1:1::/64,\n\
                 \tDelegated-IPv6-Prefix = 2001:db8:100::/56\n\n"
            ),
            "{users}"
        );
    }
}
