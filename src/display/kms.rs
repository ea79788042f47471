//! DRM/KMS dumb buffers (`/dev/dri/card0`), for boards whose display
//! driver offers no framebuffer device (a Raspberry Pi with `vc4-kms-v3d`).
//!
//! Opening the card picks the first connected connector and its preferred
//! mode, allocates one XRGB8888 dumb buffer of that size, and sets the CRTC
//! to scan it out. Each picture is converted into the mapped buffer with
//! the same code as the framebuffer backend, respecting the buffer's pitch.
//! Pleura must be the card's DRM master: no desktop may run on it.

use super::DisplayError;
use super::annotate::Canvas;
use super::fb::{FbGeometry, PixelFormat, convert, logical_size, open_device};
use super::surface::{Rotation, Surface};
use drm::buffer::{Buffer, DrmFourcc};
use drm::control::{Device as ControlDevice, connector, dumbbuffer::DumbBuffer};
use embedded_graphics::prelude::*;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// An open DRM card.
struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl drm::Device for Card {}
impl ControlDevice for Card {}

/// A KMS display showing one dumb buffer.
pub struct Kms {
    card: Card,
    path: PathBuf,
    buffer: DumbBuffer,
    geometry: FbGeometry,
    rotation: Rotation,
}

impl Kms {
    /// Opens the card, picks the first connected display and its preferred
    /// mode, and shows a black buffer on it.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, DisplayError> {
        let device = |reason: String| DisplayError::Device {
            path: path.to_path_buf(),
            reason,
        };
        let card = Card(open_device(path)?);
        let resources = card
            .resource_handles()
            .map_err(|e| device(format!("not a KMS device ({e})")))?;
        let connector = resources
            .connectors()
            .iter()
            .filter_map(|&handle| card.get_connector(handle, true).ok())
            .find(|info| info.state() == connector::State::Connected && !info.modes().is_empty())
            .ok_or_else(|| device("no connected display".into()))?;
        let mode = connector.modes()[0];
        let crtc = connector
            .current_encoder()
            .and_then(|encoder| card.get_encoder(encoder).ok())
            .and_then(|encoder| encoder.crtc())
            .or_else(|| resources.crtcs().first().copied())
            .ok_or_else(|| device("no CRTC".into()))?;
        let (width, height) = mode.size();
        let (width, height) = (u32::from(width), u32::from(height));
        let mut buffer = card
            .create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32)
            .map_err(|e| device(format!("cannot allocate a {width}x{height} buffer ({e})")))?;
        let framebuffer = card
            .add_framebuffer(&buffer, 24, 32)
            .map_err(|e| device(format!("cannot add a framebuffer ({e})")))?;
        let geometry = FbGeometry {
            width,
            height,
            line_length: buffer.pitch() as usize,
            format: PixelFormat::Xrgb8888,
        };
        match card.map_dumb_buffer(&mut buffer) {
            Ok(mut map) => map.as_mut().fill(0),
            Err(e) => return Err(device(format!("cannot map the buffer ({e})"))),
        }
        card.set_crtc(
            crtc,
            Some(framebuffer),
            (0, 0),
            &[connector.handle()],
            Some(mode),
        )
        .map_err(|e| {
            device(format!(
                "cannot show the buffer ({e}); is another program the DRM master?"
            ))
        })?;
        log::info!(
            "{}: {width}x{height} on connector {:?}",
            path.display(),
            connector.handle()
        );
        Ok(Self {
            card,
            path: path.to_path_buf(),
            buffer,
            geometry,
            rotation,
        })
    }
}

impl Surface for Kms {
    fn size(&self) -> Size {
        logical_size(self.geometry, self.rotation)
    }

    fn rotation(&self) -> Rotation {
        self.rotation
    }

    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        if canvas.size() != self.size() {
            return Err(DisplayError::Device {
                path: self.path.clone(),
                reason: "picture and screen sizes differ".into(),
            });
        }
        let mut map =
            self.card
                .map_dumb_buffer(&mut self.buffer)
                .map_err(|e| DisplayError::Device {
                    path: self.path.clone(),
                    reason: format!("cannot map the buffer ({e})"),
                })?;
        convert(canvas, self.rotation, self.geometry, map.as_mut());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_is_not_a_drm_card_is_refused_by_name() {
        let err = Kms::open(Path::new("/dev/null"), Rotation::R0)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("/dev/null") && err.contains("not a KMS device"),
            "{err}"
        );
    }
}
