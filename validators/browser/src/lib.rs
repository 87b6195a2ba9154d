//! The browser validators: `validator-visual` compares screenshots of pages with baselines,
//! `validator-behavioral` runs scripted scenarios in pages and checks what they show. Both
//! drive a real headless Chromium found on the machine (never downloaded) over the DevTools
//! protocol.
//!
//! They live in their own crate so that the coordinator's build carries no browser driver; the
//! coordinator finds their executables beside its own, like any other validator.

pub mod behavioral;
pub mod browser;
pub mod compare;
pub mod diff;
pub mod engine;
pub mod image;
pub mod page;
pub mod pixelmatch;
pub mod scenario;
pub mod serve;
pub mod visual;
