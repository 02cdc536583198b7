//! The Debian package (`scripts/deb.sh`, `[package.metadata.deb]` in Cargo.toml). It is built
//! with cargo-deb from this test build's binary (CI builds no release binary; `scripts/deb.sh`
//! alone builds the release one), its files and control archive are inspected (`dpkg-deb -x`,
//! `dpkg-deb -e`), and then it is installed for real, `dpkg -i`, in a private mount namespace
//! whose /etc, /usr and /var are overlays of the machine's, so the machine itself is untouched:
//! the postinst must create the `trunkgate` user, /var/lib/trunkgate and an API token, the unit
//! must be enabled, `--check-config` must pass as the service user, and `systemd-analyze verify`
//! must pass on the installed unit without a word (it resolves ExecStart's /usr/bin/trunkgate
//! and the `man:trunkgate(1)` page, and needs no running systemd). `systemd-analyze verify
//! --root=<extracted package>` cannot do this: a bare package tree lacks systemd's own targets
//! and /bin/kill. A second `dpkg -i` (the upgrade path) keeps the token; a purge removes it all
//! but the user. Needs root, cargo-deb (scripts/test.sh installs it), dpkg, systemd-analyze and
//! unshare (util-linux).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trunkgate");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `cmd` to the end (at most `limit`) and returns what it printed; panics, with its
/// output, if it fails or takes too long.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    // The pipes are drained by threads so a chatty child cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish in {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A scratch directory, removed on drop (also after a failed assertion).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("trunkgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn man_page_and_completions_come_from_the_cli() {
    let limit = Duration::from_secs(30);
    let man = text(&run(Command::new(BIN).arg("man"), limit));
    assert!(
        man.lines().any(|l| l.starts_with(".TH trunkgate 1 ")),
        "roff title:\n{man}"
    );
    assert_eq!(man.matches(".ds Aq").count(), 2, "one preamble:\n{man}");
    for needle in [
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        "trunkgate\\-demo(1)",
        "trunkgate\\-man(1)",
        "trunkgate\\-completions(1)",
        "\\-\\-check\\-config",
        ".SH FILES",
        "/etc/trunkgate/trunkgate.toml",
        ".SH SIGNALS",
        "SIGHUP",
    ] {
        assert!(man.contains(needle), "man page lacks {needle:?}:\n{man}");
    }
    let bash = text(&run(Command::new(BIN).args(["completions", "bash"]), limit));
    assert!(bash.contains("complete -F _trunkgate"), "bash:\n{bash}");
    for sub in ["demo", "man", "completions", "--check-config"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    let zsh = text(&run(Command::new(BIN).args(["completions", "zsh"]), limit));
    assert!(zsh.starts_with("#compdef trunkgate"), "zsh:\n{zsh}");
    let fish = text(&run(Command::new(BIN).args(["completions", "fish"]), limit));
    assert!(fish.contains("complete -c trunkgate"), "fish:\n{fish}");
    let other = Command::new(BIN)
        .args(["completions", "powershell"])
        .output()
        .expect("run trunkgate");
    assert_eq!(other.status.code(), Some(2), "only bash, zsh and fish");
}

/// Metric names `expr` uses (`trunkgate_…`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("trunkgate_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn grafana_dashboard_charts_exported_metrics() {
    let root = Path::new(ROOT);
    let json = read(&root.join("etc/grafana/trunkgate.json"));
    let dash: serde_json::Value = serde_json::from_str(&json).expect("dashboard is JSON");
    assert_eq!(dash["schemaVersion"], 39);
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dash["__inputs"][0]["pluginId"], "prometheus");
    let exported = read(&root.join("src/app/metrics.rs"));
    let panels = dash["panels"].as_array().expect("panels");
    let mut used = std::collections::BTreeSet::new();
    let mut titles = Vec::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let expr = t["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: {expr}");
            for name in names {
                // A histogram's series are its name plus _bucket, _sum, _count.
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| exported.contains(&format!("\"{b}\"")))
                    .unwrap_or(&name)
                    .to_string();
                let short = base.trim_start_matches("trunkgate_");
                assert!(
                    exported.contains(&format!("\"{short}\"")) || exported.contains(&base),
                    "{title} uses {name}, which src/app/metrics.rs does not export"
                );
                used.insert(name);
            }
        }
        titles.push(title);
    }
    for name in [
        "trunkgate_calls_active",
        "trunkgate_calls_started_total",
        "trunkgate_calls_ended_total",
        "trunkgate_policy_rejected_total",
        "trunkgate_policy_dropped_total",
        "trunkgate_agent_dropped_frames_total",
        "trunkgate_callbacks_pending",
        "trunkgate_callbacks_dead_total",
    ] {
        assert!(used.contains(name), "no panel charts {name}");
    }
    for name in [
        "trunkgate_calls_ended_by_reason_total",
        "trunkgate_calls_refused_total",
        "trunkgate_call_setup_seconds_bucket",
        "trunkgate_rtp_packets_received_total",
        "trunkgate_rtp_packets_lost_total",
        "trunkgate_srtp_refused_total",
    ] {
        assert!(used.contains(name), "no panel charts {name}");
    }
    // The requested views each have a panel.
    for view in ["end reason", "by rule", "setup latency", "RTP loss"] {
        assert!(
            titles.iter().any(|t| t.contains(view)),
            "no panel for {view}: {titles:?}"
        );
    }
}

