//! Whether this build's libzmq has CURVE, and which crypto library backs it.
//!
//! `zmq-sys` builds the vendored libzmq without CURVE. Defines in `CXXFLAGS` turn it on, and
//! this crate's build script (`green/build/main.rs`) then compiles libzmq's bundled tweetnacl
//! or links the system's libsodium; the `curve` feature makes a build without CURVE fail.
//! The README's "Security" section gives the steps.
//!
//! ```
//! use zmqloop_green as zmq;
//!
//! match zmq::curve::require() {
//!     Ok(library) => println!("CURVE backed by {library}"),
//!     Err(err) => println!("no CURVE here: {err}"),
//! }
//! ```
//!
//! Asking a socket for CURVE (`set_curve_server`, `set_curve_secretkey`, ...) on a libzmq
//! without it fails with `ENOTSUP` and logs [`FIX`] as an error: never a connection without
//! encryption.

use std::fmt;

/// The crypto library behind CURVE in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoLibrary {
    /// libsodium: audited, maintained, constant-time; the system's library, linked
    /// dynamically (`ZMQ_USE_LIBSODIUM`, Debian's `libsodium-dev`).
    Libsodium,
    /// tweetnacl, bundled with libzmq (`ZMQ_USE_TWEETNACL`): compiled with nothing to install,
    /// but libzmq's fallback, never audited and slower than libsodium.
    Tweetnacl,
    /// Not one this crate's build script chose: libzmq has CURVE, but the C++ flags the build
    /// script read named no crypto library (CURVE was turned on some other way, for instance
    /// defines in `CXX` itself), so whatever backs it was linked by other means.
    Unknown,
}

impl fmt::Display for CryptoLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoLibrary::Libsodium => "libsodium",
            CryptoLibrary::Tweetnacl => "tweetnacl",
            CryptoLibrary::Unknown => "an unknown library",
        })
    }
}

/// What to do about a libzmq without CURVE: the text of [`require`]'s error and of the log
/// line of a CURVE option set on such a libzmq.
pub const FIX: &str = "libzmq was built without CURVE. To turn it on, set \
    CXXFLAGS = \"-DZMQ_HAVE_CURVE=1 -DZMQ_USE_TWEETNACL=1\" (bundled tweetnacl) or \
    \"-DZMQ_HAVE_CURVE=1 -DZMQ_USE_LIBSODIUM=1\" (with libsodium-dev installed) in the [env] \
    table of your project's .cargo/config.toml and enable zmqloop's `curve` feature (cargo \
    rebuilds libzmq when CXXFLAGS change); see zmqloop's README, \"Security\"";

/// The crypto library the build script linked for CURVE (`none` without CURVE).
const LINKED: &str = env!("ZMQLOOP_CURVE_CRYPTO");

/// The crypto library backing CURVE, or `None` if this libzmq has no CURVE.
pub fn library() -> Option<CryptoLibrary> {
    library_of(zmq::has("curve") == Some(true), LINKED)
}

/// The crypto library backing CURVE, from whether libzmq has it and what the build script
/// linked (`ZMQLOOP_CURVE_CRYPTO`: `tweetnacl`, `libsodium` or `none`).
fn library_of(has_curve: bool, linked: &str) -> Option<CryptoLibrary> {
    if !has_curve {
        return None;
    }
    Some(match linked {
        "libsodium" => CryptoLibrary::Libsodium,
        "tweetnacl" => CryptoLibrary::Tweetnacl,
        _ => CryptoLibrary::Unknown,
    })
}

/// The crypto library backing CURVE, or an error of kind `Unsupported` whose text is [`FIX`].
pub fn require() -> std::io::Result<CryptoLibrary> {
    library().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::Unsupported, FIX))
}

