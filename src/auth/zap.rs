//! The ZAP wire format (ZeroMQ RFC 27): a request's frames into a [`Request`], a decision into
//! a reply's frames. No sockets here.

/// The only ZAP version there is.
pub(crate) const VERSION: &[u8] = b"1.0";

/// A security mechanism and the credentials its peer presented. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// NULL: no credentials (libzmq asks only for sockets with a ZAP domain set).
    Null,
    /// PLAIN: a user name and a password, in clear, as the frames carry them: bytes, not
    /// necessarily UTF-8 (never decoded, so that no two byte strings read as one).
    Plain {
        /// The user name.
        username: Vec<u8>,
        /// The password.
        password: Vec<u8>,
    },
    /// CURVE: the client's long-term public key, proved by the handshake.
    Curve {
        /// The key, binary.
        public_key: [u8; 32],
    },
    /// A mechanism this authenticator does not handle (GSSAPI).
    Other(String),
}

impl Credentials {
    /// The mechanism's name as ZAP spells it.
    pub(crate) fn mechanism(&self) -> &str {
        match self {
            Credentials::Null => "NULL",
            Credentials::Plain { .. } => "PLAIN",
            Credentials::Curve { .. } => "CURVE",
            Credentials::Other(name) => name,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Null => f.write_str("Null"),
            Credentials::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", &format_args!("{}", printable(username)))
                .field("password", &format_args!("<hidden>"))
                .finish(),
            Credentials::Curve { public_key } => f
                .debug_struct("Curve")
                .field("public_key", public_key)
                .finish(),
            Credentials::Other(name) => f.debug_tuple("Other").field(name).finish(),
        }
    }
}

/// Bytes from the wire for a log line: quoted text if they are UTF-8, else quoted with the
/// bytes that are not printable ASCII escaped (`"us\xffr"`).
pub(crate) fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("\"{}\"", bytes.escape_ascii()),
    }
}

/// A well-formed ZAP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Echoed in the reply.
    pub(crate) request_id: Vec<u8>,
    /// The server socket's ZAP domain (`set_zap_domain`), possibly empty.
    pub(crate) domain: String,
    /// The peer's IP address, as text (`127.0.0.1`, `::1`).
    pub(crate) address: String,
    /// The mechanism and what the peer presented.
    pub(crate) credentials: Credentials,
}

/// A request that cannot be decided: it is answered `400` with `why`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadRequest {
    /// The request id to answer with (empty if the request had none).
    pub(crate) request_id: Vec<u8>,
    /// The mechanism named in the request, if it got that far.
    pub(crate) mechanism: String,
    /// The peer's address, if the request got that far.
    pub(crate) address: String,
    /// Why it is bad.
    pub(crate) why: &'static str,
}

/// Reads a request's frames: version, request id, domain, address, routing id, mechanism,
/// then the mechanism's credentials.
pub(crate) fn parse(mut frames: Vec<Vec<u8>>) -> Result<Request, BadRequest> {
    let text = |frame: &[u8]| String::from_utf8_lossy(frame).into_owned();
    // Built only for a bad request: a good one moves its frames into the `Request`.
    let bad = |frames: &[Vec<u8>], why| BadRequest {
        request_id: frames.get(1).cloned().unwrap_or_default(),
        mechanism: frames.get(5).map(|m| text(m)).unwrap_or_default(),
        address: frames.get(3).map(|a| text(a)).unwrap_or_default(),
        why,
    };
    if frames.len() < 6 {
        return Err(bad(&frames, "Not enough frames"));
    }
    if frames[0] != VERSION {
        return Err(bad(&frames, "Invalid version"));
    }
    let (head, rest) = frames.split_at_mut(6);
    let credentials = match (head[5].as_slice(), rest) {
        (b"NULL", []) => Ok(Credentials::Null),
        (b"PLAIN", [username, password]) => Ok(Credentials::Plain {
            username: std::mem::take(username),
            password: std::mem::take(password),
        }),
        (b"CURVE", [key]) => <[u8; 32]>::try_from(key.as_slice())
            .map(|public_key| Credentials::Curve { public_key })
            .map_err(|_| "Invalid credentials"),
        (b"NULL" | b"PLAIN" | b"CURVE", _) => Err("Invalid credentials"),
        (other, _) => Ok(Credentials::Other(text(other))),
    };
    let credentials = credentials.map_err(|why| bad(&frames, why))?;
    let mut frames = frames.into_iter();
    frames.next(); // version
    Ok(Request {
        request_id: frames.next().unwrap_or_default(),
        domain: into_text(frames.next().unwrap_or_default()),
        address: into_text(frames.next().unwrap_or_default()),
        credentials,
    })
}

