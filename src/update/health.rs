//! The proof a version on trial gives before it is confirmed.
//!
//! It must score the board's `health_frames` frames through the whole
//! pipeline (capture, sector search, the network, scoring, recording)
//! within `health_timeout_s` seconds of starting. The frames come from a
//! synthetic phantom clip rather than the grabber: a unit updated with the
//! probe unplugged must not roll back a good version, and a version whose
//! network cannot run on this CPU (an illegal instruction, a model it
//! cannot read) must not be confirmed.

use super::unit::Unit;
use super::{UpdateError, confirm, running_trial};
use crate::board::{BoardProfile, UpdateProfile};
use crate::display::NoDisplay;
use crate::exam::Session;
use crate::model::LusNet;
use crate::phantom::PhantomParams;
use crate::pipeline::{Heartbeat, RunOptions, Stages};
use crate::preprocess::SectorMode;
use crate::record::{EndReason, Recorder};
use crate::source::PhantomSource;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The outcome of a self-test that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthy {
    /// Frames scored.
    pub frames: u64,
    /// Seconds since the program started.
    pub after: Duration,
}

/// Why a self-test failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unhealthy {
    /// The pipeline ended before the phantom clip did.
    #[error("the self-test stopped: {0}")]
    Stopped(EndReason),
    /// Fewer frames were scored than the profile asks.
    #[error("the self-test scored {scored} of {wanted} frames")]
    TooFewFrames {
        /// Frames scored.
        scored: u64,
        /// Frames the profile asks for.
        wanted: u64,
    },
    /// The frames were scored too late after the start.
    #[error(
        "{frames} frames took until {:.1} s after start; the limit is {limit_s} s",
        .after.as_secs_f64()
    )]
    TooSlow {
        /// Frames scored.
        frames: u64,
        /// Time since the program started.
        after: Duration,
        /// The profile's limit, in seconds.
        limit_s: u64,
    },
}

/// Scores `profile.health_frames` phantom frames; `started` is when the
/// program started. Fails, with the reason, if fewer were scored or it took
/// longer than `profile.health_timeout_s`.
pub fn self_test(
    model: &LusNet,
    profile: &UpdateProfile,
    started: Instant,
    heartbeat: Option<Box<dyn Heartbeat>>,
) -> Result<Healthy, Unhealthy> {
    let params = PhantomParams {
        score: 2,
        frames: profile.health_frames,
        ..PhantomParams::default()
    };
    let stages = Stages {
        source: Box::new(PhantomSource::new(params)),
        model,
        renderer: Box::new(NoDisplay),
        session: &mut Session::default(),
        inputs: crossbeam_channel::never(),
        recorder: Recorder::new(model.meta().seg_classes.clone(), None).without_series(),
        heartbeat,
    };
    let options = RunOptions {
        pace: false,
        sector: SectorMode::Auto,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let report = crate::pipeline::run(stages, &options, "self-test phantom", "model");
    let after = started.elapsed();
    if report.end != EndReason::EndOfStream {
        return Err(Unhealthy::Stopped(report.end));
    }
    if report.frames.scored < profile.health_frames {
        return Err(Unhealthy::TooFewFrames {
            scored: report.frames.scored,
            wanted: profile.health_frames,
        });
    }
    if after > Duration::from_secs(profile.health_timeout_s) {
        return Err(Unhealthy::TooSlow {
            frames: report.frames.scored,
            after,
            limit_s: profile.health_timeout_s,
        });
    }
    Ok(Healthy {
        frames: report.frames.scored,
        after,
    })
}

/// On a version's trial start, proves it healthy with [`self_test`] and
/// confirms it; otherwise fails, and the next start counts toward
/// rollback. Does nothing when no version is on trial (or the update state
/// cannot be read, which is logged: scoring must not stop for it).
pub fn prove_trial(
    model: &LusNet,
    board: &BoardProfile,
    started: Instant,
) -> Result<(), UpdateError> {
    let unit = Unit::new(&board.paths.slots);
    let trial = match running_trial(&unit) {
        Ok(Some(trial)) => trial,
        Ok(None) => return Ok(()),
        Err(e) => {
            log::warn!("cannot read the update state: {e}");
            return Ok(());
        }
    };
    eprintln!("pleura: version {} is on trial; self-test", trial.version);
    let heartbeat = Box::new(crate::service::Watchdog::new());
    match self_test(model, &board.update, started, Some(heartbeat)) {
        Ok(healthy) => {
            confirm(&unit)?;
            eprintln!(
                "pleura: version {} confirmed: {} frames scored {:.1} s after start",
                trial.version,
                healthy.frames,
                healthy.after.as_secs_f64()
            );
            Ok(())
        }
        Err(reason) => Err(UpdateError::SelfTestFailed {
            version: trial.version,
            reason: Box::new(reason),
            previous: trial.previous,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Precision;

    fn shipped_model() -> LusNet {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lusnet-v3.gguf");
        LusNet::load(&path, Precision::Int8).expect("the shipped model")
    }

    #[test]
    fn a_version_that_scores_its_frames_in_time_is_healthy() {
        let profile = UpdateProfile {
            health_frames: 4,
            health_timeout_s: 600,
            ..UpdateProfile::default()
        };
        let healthy = self_test(&shipped_model(), &profile, Instant::now(), None).unwrap();
        assert_eq!(healthy.frames, 4);
    }

    #[test]
    fn a_version_that_scores_too_long_after_its_start_is_unhealthy_and_says_so() {
        let profile = UpdateProfile {
            health_frames: 4,
            health_timeout_s: 1,
            ..UpdateProfile::default()
        };
        let long_ago = Instant::now() - Duration::from_secs(5);
        let unhealthy = self_test(&shipped_model(), &profile, long_ago, None).unwrap_err();
        assert!(
            matches!(
                unhealthy,
                Unhealthy::TooSlow {
                    frames: 4,
                    limit_s: 1,
                    ..
                }
            ),
            "{unhealthy:?}"
        );
        assert!(
            unhealthy.to_string().ends_with("the limit is 1 s"),
            "{unhealthy}"
        );
    }
}
