//! The CLI end to end, as a newcomer uses it: the real binary, from an empty directory, with a
//! temporary HOME and config directory. `vpcep serve --with-agent` makes the default accounts
//! and the client profiles; a restart with `--accounts` adds a partner account without
//! locking the default one out; then two accounts build, connect, carry bytes through and tear
//! down a whole network with CLI commands only, reading ids with `-o id`. Also the traps of
//! issue 13: private services by default, one-line errors with exit codes, `call` without a
//! leading slash, a busy address named, plain logs, an `--accounts` clash refused.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PARTNER_DOMAIN: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const PARTNER_PROJECT: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
const PARTNER_AK: &str = "AKCLIPARTNER00000001";
const PARTNER_SK: &str = "cli-partner-secret";
/// The data plane's grant for this test (its own loopback ranges).
const DATAPLANE_CIDRS: &str = "127.212.0.0/14";
/// Longest a client command may take before the test fails (the CLI's own --timeout is 60 s).
const COMMAND_DEADLINE: Duration = Duration::from_secs(90);

/// A scratch user: a working directory and a HOME with its own config directory.
struct User {
    _dir: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
}

impl User {
    fn new() -> User {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        User {
            work,
            home,
            _dir: dir,
        }
    }

    /// `vpcep ARGS` in `cwd` with this user's environment (and no VPCEP_* of the caller's).
    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vpcep"));
        for (k, _) in std::env::vars() {
            if k.starts_with("VPCEP_") {
                c.env_remove(k);
            }
        }
        c.args(args)
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        c
    }

    /// Runs a client command from the HOME directory (not where the server's data is).
    fn run(&self, args: &[&str]) -> Output {
        output_within(self.command(&self.home, args))
    }

    /// Runs a client command that must succeed; answers its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vpcep {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Runs a client command that must fail with `code`; answers its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "vpcep {args:?}: stdout {} stderr {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        stderr
    }

    fn serve(&self, listen: &str, extra: &[&str]) -> Server {
        self.serve_with("--with-agent", listen, extra)
    }

    /// `vpcep serve` with `mode` (`--with-agent` or `--require-agent`).
    fn serve_with(&self, mode: &str, listen: &str, extra: &[&str]) -> Server {
        let log = self.work.join(format!("serve-{}.log", extra.len()));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command(
                &self.work,
                &[
                    &["serve", "--listen", listen, mode][..],
                    &["--dataplane-cidrs", DATAPLANE_CIDRS],
                    extra,
                ]
                .concat(),
            )
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            log,
            url: format!("http://{listen}"),
        };
        s.wait_healthy();
        s
    }
}

