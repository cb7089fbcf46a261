//! `zmqloop::auth::certs`: certificates written by pyzmq load here, ours load in pyzmq, and
//! bad files, names and directories give clear errors.
//!
//! The pyzmq check runs `python3` (or `$ZMQLOOP_PYTHON`) when it can import `zmq`; it is
//! skipped otherwise, unless `ZMQLOOP_REQUIRE_PYZMQ=1` (set by `.ci/run`) makes it required.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use zmqloop::auth::certs;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyzmq-certs")
}

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "zmqloop-certs-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn certificates_written_by_pyzmq_load() {
    let secret = certs::load_certificate(fixtures().join("client.key_secret")).unwrap();
    let public = certs::load_certificate(fixtures().join("client.key")).unwrap();
    assert_eq!(public.public_key, secret.public_key);
    assert_eq!(public.secret_key, None);
    assert!(secret.secret_key.is_some());
    assert_eq!(
        secret.metadata,
        [("name".to_string(), "pyzmq fixture client".to_string())]
    );
    assert_eq!(
        public.public_z85(),
        "Ut*CR@3nV@J]t#RIm2[?c:xb=SA(]<n+)moBbH50"
    );
    let server = certs::load_certificate(fixtures().join("server.key")).unwrap();
    let all = certs::load_certificates(fixtures()).unwrap();
    assert_eq!(all.len(), 2, "only the public (.key) files count");
    assert!(all.contains(&server.public_key) && all.contains(&public.public_key));
}

#[test]
fn created_certificates_are_a_working_pair_and_the_secret_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("create");
    let (public_file, secret_file) = certs::create_certificates(dir.path(), "node").unwrap();
    assert_eq!(public_file, dir.path().join("node.key"));
    assert_eq!(secret_file, dir.path().join("node.key_secret"));
    let secret = certs::load_certificate(&secret_file).unwrap();
    let public = certs::load_certificate(&public_file).unwrap();
    assert_eq!(public.public_key, secret.public_key);
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the secret file is readable by others: {mode:o}"
    );
    assert!(!std::fs::read_to_string(&public_file)
        .unwrap()
        .contains("secret-key"));
    // That the two keys are a pair is proved by the CURVE handshakes of tests/auth.rs
    // (curve_directories_are_reloaded...) and by pyzmq below.
}

#[test]
fn bad_files_names_and_directories_give_clear_errors() {
    let dir = TempDir::new("bad");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let short = write("short.key", "curve\n    public-key = \"tooshort\"\n");
    let err = certs::load_certificate(&short).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("short.key"), "{err}");
    assert!(err.to_string().contains("40 Z85 characters"), "{err}");

    let garbage = write("garbage.key", "\u{0}\u{1}not zpl at all = = =\n");
    let err = certs::load_certificate(&garbage).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");

    let binary = dir.path().join("binary.key");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let err = certs::load_certificate(&binary).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");

    // A directory with a bad certificate does not load (no silent skip in an allow list).
    let err = certs::load_certificates(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);

    let missing = dir.path().join("missing");
    let err = certs::load_certificates(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing"), "{err}");
    let err = certs::load_certificate(missing.join("x.key")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = certs::create_certificates(&missing, "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    for name in ["", "a/b"] {
        let err = certs::create_certificates(dir.path(), name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
    }
    certs::create_certificates(dir.path(), "once").unwrap();
    let err = certs::create_certificates(dir.path(), "once").unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "never overwrite a key"
    );
}

#[test]
fn a_failed_write_leaves_no_file_behind_to_block_the_next_attempt() {
    for blocked in ["server.key", "server.key_secret"] {
        let dir = TempDir::new("half-written");
        // A directory where one of the two files goes: creating that file fails.
        std::fs::create_dir(dir.path().join(blocked)).unwrap();
        let err = certs::create_certificates(dir.path(), "server").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [blocked], "blocked {blocked}: a file was left behind");
        std::fs::remove_dir(dir.path().join(blocked)).unwrap();
        certs::create_certificates(dir.path(), "server").unwrap();
    }
}

/// The Python interpreter to check pyzmq with.
fn python() -> String {
    std::env::var("ZMQLOOP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether that interpreter can import pyzmq; if not, and `ZMQLOOP_REQUIRE_PYZMQ=1`, panics.
fn pyzmq_available() -> bool {
    let found = Command::new(python())
        .args(["-c", "import zmq.auth"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !found && std::env::var("ZMQLOOP_REQUIRE_PYZMQ").as_deref() == Ok("1") {
        panic!(
            "ZMQLOOP_REQUIRE_PYZMQ=1 but `{} -c 'import zmq.auth'` fails: install pyzmq \
             (pip install pyzmq) or point ZMQLOOP_PYTHON at an interpreter that has it",
            python()
        );
    }
    found
}

#[test]
fn our_certificates_load_in_pyzmq() {
    if !pyzmq_available() {
        eprintln!(
            "skipped: no pyzmq for {} (set ZMQLOOP_REQUIRE_PYZMQ=1 to require it)",
            python()
        );
        return;
    }
    let dir = TempDir::new("pyzmq");
    let (public_file, secret_file) = certs::create_certificates(dir.path(), "ours").unwrap();
    let ours = certs::load_certificate(&secret_file).unwrap();
    let script = "import sys, zmq, zmq.auth\n\
        public, none = zmq.auth.load_certificate(sys.argv[1])\n\
        public2, secret = zmq.auth.load_certificate(sys.argv[2])\n\
        assert none is None and public == public2\n\
        assert zmq.curve_public(secret) == public, 'secret does not match public'\n\
        keys = zmq.auth.load_certificates(sys.argv[3])\n\
        print(public.decode(), secret.decode(), len(keys))\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&public_file)
        .arg(&secret_file)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyzmq could not load our certificates: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(
        fields,
        [
            ours.public_z85().as_str(),
            ours.secret_z85().unwrap().as_str(),
            "1"
        ]
    );
}