/// What the namespace script prints: `key=value` lines, checked one by one.
const INSTALL: &str = r#"set -eu
scratch=$1 deb=$2
for d in etc usr var; do
  mkdir -p "$scratch/$d.up" "$scratch/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.up,workdir=$scratch/$d.work" "/$d"
done
# On a machine booted with systemd, its maintainer-script hooks must not reach the real one.
if [ -d /run/systemd/system ]; then mount -t tmpfs tmpfs /run/systemd; fi
export DEBIAN_FRONTEND=noninteractive
dpkg -i "$deb" >&2
echo "status=$(dpkg-query -W -f='${Status}' trunkgate)"
echo "conffiles=$(dpkg-query -W -f='${Conffiles}' trunkgate | awk '{print $1}')"
echo "user=$(id -un trunkgate):$(id -gn trunkgate):$(getent passwd trunkgate | cut -d: -f6,7)"
echo "state=$(stat -c '%U:%G:%a' /var/lib/trunkgate)"
echo "token=$(stat -c '%U:%G:%a' /etc/trunkgate/api.token)"
token=$(cat /etc/trunkgate/api.token)
echo "token_len=${#token}"
echo "enabled=$(readlink /etc/systemd/system/multi-user.target.wants/trunkgate.service)"
echo "man=$(man -w trunkgate)"
echo "bash=$(bash -c '. /usr/share/bash-completion/completions/trunkgate && complete -p trunkgate')"
if setpriv --reuid=trunkgate --regid=trunkgate --init-groups \
    /usr/bin/trunkgate --check-config /etc/trunkgate/trunkgate.toml >&2; then
  echo "check_as_user=ok"
fi
if out=$(systemd-analyze verify /usr/lib/systemd/system/trunkgate.service 2>&1); then
  echo "verify=ok"
fi
echo "verify_said=$(printf '%s' "$out" | tr '\n' '|')"
dpkg -i "$deb" >&2
[ "$(cat /etc/trunkgate/api.token)" = "$token" ] && echo "upgrade_keeps_token=yes"
dpkg --purge trunkgate >&2
gone=yes
for f in /usr/bin/trunkgate /etc/trunkgate /var/lib/trunkgate \
    /etc/systemd/system/multi-user.target.wants/trunkgate.service; do
  if [ -e "$f" ] || [ -L "$f" ]; then echo "left=$f"; gone=no; fi
done
echo "purged=$gone"
echo "user_after_purge=$(id -un trunkgate)"
"#;

#[test]
fn deb_builds_installs_and_its_unit_verifies() {
    let found = Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "cargo-deb is missing: scripts/test.sh installs it (cargo install cargo-deb --locked)"
    );
    let uid = Command::new("id").arg("-u").output().map(|o| text(&o));
    assert_eq!(
        uid.as_ref().map(|u| u.trim()).ok(),
        Some("0"),
        "the install test runs dpkg in a mount namespace: it needs root (CI runs as root)"
    );
    let scratch = Scratch::new("deb");
    let out = scratch.0.join("out");
    let minutes = Duration::from_secs(300);
    run(
        Command::new(Path::new(ROOT).join("scripts/deb.sh"))
            .arg("--binary")
            .arg(BIN)
            .arg("--out")
            .arg(&out)
            // The debug binary's symbols are not worth packing; fast compression keeps CI quick.
            .args(["--strip", "--fast", "--quiet"]),
        minutes,
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("read out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb in {}: {debs:?}", out.display());
    let deb = &debs[0];
    let name = deb.file_name().unwrap_or_default().to_string_lossy();
    assert!(name.starts_with("trunkgate_0.1.0-1_"), "{name}");

    // The files, as dpkg-deb unpacks them.
    let root = scratch.0.join("root");
    let control = scratch.0.join("control");
    run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root),
        minutes,
    );
    run(
        Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control),
        minutes,
    );
    inspect_files(&root);
    inspect_control(&control);

    // The install, in a namespace of its own.
    let script = scratch.0.join("install.sh");
    std::fs::write(&script, INSTALL).expect("write install script");
    let said = text(&run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh"])
            .arg(&script)
            .arg(&scratch.0)
            .arg(deb),
        minutes,
    ));
    let get = |key: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} from the install:\n{said}"))
    };
    assert_eq!(get("status"), "install ok installed");
    assert_eq!(get("conffiles"), "/etc/trunkgate/trunkgate.toml");
    assert_eq!(
        get("user"),
        "trunkgate:trunkgate:/var/lib/trunkgate:/usr/sbin/nologin"
    );
    assert_eq!(get("state"), "trunkgate:trunkgate:750");
    assert_eq!(get("token"), "root:trunkgate:640");
    assert_eq!(get("token_len"), "40", "a random 30-byte token, base64");
    assert!(
        get("enabled").ends_with("/systemd/system/trunkgate.service"),
        "enabled for multi-user.target:\n{said}"
    );
    assert_eq!(get("man"), "/usr/share/man/man1/trunkgate.1.gz");
    assert!(get("bash").contains("trunkgate"), "{said}");
    assert_eq!(get("check_as_user"), "ok", "ExecStartPre as User=trunkgate");
    assert_eq!(get("verify"), "ok", "systemd-analyze verify:\n{said}");
    assert_eq!(get("verify_said"), "", "systemd-analyze verify warned");
    assert_eq!(get("upgrade_keeps_token"), "yes");
    assert_eq!(get("purged"), "yes", "{said}");
    assert_eq!(get("user_after_purge"), "trunkgate");
}