/// A frame as text, in its own buffer when it is UTF-8 (as libzmq's always are).
fn into_text(frame: Vec<u8>) -> String {
    String::from_utf8(frame)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// The reply frames: `200 OK` with the user id, or a refusal's status code and text.
pub(crate) fn reply(request_id: Vec<u8>, outcome: Result<&str, (u16, &str)>) -> Vec<Vec<u8>> {
    let (code, text, user_id) = match outcome {
        Ok(user_id) => (200, "OK", user_id),
        Err((code, reason)) => (code, reason, ""),
    };
    vec![
        VERSION.to_vec(),
        request_id,
        code.to_string().into_bytes(),
        text.as_bytes().to_vec(),
        user_id.as_bytes().to_vec(),
        Vec::new(), // metadata: none
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|part| part.to_vec()).collect()
    }

    #[test]
    fn each_mechanism_is_read() {
        let head: [&[u8]; 5] = [b"1.0", b"7", b"global", b"127.0.0.1", b""];
        let null = parse(frames(&[&head[..], &[b"NULL"]].concat())).unwrap();
        assert_eq!(null.credentials, Credentials::Null);
        assert_eq!(
            (null.domain.as_str(), null.address.as_str()),
            ("global", "127.0.0.1")
        );
        assert_eq!(null.request_id, b"7");
        let plain = parse(frames(
            &[&head[..], &[b"PLAIN", b"admin", b"secret"]].concat(),
        ));
        assert_eq!(
            plain.unwrap().credentials,
            Credentials::Plain {
                username: b"admin".to_vec(),
                password: b"secret".to_vec()
            }
        );
        let curve = parse(frames(&[&head[..], &[b"CURVE", &[9u8; 32]]].concat()));
        assert_eq!(
            curve.unwrap().credentials,
            Credentials::Curve {
                public_key: [9; 32]
            }
        );
        let gssapi = parse(frames(&[&head[..], &[b"GSSAPI", b"principal"]].concat()));
        assert_eq!(gssapi.unwrap().credentials.mechanism(), "GSSAPI");
    }

    #[test]
    fn plain_credentials_stay_bytes_and_debug_hides_the_password() {
        let head: [&[u8]; 6] = [b"1.0", b"7", b"", b"127.0.0.1", b"", b"PLAIN"];
        let request = parse(frames(&[&head[..], &[b"us\xffr", b"pass\xff"]].concat()));
        let credentials = request.unwrap().credentials;
        assert_eq!(
            credentials,
            Credentials::Plain {
                username: b"us\xffr".to_vec(),
                password: b"pass\xff".to_vec()
            }
        );
        let debug = format!("{credentials:?}");
        assert!(
            debug.contains(r#""us\xffr""#) && !debug.contains(r"pass\xff"),
            "{debug}"
        );
        assert_eq!(printable("josé".as_bytes()), "\"josé\"");
    }

    #[test]
    fn malformed_requests_say_why_and_keep_the_request_id() {
        let short = parse(frames(&[b"1.0", b"id"])).unwrap_err();
        assert_eq!(
            (short.why, short.request_id.as_slice()),
            ("Not enough frames", &b"id"[..])
        );
        assert_eq!(parse(Vec::new()).unwrap_err().request_id, b"");
        let version = parse(frames(&[b"2.0", b"id", b"", b"a", b"", b"NULL"])).unwrap_err();
        assert_eq!(version.why, "Invalid version");
        let key = parse(frames(&[b"1.0", b"id", b"", b"a", b"", b"CURVE", b"short"]));
        assert_eq!(key.unwrap_err().why, "Invalid credentials");
        let plain = parse(frames(&[b"1.0", b"id", b"", b"a", b"", b"PLAIN", b"user"]));
        let plain = plain.unwrap_err();
        assert_eq!(
            (plain.why, plain.mechanism.as_str()),
            ("Invalid credentials", "PLAIN")
        );
    }

    #[test]
    fn replies_carry_the_user_id_only_when_accepted() {
        assert_eq!(
            reply(b"7".to_vec(), Ok("admin")),
            frames(&[b"1.0", b"7", b"200", b"OK", b"admin", b""])
        );
        assert_eq!(
            reply(b"7".to_vec(), Err((400, "Unknown key"))),
            frames(&[b"1.0", b"7", b"400", b"Unknown key", b"", b""])
        );
    }
}
