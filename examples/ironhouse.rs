//! Ironhouse (zguide chapter 5, "Strongest Security"): CURVE with client certificates, green.
//!
//! Certificates are created in a temporary directory: the server's pair, a pair per trusted
//! client and one for an intruder whose public certificate is not among the trusted ones. A
//! green REP server, guarded by the authenticator (only 127.0.0.1, only trusted keys), answers
//! green REQ clients; the intruder is refused. Everything runs as may coroutines.
//!
//! ```sh
//! cargo run --example ironhouse
//! ```

use std::path::{Path, PathBuf};

use zmqloop::auth::{certs, Authenticator, CurveAuth};
use zmqloop::green as zmq;

const CLIENTS: usize = 3;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    zmq::may::config().set_workers(2);
    println!("CURVE backed by {}", zmqloop::auth::require_curve()?);
    let dirs = Dirs::create()?;
    zmq::spawn(move || ironhouse(&dirs))
        .join()
        .map_err(|_| "the ironhouse coroutine panicked")?
}

/// Where the certificates go: trusted public keys apart from every secret one.
struct Dirs {
    root: PathBuf,
    /// Public certificates of the trusted clients: what the authenticator reads.
    trusted: PathBuf,
    /// Secret certificates, and the intruder's public one.
    private: PathBuf,
}

impl Dirs {
    fn create() -> std::io::Result<Dirs> {
        let root = std::env::temp_dir().join(format!("zmqloop-ironhouse-{}", std::process::id()));
        let dirs = Dirs {
            trusted: root.join("trusted"),
            private: root.join("private"),
            root,
        };
        std::fs::create_dir_all(&dirs.trusted)?;
        std::fs::create_dir_all(&dirs.private)?;
        Ok(dirs)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Creates a certificate pair in `private`, copies its public half to `public_dir` if given,
/// and returns its keys.
fn certificate(
    dirs: &Dirs,
    name: &str,
    public_dir: Option<&Path>,
) -> std::io::Result<zmq::CurveKeyPair> {
    let (public_file, secret_file) = certs::create_certificates(&dirs.private, name)?;
    if let Some(dir) = public_dir {
        std::fs::copy(&public_file, dir.join(format!("{name}.key")))?;
    }
    let cert = certs::load_certificate(secret_file)?;
    Ok(zmq::CurveKeyPair {
        public_key: cert.public_key,
        secret_key: cert.secret_key.expect("a secret certificate"),
    })
}

fn ironhouse(dirs: &Dirs) -> Result<(), Error> {
    let server_keys = certificate(dirs, "server", None)?;
    let clients = (0..CLIENTS)
        .map(|i| certificate(dirs, &format!("client{i}"), Some(&dirs.trusted)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let intruder_keys = certificate(dirs, "intruder", None)?;

    let ctx = zmq::Context::new();
    let mut auth = Authenticator::new(&ctx);
    auth.allow(&["127.0.0.1"])?;
    auth.configure_curve("*", CurveAuth::Directory(dirs.trusted.clone()))?;
    auth.start()?; // a coroutine, since we are in one
    println!("authenticator runs as {:?}", auth.runs_on().unwrap());

    let server = ctx.socket(zmq::REP)?;
    server.set_curve_server(true)?;
    server.set_curve_secretkey(&server_keys.secret_key)?;
    server.bind("tcp://127.0.0.1:*")?;
    let endpoint = server.get_last_endpoint()?.map_err(|_| "endpoint")?;
    let server_task = zmq::spawn(move || -> zmq::Result<zmq::Socket> {
        for _ in 0..CLIENTS {
            let request = server.recv_string(0)?.unwrap_or_default();
            server.send(format!("Security is not a given, {request}").as_str(), 0)?;
        }
        Ok(server) // still bound, for the intruder to knock on
    });

    let client_tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, keys)| {
            let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
            let server_public = server_keys.public_key;
            zmq::spawn(move || -> zmq::Result<String> {
                let client = curve_client(&ctx, &server_public, &keys)?;
                client.connect(&endpoint)?;
                client.send(format!("client{i}").as_str(), 0)?;
                Ok(client.recv_string(0)?.unwrap_or_default())
            })
        })
        .collect();
    for task in client_tasks {
        let reply = task.join().map_err(|_| "a client panicked")??;
        println!("trusted client got: {reply}");
    }
    let _server = server_task.join().map_err(|_| "the server panicked")??;

    // The intruder knows the server's public key but is not trusted: the handshake fails.
    let intruder = curve_client(&ctx, &server_keys.public_key, &intruder_keys)?;
    let events = format!("inproc://ironhouse-intruder-{}", std::process::id());
    intruder.monitor(
        &events,
        zmq::SocketEvent::HANDSHAKE_FAILED_AUTH.to_raw() as i32,
    )?;
    let monitor = ctx.socket(zmq::PAIR)?;
    monitor.connect(&events)?;
    intruder.set_reconnect_ivl(-1)?; // one attempt is enough to be refused

    // The handshake starts at connect: nothing needs to be sent. (A send could even wait for
    // good: once refused, a client that does not reconnect has no pipe left to send on.)
    intruder.connect(&endpoint)?;
    let event = monitor.recv_multipart(0)?;
    let status = u32::from_le_bytes(event[0][2..6].try_into()?);
    println!("intruder refused: handshake failed with ZAP status {status}");

    let stats = auth.statistics();
    println!(
        "authenticator: {} requests, {} accepted, {} refused",
        stats.requests,
        stats.accepted,
        stats.refused_total()
    );
    auth.stop()?;
    Ok(())
}

fn curve_client(
    ctx: &zmq::Context,
    server_public: &[u8; 32],
    keys: &zmq::CurveKeyPair,
) -> zmq::Result<zmq::Socket> {
    let client = ctx.socket(zmq::REQ)?;
    client.set_linger(0)?;
    client.set_curve_serverkey(server_public)?;
    client.set_curve_publickey(&keys.public_key)?;
    client.set_curve_secretkey(&keys.secret_key)?;
    Ok(client)
}