fn inspect_files(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let bin = root.join("usr/bin/trunkgate");
    let mode = std::fs::metadata(&bin)
        .expect("usr/bin/trunkgate")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let version = text(&run(
        Command::new(&bin).arg("--version"),
        Duration::from_secs(30),
    ));
    assert_eq!(version.trim(), "trunkgate 0.1.0");

    let unit = read(&root.join("usr/lib/systemd/system/trunkgate.service"));
    assert_eq!(
        unit,
        read(&Path::new(ROOT).join("systemd/trunkgate.service"))
    );
    for line in [
        "Type=notify",
        "ExecStartPre=/usr/bin/trunkgate --check-config /etc/trunkgate/trunkgate.toml",
        "ExecStart=/usr/bin/trunkgate --config /etc/trunkgate/trunkgate.toml",
        "User=trunkgate",
        "StateDirectory=trunkgate",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }
    assert_eq!(
        read(&root.join("etc/trunkgate/trunkgate.toml")),
        read(&Path::new(ROOT).join("etc/trunkgate.toml"))
    );
    assert_eq!(
        read(&root.join("usr/share/trunkgate/grafana/trunkgate.json")),
        read(&Path::new(ROOT).join("etc/grafana/trunkgate.json"))
    );
    let man = root.join("usr/share/man/man1/trunkgate.1.gz");
    let roff = text(&run(
        Command::new("zcat").arg(&man),
        Duration::from_secs(30),
    ));
    assert!(roff.contains("\n.TH trunkgate 1 "), "{roff}");
    for completion in [
        "usr/share/bash-completion/completions/trunkgate",
        "usr/share/zsh/vendor-completions/_trunkgate",
        "usr/share/fish/vendor_completions.d/trunkgate.fish",
    ] {
        assert!(
            read(&root.join(completion)).contains("trunkgate"),
            "{completion}"
        );
    }
}

fn inspect_control(control: &Path) {
    let fields = read(&control.join("control"));
    for field in ["Package: trunkgate", "Section: net", "Architecture: "] {
        assert!(fields.contains(field), "control lacks {field}:\n{fields}");
    }
    let depends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{fields}"));
    assert!(depends.contains("adduser"), "{depends}");
    assert!(depends.contains("libc6"), "$auto computed: {depends}");
    assert_eq!(
        read(&control.join("conffiles")),
        "/etc/trunkgate/trunkgate.toml\n"
    );
    let postinst = read(&control.join("postinst"));
    for needle in [
        "adduser --system",
        "install -d -o trunkgate -g trunkgate -m 0750 /var/lib/trunkgate",
        "deb-systemd-helper enable trunkgate.service",
        "deb-systemd-invoke try-restart trunkgate.service",
    ] {
        assert!(postinst.contains(needle), "postinst lacks {needle}");
    }
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "not started on install"
    );
    let prerm = read(&control.join("prerm"));
    assert!(prerm.contains("deb-systemd-invoke stop trunkgate.service"));
    let postrm = read(&control.join("postrm"));
    assert!(postrm.contains("deb-systemd-helper purge trunkgate.service"));
    assert!(postrm.contains("rm -rf /var/lib/trunkgate"));
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            !read(&control.join(script)).contains("#DEBHELPER#"),
            "{script}"
        );
    }
}
