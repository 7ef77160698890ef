//! Tests of the codec and client.