struct Server {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = self.url.trim_start_matches("http://").to_string();
        loop {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                // Whatever answers there must answer soon (or be retried until the deadline).
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                let _ =
                    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vpcep serve exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "not healthy: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the server saw (each answered request is logged with its latency).
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- vpcep serve at {} (last 60 log lines) ----", self.url);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end within [`COMMAND_DEADLINE`] and answers its output.
fn output_within(cmd: Command) -> Output {
    vpcep_testkit::process::output_within(cmd, COMMAND_DEADLINE)
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", vpcep_testkit::wait::free_port())
}

/// Polls `f` until it is true or 20 s passed.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_accounts_build_connect_carry_bytes_and_tear_down_with_the_cli_only() {
    let user = User::new();
    let listen = free_addr();

    // First start, from an empty directory: accounts, their file and the client profiles.
    let server = user.serve(&listen, &[]);
    let first = server.log();
    assert!(first.contains("created the default accounts"), "{first}");
    assert!(!first.contains('\u{1b}'), "plain logs in a file: {first}");
    let config = user.home.join(".config/vpcep/config.toml");
    assert!(
        config.exists(),
        "the first start writes the client profiles"
    );
    // From another directory (the HOME), the CLI finds the server and the keys.
    let owner_domain = user.ok(&["whoami", "-o", "id"]);
    assert_eq!(owner_domain.len(), 32, "{owner_domain}");
    let operator_domain = user.ok(&["whoami", "--profile", "operator", "-o", "id"]);
    assert_ne!(
        owner_domain, operator_domain,
        "the operator is a separate account"
    );

    // A second server on the same address is refused, naming the address.
    let mut busy = user.command(&user.work, &["serve", "--listen", &listen, "--database"]);
    busy.arg(format!(
        "sqlite://{}",
        user.work.join("other/db.sqlite").display()
    ));
    let busy = output_within(busy);
    assert!(!busy.status.success());
    let busy = String::from_utf8_lossy(&busy.stderr);
    assert!(busy.contains(&listen) && busy.contains("in use"), "{busy}");
    server.stop();

    // An accounts file whose key clashes with a default account: refused, saying why.
    let default_file = user.work.join("vpcep-data/default-account.toml");
    let defaults = std::fs::read_to_string(&default_file).unwrap();
    let tenant_ak = defaults
        .lines()
        .find_map(|l| l.strip_prefix("access_key = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let partner = format!(
        "[[account]]\ndomain_id = \"{PARTNER_DOMAIN}\"\ndomain_name = \"partner\"\nprojects = [\"{PARTNER_PROJECT}\"]\n[[account.credential]]\naccess_key = \"{PARTNER_AK}\"\nsecret_key = \"{PARTNER_SK}\"\n"
    );
    std::fs::write(
        user.work.join("clash.toml"),
        partner.replace(PARTNER_AK, &tenant_ak),
    )
    .unwrap();
    let clash = output_within(user.command(
        &user.work,
        &["serve", "--listen", &listen, "--accounts", "clash.toml"],
    ));
    assert!(!clash.status.success());
    let clash = String::from_utf8_lossy(&clash.stderr);
    assert!(
        clash.contains("default accounts of the first start"),
        "{clash}"
    );

    // Restart with a partner account: the default account is not locked out.
    std::fs::write(user.work.join("partner.toml"), &partner).unwrap();
    let server = user.serve(&listen, &["--accounts", "partner.toml"]);
    assert_eq!(user.ok(&["whoami", "-o", "id"]), owner_domain);
    user.ok(&[
        "profile",
        "set",
        "partner",
        "--endpoint",
        &server.url,
        "--access-key",
        PARTNER_AK,
        "--secret-key",
        PARTNER_SK,
        "--project-id",
        PARTNER_PROJECT,
        "--domain-id",
        PARTNER_DOMAIN,
    ]);
    let partner_domain = user.ok(&["whoami", "--profile", "partner", "-o", "id"]);
    assert_eq!(partner_domain, PARTNER_DOMAIN);
    // A reload (SIGHUP) keeps the default accounts beside the file's too.
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    eventually("the accounts reloaded", || {
        server.log().contains("accounts reloaded")
    });
    assert_eq!(user.ok(&["whoami", "-o", "id"]), owner_domain);

    // The provider (profile default) publishes a backend that echoes.
    let backend = TcpListener::bind("127.212.1.10:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for mut s in backend.incoming().flatten() {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
        }
    });
    let vpc = user.ok(&[
        "vpc",
        "create",
        "--cidr",
        "127.212.0.0/16",
        "--name",
        "prod",
        "-o",
        "id",
    ]);
    let subnet = user.ok(&[
        "subnet",
        "create",
        "--vpc-id",
        &vpc,
        "--cidr",
        "127.212.1.0/24",
        "-o",
        "id",
    ]);
    let port = user.ok(&[
        "port",
        "create",
        "--subnet-id",
        &subnet,
        "--ip",
        "127.212.1.10",
        "-o",
        "id",
    ]);
    let mapping = format!("8000:{backend_port}");
    let service = user.ok(&[
        "service",
        "create",
        "--port-id",
        &port,
        "--vpc-id",
        &vpc,
        "--port",
        &mapping,
        "--name",
        "api",
        "-o",
        "id",
    ]);
    assert_eq!(
        uuid::Uuid::try_parse(&service).map(|_| ()),
        Ok(()),
        "{service}"
    );
    let full_name = format!("local-1.api.{service}");
    assert_eq!(
        user.ok(&[
            "service",
            "describe",
            &full_name,
            "--profile",
            "partner",
            "-o",
            "id"
        ]),
        service
    );

