//! The rules an authenticator applies (address lists, PLAIN passwords, CURVE keys per domain)
//! and the decision they give for one ZAP request. Pure: no sockets, no files read here.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use super::address;
use super::stats::Refusal;
use super::zap::{Credentials, Request};

/// The default domain (pyzmq's `"*"`): its rules serve the requests of sockets with no ZAP
/// domain (an empty one), and only those. A socket whose domain has no rules of its own is
/// refused ([`Refusal::UnknownDomain`]) rather than given these, so that a mistyped
/// `set_zap_domain` fails closed.
pub const DEFAULT_DOMAIN: &str = "*";

/// Which CURVE clients a domain lets in, for
/// [`Authenticator::configure_curve`](super::Authenticator::configure_curve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurveAuth {
    /// Any client that completes the CURVE handshake (it knows the server's public key);
    /// pyzmq's `CURVE_ALLOW_ANY`.
    AllowAny,
    /// Only these public keys (32 bytes, binary: `CurveKeyPair::public_key`, or
    /// [`Certificate::public_key`](super::certs::Certificate::public_key)).
    Keys(HashSet<[u8; 32]>),
    /// The public keys of the `*.key` certificate files in this directory, read when
    /// configured and again by
    /// [`reload_certificates`](super::Authenticator::reload_certificates).
    Directory(PathBuf),
}

/// The keys a domain allows, as kept by the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CurveKeys {
    /// Any key.
    Any,
    /// These keys, listed or read from a directory.
    Listed {
        /// The public keys allowed (binary); read from `from` when it is set, and then
        /// exactly what it held at its last (re)load.
        keys: HashSet<[u8; 32]>,
        /// The directory `keys` were read from ([`CurveAuth::Directory`]), `None` for keys
        /// given as such. A reload replaces `keys` only while this still names the directory
        /// it read, so a setting made meanwhile is never overwritten.
        from: Option<PathBuf>,
    },
}

/// Every rule. Allow and deny lists: a non-empty allow list wins and refuses every other
/// address (the deny list is then not consulted); otherwise the deny list refuses its
/// addresses. Addresses that pass still go through PLAIN or CURVE authentication.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// Addresses allowed; if non-empty, the only ones. Canonical ([`address::canonical`]),
    /// as the requests' addresses are compared.
    pub(crate) allowed: HashSet<IpAddr>,
    /// Addresses refused (consulted only while `allowed` is empty). Canonical, as `allowed`.
    pub(crate) denied: HashSet<IpAddr>,
    /// PLAIN users per domain: user name -> password.
    pub(crate) passwords: HashMap<String, HashMap<String, String>>,
    /// CURVE keys per domain.
    pub(crate) curve: HashMap<String, CurveKeys>,
}

/// The user id of NULL peers (pyzmq's).
pub(crate) const ANONYMOUS: &str = "anonymous";

impl Policy {
    /// Decides `request`: the user id to accept it with, or why it is refused.
    pub(crate) fn decide(&self, request: &Request) -> Result<String, Refusal> {
        self.check_address(&request.address)?;
        match &request.credentials {
            Credentials::Null => Ok(ANONYMOUS.to_owned()),
            Credentials::Plain { username, password } => {
                let users =
                    domain_rules(&self.passwords, &request.domain).ok_or(Refusal::UnknownDomain)?;
                // Configured names are UTF-8: a name that is not can be no one's.
                let user = std::str::from_utf8(username).ok();
                match user.and_then(|name| users.get_key_value(name)) {
                    None => Err(Refusal::UnknownUser),
                    Some((name, expected)) if same_secret(expected.as_bytes(), password) => {
                        Ok(name.clone())
                    }
                    Some(_) => Err(Refusal::WrongPassword),
                }
            }
            Credentials::Curve { public_key } => {
                let allowed = match domain_rules(&self.curve, &request.domain) {
                    None => return Err(Refusal::UnknownDomain),
                    Some(CurveKeys::Any) => true,
                    Some(CurveKeys::Listed { keys, .. }) => keys.contains(public_key),
                };
                if allowed {
                    Ok(curve_user_id(public_key))
                } else {
                    Err(Refusal::UnknownKey)
                }
            }
            Credentials::Other(_) => Err(Refusal::UnsupportedMechanism),
        }
    }

