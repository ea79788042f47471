//! # Pleura: point-of-care lung-ultrasound severity scoring
//!
//! Pleura reads lung-ultrasound video, frame by frame, and tells a clinician
//! how sick each scanned zone of the chest looks on the 4-level score of
//! Soldati et al. (0 = normal A-line pattern … 3 = dense white lung), and
//! where the B-lines and consolidations are.
//!
//! One frame travels one way through the bedside runtime, and its
//! modules follow it:
//!
//! ```text
//! source ──► preprocess ──► model ──► scoring ──► exam::Session ──► display
//! (frames)   (sector, crop,  (LusNet:  (live score,  (zones, journal)   (screen)
//!             resize)         score +   clip score,        │
//!                             segmentation) stability)     ├──► record (report, frame log)
//!                                                      ▲   └──► hospital (worklist in,
//!                                       input (keys, buttons, taps)    outbox out: PACS, HL7)
//! ```
//!
//! **The bedside runtime**
//!
//! * [`source`] turns clips, folders of stills and capture devices into
//!   [`frame::GrayFrame`]s.
//! * [`preprocess`] finds the ultrasound sector, keeps it steady over a
//!   stream, and crops and resizes every frame to the model's input square;
//!   for a 2.5D model it stacks the frame with two earlier ones.
//! * [`model`] is LusNet, a small candle network with a score head and a
//!   segmentation head, loaded from a GGUF file with Q8_0 weights; it runs
//!   on candle (f32, q8) or on Pleura's integer kernels (int8).
//! * [`scoring`] turns frame predictions into a live score, a clip score
//!   and a stability flag.
//! * [`exam`] walks the zones of an exam protocol: its [`exam::Session`]
//!   sees every scored frame and every command, records zones and keeps
//!   them in a crash-safe journal. [`input`] maps the clinician's keys,
//!   buttons and taps to commands.
//! * [`display`] paints frames and the session's state behind the
//!   [`display::Renderer`] trait: the bedside screen on a framebuffer, a
//!   DRM card, a window or PNG files, or annotated frames; [`record`]
//!   keeps the run report and the frame log.
//! * [`hospital`] makes a finished exam into what the hospital takes: DICOM
//!   clips, a summary capture and a structured report for the PACS, and an
//!   HL7 result message for the patient record.
//! * [`pipeline`] wires the stages into threads joined by bounded
//!   channels; it holds no stage logic. [`bedside`] assembles a live run
//!   from a board profile: model, source, exam session, display, inputs.
//!
//! **The unit**
//!
//! * [`board`] reads the board profiles (`boards/*.toml`): CPU, display,
//!   grabber, inputs and paths of each kind of unit.
//! * [`update`] installs signed firmware bundles into A/B slots, puts a
//!   new version on trial and rolls it back if it never proves healthy;
//!   [`service`] talks to the service manager; [`atomic_write`] replaces
//!   files whole.
//!
//! **Shared small parts:** [`frame`] (the gray frame and the size rules)
//! and [`spec`] (the `name`, `key=value` and `WxH` text formats of the
//! command line and the profiles).
//!
//! **Offline tools**
//!
//! * [`eval`] runs the same path over labelled datasets to measure agreement
//!   with experts, and exports preprocessed frames for the PyTorch trainer.
//! * [`phantom`] synthesizes lung-ultrasound clips with pixel-exact masks,
//!   for training the segmentation head, for tests, as a demo source and
//!   for an update's self-test.
//!
//! The command line (`src/main.rs`, `src/cli/`) only parses flags and
//! calls these.
//!
//! Pleura is decision support for research settings, not a diagnostic device.

#![warn(missing_docs, unreachable_pub)]

// The bedside runtime, in the order a frame travels.
pub mod bedside;
pub mod display;
pub mod exam;
pub mod hospital;
pub mod input;
pub mod model;
pub mod pipeline;
pub mod preprocess;
pub mod record;
pub mod scoring;
pub mod source;

// The unit.
pub mod atomic_write;
pub mod board;
pub mod service;
pub mod update;

// Shared small parts.
mod file_kind;
pub mod frame;
pub mod spec;

// Offline tools.
pub mod eval;
pub mod phantom;
