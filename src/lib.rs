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
//! source ──► preprocess ──► model ──► scoring
//! (frames)   (sector, crop,  (LusNet:  (clip score,
//!             resize)         score +   confidence)
//!                             segmentation)
//! ```
//!
//! * [`source`] decodes clips into [`frame::GrayFrame`]s.
//! * [`preprocess`] finds the ultrasound sector once per clip and crops and
//!   resizes every frame to the model's input square.
//! * [`model`] is LusNet, a small candle network with a score head and a
//!   segmentation head, loaded from a GGUF file with Q8_0 weights.
//! * [`scoring`] turns frame predictions into a clip score.
//! * [`eval`] runs the same path over labelled datasets to measure agreement
//!   with experts, and exports preprocessed frames for the PyTorch trainer.
//!
//! Pleura is decision support for research settings, not a diagnostic device.

pub mod display;
pub mod eval;
pub mod frame;
pub mod model;
pub mod pipeline;
pub mod preprocess;
pub mod record;
pub mod scoring;
pub mod source;