    /// Checks the peer's address (as libzmq wrote it) against the lists. A peer with no IP
    /// address (ipc) is on neither list.
    fn check_address(&self, address: &str) -> Result<(), Refusal> {
        let address = address::canonical(address);
        let listed = |list: &HashSet<IpAddr>| address.is_some_and(|a| list.contains(&a));
        if !self.allowed.is_empty() {
            if listed(&self.allowed) {
                Ok(())
            } else {
                Err(Refusal::AddressNotAllowed)
            }
        } else if listed(&self.denied) {
            Err(Refusal::AddressDenied)
        } else {
            Ok(())
        }
    }
}

/// Whether `presented` is `expected`, byte for byte, in a time that does not depend on where
/// they differ (so that a wrong guess does not tell how much of it was right). Different
/// lengths return at once: the length of a password is not kept secret.
fn same_secret(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    let difference = expected
        .iter()
        .zip(presented)
        .fold(0u8, |seen, (a, b)| seen | std::hint::black_box(a ^ b));
    difference == 0
}

/// The rules of `domain`; for the empty domain, those set for it or else the
/// [`DEFAULT_DOMAIN`]'s.
fn domain_rules<'a, T>(rules: &'a HashMap<String, T>, domain: &str) -> Option<&'a T> {
    match rules.get(domain) {
        None if domain.is_empty() => rules.get(DEFAULT_DOMAIN),
        found => found,
    }
}

