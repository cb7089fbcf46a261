//! IP addresses as the allow and deny lists compare them: each configured entry parsed once,
//! and each request's peer address read the same way, so that one address matches however it
//! is spelled. An IPv4 peer of a socket with IPv6 on arrives as `::ffff:127.0.0.1`, IPv6 has
//! several spellings of one address, and a link-local peer may carry a `%scope` suffix.

use std::io;
use std::net::IpAddr;

/// A configured list entry as an address.
///
/// # Errors
/// `InvalidInput`, naming the entry, if it is not an IPv4 or IPv6 address (a host name, a
/// network, a typo): such an entry would never match anything.
pub(crate) fn parse_entry(entry: &str) -> io::Result<IpAddr> {
    canonical(entry).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not an IP address: {entry:?} (allow and deny take IPv4 or IPv6 addresses, \
                 such as \"127.0.0.1\" or \"::1\"; no host names or networks)"
            ),
        )
    })
}

/// `text` as the lists compare it: its `%scope` suffix dropped (the lists name addresses,
/// whatever the interface), an IPv4-mapped IPv6 address as the IPv4 one. `None` if it is not
/// an IP address (the peer of an ipc socket has none).
pub(crate) fn canonical(text: &str) -> Option<IpAddr> {
    let without_scope = text
        .split_once('%')
        .map_or(text, |(address, _scope)| address);
    let address: IpAddr = without_scope.parse().ok()?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spelling_of_an_address_reads_the_same() {
        let spellings = [
            ("127.0.0.1", "127.0.0.1"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::FFFF:7f00:1", "127.0.0.1"),
            ("0:0:0:0:0:ffff:127.0.0.1", "127.0.0.1"),
            ("2001:DB8:0:0::1", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("fe80::1%2", "fe80::1"),
        ];
        for (spelling, address) in spellings {
            let expected: IpAddr = address.parse().unwrap();
            assert_eq!(canonical(spelling), Some(expected), "{spelling}");
            assert_eq!(parse_entry(spelling).unwrap(), expected, "{spelling}");
        }
    }

    #[test]
    fn what_is_not_an_address_reads_as_none_and_is_refused_as_an_entry() {
        for text in [
            "",
            "localhost",
            "127.0.0.l",
            "10.0.0.0/8",
            "[::1]",
            " 10.0.0.1",
        ] {
            assert_eq!(canonical(text), None, "{text:?}");
            let err = parse_entry(text).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }
}