    // The consumer (profile partner) cannot connect before the owner permits it: the default
    // account is a tenant, its services are not public.
    let p = ["--profile", "partner"];
    assert!(!user
        .ok(&[&["service", "public", "-o", "id"][..], &p].concat())
        .contains(&service));
    let vpc2 = user.ok(&[
        &["vpc", "create", "--cidr", "127.213.0.0/16", "-o", "id"][..],
        &p,
    ]
    .concat());
    let subnet2 = user.ok(&[
        &[
            "subnet",
            "create",
            "--vpc-id",
            &vpc2,
            "--cidr",
            "127.213.1.0/24",
            "-o",
            "id",
        ][..],
        &p,
    ]
    .concat());
    let create_endpoint = [
        &[
            "endpoint",
            "create",
            "--service",
            &full_name,
            "--vpc-id",
            &vpc2,
        ][..],
        &["--subnet-id", &subnet2, "-o", "id"],
        &p,
    ]
    .concat();
    let refused = user.fails(&create_endpoint, 1);
    assert!(
        refused.contains("EndPoint.") && refused.contains("/vpc-endpoints"),
        "{refused}"
    );
    assert_eq!(
        user.ok(&["service", "permit", &service, &partner_domain, "-o", "id"]),
        format!("iam:domain::{PARTNER_DOMAIN}")
    );
    let endpoint = user.ok(&create_endpoint);
    assert_eq!(
        user.ok(&[
            "connection",
            "list",
            &service,
            "--status",
            "pendingAcceptance",
            "-o",
            "id"
        ]),
        endpoint
    );
    assert_eq!(
        user.ok(&["connection", "accept", &service, &endpoint, "-o", "id"]),
        endpoint
    );

    // Bytes flow through the endpoint's address to the backend.
    let mut ip = String::new();
    eventually("the endpoint accepted with an address", || {
        let v: serde_json::Value = serde_json::from_str(
            &user.ok(&[&["endpoint", "show", &endpoint, "-o", "json"][..], &p].concat()),
        )
        .unwrap();
        ip = v["ip"].as_str().unwrap_or_default().to_string();
        v["status"] == "accepted" && !ip.is_empty()
    });
    let mut echoed = Vec::new();
    eventually("bytes through the endpoint", || {
        let Ok(mut s) = TcpStream::connect((ip.as_str(), 8000)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(b"hello through vpcep");
        let mut buf = [0u8; 64];
        echoed = match s.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => vec![],
        };
        !echoed.is_empty()
    });
    assert_eq!(echoed, b"hello through vpcep");

