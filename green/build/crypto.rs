//! Which crypto library libzmq's CURVE uses in this build, read from the C++ flags that the
//! vendored libzmq is compiled with.
//!
//! `zeromq-src` (through `zmq-sys`) defines only what its `Build` is told and never
//! `ZMQ_HAVE_CURVE`; the `cc` crate that compiles it appends the `CXXFLAGS` of the
//! environment, so defines passed there reach libzmq. This file reads the same variables, in
//! the same way as `cc`, to learn what libzmq was built with. It is shared by the build
//! script and the green crate's unit tests (plain functions of strings, no I/O).

/// The crypto library behind CURVE, as the C++ flags choose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crypto {
    /// No `ZMQ_HAVE_CURVE`: libzmq has no CURVE.
    None,
    /// `ZMQ_HAVE_CURVE` with `ZMQ_USE_TWEETNACL`: libzmq's bundled tweetnacl, which the build
    /// script compiles from the libzmq sources.
    Tweetnacl,
    /// `ZMQ_HAVE_CURVE` with `ZMQ_USE_LIBSODIUM`: the system's libsodium, linked dynamically.
    Libsodium,
}

/// What is wrong with a set of flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `ZMQ_HAVE_CURVE` without a crypto library: libzmq would not link.
    CurveWithoutLibrary,
    /// Both `ZMQ_USE_TWEETNACL` and `ZMQ_USE_LIBSODIUM`.
    TwoLibraries,
}

/// The names of the variables `cc` reads C++ flags from, for `target` (most general first:
/// `cc` appends them in this order, so all of them count).
pub fn cxxflags_vars(target: &str, cross: bool) -> [String; 4] {
    let kind = if cross { "TARGET" } else { "HOST" };
    let target_u = target.replace(['-', '.'], "_");
    [
        "CXXFLAGS".to_owned(),
        format!("{kind}_CXXFLAGS"),
        format!("CXXFLAGS_{target_u}"),
        format!("CXXFLAGS_{target}"),
    ]
}

/// The macro names that `flags` defines (`-DNAME`, `-DNAME=VALUE`, `-D NAME`).
pub fn defines(flags: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut words = flags.split_ascii_whitespace();
    while let Some(word) = words.next() {
        let Some(rest) = word.strip_prefix("-D") else {
            continue;
        };
        let define = if rest.is_empty() {
            words.next().unwrap_or("")
        } else {
            rest
        };
        let name = define.split('=').next().unwrap_or("");
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

/// The crypto library that the defines in `flags` select.
pub fn crypto_of(flags: &str) -> Result<Crypto, FlagError> {
    let names = defines(flags);
    let has = |name: &str| names.contains(&name);
    match (
        has("ZMQ_HAVE_CURVE"),
        has("ZMQ_USE_TWEETNACL"),
        has("ZMQ_USE_LIBSODIUM"),
    ) {
        (false, _, _) => Ok(Crypto::None),
        (true, true, true) => Err(FlagError::TwoLibraries),
        (true, true, false) => Ok(Crypto::Tweetnacl),
        (true, false, true) => Ok(Crypto::Libsodium),
        (true, false, false) => Err(FlagError::CurveWithoutLibrary),
    }
}

/// The flags that turn CURVE on with tweetnacl: what the README tells users to add to
/// `CXXFLAGS`.
pub const TWEETNACL_FLAGS: &str = "-DZMQ_HAVE_CURVE=1 -DZMQ_USE_TWEETNACL=1";

/// The flags that turn CURVE on with the system's libsodium.
pub const LIBSODIUM_FLAGS: &str = "-DZMQ_HAVE_CURVE=1 -DZMQ_USE_LIBSODIUM=1";