/// The outcome of a CURVE socket option: on a libzmq without CURVE (which answers `EINVAL`,
/// as for an unknown option), `ENOTSUP` and an error log naming the fix.
pub(crate) fn check_option(outcome: zmq::Result<()>) -> zmq::Result<()> {
    match outcome {
        Err(zmq::Error::EINVAL) if library().is_none() => {
            log::error!("zmqloop: a CURVE socket option was set, but {FIX}");
            Err(zmq::Error::ENOTSUP)
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "../build/crypto.rs"]
#[allow(dead_code)] // the build script uses the rest
mod build_flags;

#[cfg(test)]
mod tests {
    use super::build_flags::{self, Crypto, FlagError};
    use super::*;

    #[test]
    fn this_workspace_builds_curve_with_tweetnacl() {
        assert_eq!(zmq::has("curve"), Some(true));
        assert_eq!(library(), Some(CryptoLibrary::Tweetnacl));
        assert_eq!(require().unwrap().to_string(), "tweetnacl");
        let pair = zmq::CurveKeyPair::new().unwrap();
        assert_ne!(pair.public_key, pair.secret_key);
    }

    #[test]
    fn the_library_is_the_one_the_build_script_linked_and_only_that() {
        use CryptoLibrary::*;
        assert_eq!(library_of(true, "tweetnacl"), Some(Tweetnacl));
        assert_eq!(library_of(true, "libsodium"), Some(Libsodium));
        // CURVE that the build script did not turn on: nothing it linked backs it.
        assert_eq!(library_of(true, "none"), Some(Unknown));
        assert_eq!(Unknown.to_string(), "an unknown library");
        for linked in ["tweetnacl", "libsodium", "none"] {
            assert_eq!(library_of(false, linked), None, "{linked}");
        }
    }

    #[test]
    fn a_wrong_curve_option_is_still_libzmqs_error() {
        // With CURVE built in, EINVAL means a bad value and comes back unchanged.
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::REP).unwrap();
        let outcome = check_option(socket.set_curve_secretkey(b"too short"));
        assert_eq!(outcome, Err(zmq::Error::EINVAL));
    }

    #[test]
    fn flags_choose_the_library_as_the_build_script_reads_them() {
        use build_flags::crypto_of;
        assert_eq!(crypto_of(""), Ok(Crypto::None));
        assert_eq!(
            crypto_of("-O2 -DZMQ_HAVE_EVENTFD=1 -DZMQ_HAVE_CURVE=1 -DZMQ_USE_TWEETNACL=1"),
            Ok(Crypto::Tweetnacl)
        );
        assert_eq!(
            crypto_of("-D ZMQ_HAVE_CURVE -DZMQ_USE_LIBSODIUM"),
            Ok(Crypto::Libsodium)
        );
        assert_eq!(crypto_of("-DZMQ_USE_TWEETNACL=1"), Ok(Crypto::None));
        assert_eq!(
            crypto_of("-DZMQ_HAVE_CURVE=1"),
            Err(FlagError::CurveWithoutLibrary)
        );
        assert_eq!(
            crypto_of("-DZMQ_HAVE_CURVE -DZMQ_USE_TWEETNACL -DZMQ_USE_LIBSODIUM"),
            Err(FlagError::TwoLibraries)
        );
        // Only whole names count.
        assert_eq!(
            crypto_of("-DZMQ_HAVE_CURVES=1 -DZMQ_USE_TWEETNACL=1"),
            Ok(Crypto::None)
        );
        assert_eq!(build_flags::defines("-D"), Vec::<&str>::new());
    }

    #[test]
    fn cc_reads_the_target_specific_variables_too() {
        let vars = build_flags::cxxflags_vars("x86_64-unknown-linux-gnu", false);
        assert_eq!(
            vars,
            [
                "CXXFLAGS",
                "HOST_CXXFLAGS",
                "CXXFLAGS_x86_64_unknown_linux_gnu",
                "CXXFLAGS_x86_64-unknown-linux-gnu"
            ]
        );
        assert_eq!(
            build_flags::cxxflags_vars("thumbv7em-none-eabi", true)[1],
            "TARGET_CXXFLAGS"
        );
    }
}
