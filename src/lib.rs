//! # Pleura: point-of-care lung-ultrasound severity scoring
//!
//! Pleura reads lung-ultrasound video, frame by frame, and tells a clinician
//! how sick each scanned zone of the chest looks on the 4-level score of
//! Soldati et al. (0 = normal A-line pattern … 3 = dense white lung), and
//! where the B-lines and consolidations are.
//!
//! One frame travels one way through the crate, and the modules follow it:
//!
//! ```text
//! source ──► preprocess ──► model ──► scoring ──► display / record
//! (frames)   (sector, crop,  (LusNet:  (live score,  (annotated frames,
//!             resize)         score +   clip score,   report, frame log)
//!                             segmentation) stability)
//! ```
//!
//! * [`source`] turns clips, folders of stills and capture devices into
//!   [`frame::GrayFrame`]s.
//! * [`preprocess`] finds the ultrasound sector, keeps it steady over a
//!   stream, and crops and resizes every frame to the model's input square;
//!   for a 2.5D model it stacks the frame with two earlier ones.
//! * [`model`] is LusNet, a small candle network with a score head and a
//!   segmentation head, loaded from a GGUF file with Q8_0 weights.
//! * [`scoring`] turns frame predictions into a live score, a clip score
//!   and a stability flag.
//! * [`display`] draws scored frames behind the [`display::Renderer`]
//!   trait: the bedside screen on a framebuffer or as PNG files, or
//!   annotated frames; [`record`] keeps the run report and the frame log.
//! * [`exam`] walks the zones of an exam protocol and keeps their scores in
//!   a crash-safe journal; [`input`] maps the clinician's keys to exam
//!   commands.
//! * [`board`] reads the board profiles (`boards/*.toml`): CPU, display,
//!   grabber, inputs and paths of each kind of unit.
//! * [`update`] installs signed firmware bundles into A/B slots, puts a
//!   new version on trial and rolls it back if it never proves healthy.
//! * [`pipeline`] wires the stages into threads joined by bounded
//!   channels; it holds no stage logic. [`bedside`] assembles a live run
//!   from a board profile: model, source, exam journal, display, inputs.
//! * [`eval`] runs the same path over labelled datasets to measure agreement
//!   with experts, and exports preprocessed frames for the PyTorch trainer.
//! * [`phantom`] synthesizes lung-ultrasound clips with pixel-exact masks,
//!   for training the segmentation head, for tests and as a demo source.
//!
//! Pleura is decision support for research settings, not a diagnostic device.

pub mod atomic_write;
pub mod bedside;
pub mod board;
pub mod display;
pub mod eval;
pub mod exam;
mod file_kind;
pub mod frame;
pub mod input;
pub mod model;
pub mod phantom;
pub mod pipeline;
pub mod preprocess;
pub mod record;
pub mod scoring;
pub mod service;
pub mod source;
pub mod update;