    // Traps: a path without its leading slash; one-line errors and exit codes.
    assert_eq!(
        user.ok(&["call", "GET", "v1/{project_id}/vpcs", "-o", "id"]),
        ""
    );
    let missing = user.fails(&["vpc", "show", "2f1e0000-0000-4000-8000-000000000000"], 1);
    assert!(
        missing.contains("HTTP 404") && missing.contains(&server.url),
        "{missing}"
    );
    let closed = format!("http://{}", free_addr());
    let unreachable = user.fails(&["vpc", "list", "--endpoint", &closed], 2);
    assert!(
        unreachable.contains(&closed) && unreachable.contains("running"),
        "{unreachable}"
    );
    assert_eq!(user.run(&["vpc", "frobnicate"]).status.code(), Some(2));
    // A server that accepts and never answers: the command gives up after --timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let hung = user.fails(
        &["vpc", "list", "--endpoint", &silent_url, "--timeout", "1"],
        2,
    );
    assert!(
        hung.contains(&silent_url) && hung.contains("no answer within 1 s"),
        "{hung}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{hung}");
    drop(silent);
    user.fails(
        &[
            "service",
            "create",
            "--port-id",
            &port,
            "--vpc-id",
            &vpc,
            "--port",
            "80",
        ],
        2,
    );

    // Tear everything down; deletes print nothing (the id with -o id).
    assert_eq!(
        user.ok(&[&["endpoint", "delete", &endpoint][..], &p].concat()),
        ""
    );
    assert_eq!(
        user.ok(&["service", "delete", &service, "-o", "id"]),
        service
    );
    eventually("the service gone", || {
        !user.ok(&["service", "list", "-o", "id"]).contains(&service)
    });
    user.ok(&["port", "delete", &port]);
    user.ok(&["subnet", "delete", &subnet]);
    user.ok(&["vpc", "delete", &vpc]);
    user.ok(&[&["subnet", "delete", &subnet2][..], &p].concat());
    user.ok(&[&["vpc", "delete", &vpc2][..], &p].concat());
    assert_eq!(user.ok(&["vpc", "list", "-o", "id"]), "");
    assert_eq!(
        user.ok(&[&["vpc", "list", "-o", "id"][..], &p].concat()),
        ""
    );
    assert_eq!(user.ok(&["port", "list", "-o", "id"]), "");

    // Request logs: plain text in a file, latencies rounded to the microsecond.
    let log = server.log();
    assert!(!log.contains('\u{1b}'), "no ANSI codes in a file");
    let latencies: Vec<&str> = log
        .split("latency_ms=")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect();
    assert!(latencies.len() > 10, "{log}");
    for l in latencies {
        let decimals = l.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "latency_ms={l} is not rounded");
    }
    server.stop();
}

#[test]
fn tables_have_a_header_and_json_is_the_answer_unchanged() {
    let user = User::new();
    let server = user.serve(&free_addr(), &[]);
    let vpc = user.ok(&[
        "vpc",
        "create",
        "--cidr",
        "127.214.0.0/16",
        "--name",
        "t",
        "-o",
        "id",
    ]);
    let table = user.ok(&["vpc", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("CIDR"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&vpc) && lines[1].contains("127.214.0.0/16"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&user.ok(&["vpc", "list", "-o", "json"])).unwrap();
    assert_eq!(json["vpcs"][0]["id"], vpc.as_str());
    let quota = user.ok(&["quota", "list", "-o", "id"]);
    assert!(quota.lines().any(|l| l == "endpoint_service"), "{quota}");
    user.ok(&["vpc", "delete", &vpc]);
    server.stop();
}

#[test]
fn the_agent_signs_with_the_operator_profile_the_first_start_wrote() {
    let user = User::new();
    let server = user.serve_with("--require-agent", &free_addr(), &[]);
    let vpc = user.ok(&["vpc", "create", "--cidr", "127.214.0.0/16", "-o", "id"]);
    let subnet = user.ok(&[
        "subnet",
        "create",
        "--vpc-id",
        &vpc,
        "--cidr",
        "127.214.1.0/24",
        "-o",
        "id",
    ]);
    let port = user.ok(&["port", "create", "--subnet-id", &subnet, "-o", "id"]);
    let service = user.ok(&[
        "service",
        "create",
        "--port-id",
        &port,
        "--vpc-id",
        &vpc,
        "--port",
        "80:80",
        "-o",
        "id",
    ]);
    let status = || {
        let v: serde_json::Value =
            serde_json::from_str(&user.ok(&["service", "show", &service, "-o", "json"])).unwrap();
        v["status"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(status(), "creating", "no agent yet");
    // No keys on the command line: the agent takes the profile `operator`.
    let log = std::fs::File::create(user.work.join("agent.log")).unwrap();
    let mut agent = user
        .command(
            &user.home,
            &[
                "agent",
                "--control-plane",
                &server.url,
                "--agent-id",
                "cli-e2e",
                "--dataplane-cidrs",
                DATAPLANE_CIDRS,
                "--handover-socket",
                &user.work.join("agent.sock").display().to_string(),
            ],
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    eventually("the service available once the agent reports", || {
        status() == "available"
    });
    let _ = agent.kill();
    let _ = agent.wait();
    server.stop();
}
