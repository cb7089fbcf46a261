//! Build script of zmqloop-green: completes libzmq's CURVE when the C++ flags turn it on.
//!
//! `zmq-sys` builds the vendored libzmq without CURVE; defines in `CXXFLAGS` reach that build
//! (see `crypto.rs`). With `ZMQ_HAVE_CURVE` libzmq calls a crypto library that nobody links:
//! this script compiles libzmq's bundled tweetnacl (`ZMQ_USE_TWEETNACL`, from the sources
//! that `zeromq-src` copies to the directory `zmq-sys` announces as `DEP_ZMQ_OUT`) or links
//! the system's libsodium (`ZMQ_USE_LIBSODIUM`). With the `curve` feature, a build whose
//! flags leave CURVE out fails here with the fix, instead of running without encryption.
//! Why this design: `ARCHITECTURE.md`, "CURVE".

mod crypto;

use std::env;
use std::path::PathBuf;

use crypto::{Crypto, FlagError, LIBSODIUM_FLAGS, TWEETNACL_FLAGS};

fn main() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-changed=build/crypto.rs");
    let flags = cxxflags();
    let crypto = match crypto::crypto_of(&flags) {
        Ok(crypto) => crypto,
        Err(FlagError::CurveWithoutLibrary) => fail(&format!(
            "CXXFLAGS define ZMQ_HAVE_CURVE but no crypto library for it: add \
             -DZMQ_USE_TWEETNACL=1 (bundled, nothing to install) or -DZMQ_USE_LIBSODIUM=1 \
             (needs libsodium-dev). CXXFLAGS seen: {flags:?}"
        )),
        Err(FlagError::TwoLibraries) => fail(&format!(
            "CXXFLAGS define both ZMQ_USE_TWEETNACL and ZMQ_USE_LIBSODIUM: keep one. \
             CXXFLAGS seen: {flags:?}"
        )),
    };
    match crypto {
        Crypto::None if env::var_os("CARGO_FEATURE_CURVE").is_some() => fail(&format!(
            "the `curve` feature needs libzmq built with CURVE, and these CXXFLAGS leave it \
             out. Add to the [env] table of your project's .cargo/config.toml: \
             CXXFLAGS = \"{TWEETNACL_FLAGS}\" (bundled tweetnacl) or \
             CXXFLAGS = \"{LIBSODIUM_FLAGS}\" (with libsodium-dev installed). See zmqloop's \
             README, \"Security\". \
             CXXFLAGS seen: {flags:?}"
        )),
        Crypto::None => {}
        Crypto::Tweetnacl => compile_tweetnacl(),
        Crypto::Libsodium => link_libsodium(),
    }
    let name = match crypto {
        Crypto::None => "none",
        Crypto::Tweetnacl => "tweetnacl",
        Crypto::Libsodium => "libsodium",
    };
    println!("cargo:rustc-env=ZMQLOOP_CURVE_CRYPTO={name}");
}

/// The C++ flags `cc` gives the libzmq build: every variable it reads, in its order.
fn cxxflags() -> String {
    let target = env::var("TARGET").unwrap_or_default();
    let cross = env::var("HOST").ok().as_deref() != Some(target.as_str());
    let mut flags = String::new();
    for var in crypto::cxxflags_vars(&target, cross) {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(value) = env::var(&var) {
            flags.push(' ');
            flags.push_str(&value);
        }
    }
    flags.trim().to_owned()
}

/// Compiles libzmq's `tweetnacl.c` (random bytes from `getrandom` on Linux, `/dev/urandom`
/// elsewhere) and links all of it: libzmq, linked after this crate, refers to its symbols.
fn compile_tweetnacl() {
    let zmq_out = PathBuf::from(env::var_os("DEP_ZMQ_OUT").unwrap_or_else(|| {
        fail("DEP_ZMQ_OUT is not set: zmq-sys did not build the vendored libzmq")
    }));
    let source = zmq_out.join("source").join("src");
    let tweetnacl = source.join("tweetnacl.c");
    if !tweetnacl.is_file() {
        fail(&format!(
            "{} is missing from zmq-sys's build",
            tweetnacl.display()
        ));
    }
    // tweetnacl.c includes "platform.hpp", which zeromq-src writes empty on the platforms it
    // knows; an empty one of our own works everywhere.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("platform.hpp"), "").expect("cannot write platform.hpp in OUT_DIR");
    let mut build = cc::Build::new();
    build
        .file(&tweetnacl)
        .include(&out)
        .include(&source)
        .define("ZMQ_USE_TWEETNACL", "1")
        .warnings(false)
        // Optimised even in debug builds, where cargo asks for -O0: every CURVE handshake runs it.
        .opt_level(2)
        .cargo_metadata(false);
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        build.define("ZMQ_HAVE_GETRANDOM", "1");
    }
    build.compile("zmqloop_tweetnacl");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=zmqloop_tweetnacl");
}

/// Links the system's libsodium (`SODIUM_LIB_DIR` adds a search path); libzmq calls it.
fn link_libsodium() {
    println!("cargo:rerun-if-env-changed=SODIUM_LIB_DIR");
    if let Some(dir) = env::var_os("SODIUM_LIB_DIR") {
        println!(
            "cargo:rustc-link-search=native={}",
            PathBuf::from(dir).display()
        );
    }
    println!("cargo:rustc-link-lib=dylib=sodium");
}

/// Stops the build with `message` (cargo prints a failed build script's output).
fn fail(message: &str) -> ! {
    eprintln!("error: zmqloop-green: {message}");
    println!("cargo:warning=zmqloop-green: {message}");
    std::process::exit(1);
}
