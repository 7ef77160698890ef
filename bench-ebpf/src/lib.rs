//! Empty: the programs are the `bench-ebpf` binary (src/main.rs), built for
//! BPF by `bench/build.rs`. This library exists so that `bench` can declare
//! the crate as a build dependency and be rebuilt when it changes.
#![no_std]
