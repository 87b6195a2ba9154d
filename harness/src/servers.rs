//! Real storage servers for the remote-cache tests, each started on a free loopback port in a
//! directory of its own and stopped when dropped: Debian's `redis-server`, and `nginx` with
//! the WebDAV extension module. `scripts/storage` installs them (as root, with apt-get).
//!
//! Where a server is not installed, [`Redis::start`] and [`Dav::start`] return why, and the
//! test prints it and returns: the tests that need one say plainly that they did not run.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(10);

/// The WebDAV extension module as Debian installs it.
const DAV_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so";

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits until `port` accepts connections, or panics with the server's log.
fn wait_for(port: u16, child: &mut Child, log: &Path) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || started.elapsed() > STARTUP {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the server on port {port} did not start ({exited:?}):\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` of the test's own.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one, with `config` lines added to its configuration (`maxmemory 1mb`, say).
    pub fn start(config: &[&str]) -> Result<Redis, String> {
        if !installed("redis-server") || !installed("redis-cli") {
            return Err(
                "redis-server is not installed (scripts/storage installs it as root: \
                        apt-get install redis-server)"
                    .into(),
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("redis.log");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile {}\n",
            dir.path().display(),
            log.display()
        );
        for line in config {
            text.push_str(line);
            text.push('\n');
        }
        let conf = dir.path().join("redis.conf");
        std::fs::write(&conf, text).expect("write redis.conf");
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        wait_for(port, &mut child, &log);
        Ok(Redis {
            child,
            port,
            _dir: dir,
        })
    }

    /// The URL of database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli` with `args`; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The keys stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cli(&["--scan"]).lines().map(str::to_owned).collect();
        keys.sort();
        keys
    }

    /// Kills the server at once, as a crash or a lost network would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An `nginx` serving WebDAV from a directory of the test's own.
#[derive(Debug)]
pub struct Dav {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Dav {
    pub fn start() -> Result<Dav, String> {
        if !installed("nginx") || !Path::new(DAV_MODULE).exists() {
            return Err(
                "nginx with its WebDAV module is not installed (scripts/storage \
                        installs them as root: apt-get install nginx libnginx-mod-http-dav-ext)"
                    .into(),
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        std::fs::create_dir(dir.path().join("www")).expect("mkdir www");
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nload_module {DAV_MODULE};\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n\
             client_max_body_size 128m;\n    location / {{\n\
             dav_methods PUT DELETE MKCOL COPY MOVE;\n      dav_ext_methods PROPFIND OPTIONS;\n\
             create_full_put_path on;\n      dav_access user:rw group:r all:r;\n    }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        wait_for(port, &mut child, &dir.path().join("error.log"));
        Ok(Dav { child, port, dir })
    }

    /// The URL of the collection `cache`.
    pub fn url(&self) -> String {
        format!("webdav+http://127.0.0.1:{}/cache", self.port)
    }

    /// The directory the server's files are in.
    pub fn files(&self) -> std::path::PathBuf {
        self.dir.path().join("www")
    }
}

impl Drop for Dav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