/// A CURVE peer's user id: its public key in Z85 (pyzmq's `curve_user_id`).
pub(crate) fn curve_user_id(public_key: &[u8; 32]) -> String {
    zmqloop_green::z85_encode(public_key).expect("32 bytes are a multiple of 4")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(address: &str, domain: &str, credentials: Credentials) -> Request {
        Request {
            request_id: b"1".to_vec(),
            domain: domain.into(),
            address: address.into(),
            credentials,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn plain(user: &str, password: &str) -> Credentials {
        plain_bytes(user.as_bytes(), password.as_bytes())
    }

    fn plain_bytes(user: &[u8], password: &[u8]) -> Credentials {
        Credentials::Plain {
            username: user.to_vec(),
            password: password.to_vec(),
        }
    }

    #[test]
    fn null_passes_unless_the_address_is_refused() {
        let mut policy = Policy::default();
        let null = request("10.0.0.1", "", Credentials::Null);
        assert_eq!(policy.decide(&null), Ok(ANONYMOUS.into()));
        policy.denied.insert(ip("10.0.0.1"));
        assert_eq!(policy.decide(&null), Err(Refusal::AddressDenied));
        let mapped = request("::ffff:10.0.0.1", "", Credentials::Null);
        assert_eq!(policy.decide(&mapped), Err(Refusal::AddressDenied));
        // A non-empty allow list wins over the deny list...
        policy.allowed.insert(ip("10.0.0.1"));
        assert_eq!(policy.decide(&null), Ok(ANONYMOUS.into()));
        // ...and refuses everyone else.
        let other = request("10.0.0.2", "", Credentials::Null);
        assert_eq!(policy.decide(&other), Err(Refusal::AddressNotAllowed));
        let no_address = request("", "", Credentials::Null);
        assert_eq!(policy.decide(&no_address), Err(Refusal::AddressNotAllowed));
    }

    #[test]
    fn plain_checks_domain_user_and_password() {
        let mut policy = Policy::default();
        let admin = request("a", "global", plain("admin", "secret"));
        assert_eq!(policy.decide(&admin), Err(Refusal::UnknownDomain));
        policy.passwords.insert(
            "global".into(),
            HashMap::from([("admin".into(), "secret".into())]),
        );
        assert_eq!(policy.decide(&admin), Ok("admin".into()));
        let wrong = request("a", "global", plain("admin", "guess"));
        assert_eq!(policy.decide(&wrong), Err(Refusal::WrongPassword));
        let stranger = request("a", "global", plain("eve", "secret"));
        assert_eq!(policy.decide(&stranger), Err(Refusal::UnknownUser));
        let elsewhere = request("a", "other", plain("admin", "secret"));
        assert_eq!(policy.decide(&elsewhere), Err(Refusal::UnknownDomain));
        // "*" serves the empty domain, and no other (as in pyzmq).
        policy.passwords.insert(
            DEFAULT_DOMAIN.into(),
            HashMap::from([("guest".into(), "guest".into())]),
        );
        let guest = request("a", "", plain("guest", "guest"));
        assert_eq!(policy.decide(&guest), Ok("guest".into()));
        let guest_in_global = request("a", "global", plain("guest", "guest"));
        assert_eq!(policy.decide(&guest_in_global), Err(Refusal::UnknownUser));
        let guest_in_other = request("a", "other", plain("guest", "guest"));
        assert_eq!(policy.decide(&guest_in_other), Err(Refusal::UnknownDomain));
        let curve_in_other = request(
            "a",
            "other",
            Credentials::Curve {
                public_key: [1; 32],
            },
        );
        policy.curve.insert(DEFAULT_DOMAIN.into(), CurveKeys::Any);
        assert_eq!(policy.decide(&curve_in_other), Err(Refusal::UnknownDomain));
    }

    #[test]
    fn plain_compares_bytes_never_decoded_text() {
        let mut policy = Policy::default();
        let users = [("admin", "pass\u{FFFD}"), ("us\u{FFFD}r", "secret")];
        let users = users.map(|(user, password)| (user.to_owned(), password.to_owned()));
        policy
            .passwords
            .insert(DEFAULT_DOMAIN.into(), HashMap::from(users));
        let decide = |user: &[u8], password: &[u8]| {
            policy.decide(&request("a", "", plain_bytes(user, password)))
        };
        assert_eq!(decide(b"admin", b"pass\xff"), Err(Refusal::WrongPassword));
        assert_eq!(decide(b"us\xffr", b"secret"), Err(Refusal::UnknownUser));
        let exact = decide(b"admin", "pass\u{FFFD}".as_bytes());
        assert_eq!(exact, Ok("admin".into()));
    }

    #[test]
    fn same_secret_is_byte_equality() {
        assert!(same_secret(b"", b""));
        assert!(same_secret(b"secret", b"secret"));
        assert!(!same_secret(b"secret", b"secreT"));
        assert!(!same_secret(b"secret", b"Secret"));
        assert!(!same_secret(b"secret", b"secret\0"));
        assert!(!same_secret(b"secret", b""));
    }

    #[test]
    fn curve_checks_the_key_and_names_the_user_by_it() {
        let mut policy = Policy::default();
        let known = request(
            "127.0.0.1",
            "",
            Credentials::Curve {
                public_key: [1; 32],
            },
        );
        let unknown = request(
            "127.0.0.1",
            "",
            Credentials::Curve {
                public_key: [2; 32],
            },
        );
        assert_eq!(policy.decide(&known), Err(Refusal::UnknownDomain));
        policy.curve.insert(
            DEFAULT_DOMAIN.into(),
            CurveKeys::Listed {
                keys: HashSet::from([[1; 32]]),
                from: None,
            },
        );
        assert_eq!(policy.decide(&known), Ok(curve_user_id(&[1; 32])));
        assert_eq!(policy.decide(&unknown), Err(Refusal::UnknownKey));
        policy.curve.insert(DEFAULT_DOMAIN.into(), CurveKeys::Any);
        assert!(policy.decide(&unknown).is_ok());
        // The address lists apply before the key.
        policy.denied.insert(ip("127.0.0.1"));
        assert_eq!(policy.decide(&known), Err(Refusal::AddressDenied));
    }

    #[test]
    fn other_mechanisms_are_refused() {
        let gssapi = request("a", "", Credentials::Other("GSSAPI".into()));
        assert_eq!(
            Policy::default().decide(&gssapi),
            Err(Refusal::UnsupportedMechanism)
        );
    }
}
