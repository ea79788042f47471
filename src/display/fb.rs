//! The Linux framebuffer (`/dev/fb0`) as a display surface.
//!
//! The screen is drawn upright on a [`Canvas`] and converted, once per
//! frame, into the framebuffer's own layout: RGB565 or XRGB8888 pixels,
//! rows `line_length` bytes apart (often more than `width × bytes per
//! pixel`), turned by the panel's mounting rotation. The converted picture
//! is written with one positioned write, from a buffer allocated once.
//!
//! [`Framebuffer::open`] asks the kernel for the geometry
//! (`FBIOGET_VSCREENINFO`, `FBIOGET_FSCREENINFO`);
//! [`Framebuffer::with_geometry`] takes it from the caller, which is how a
//! plain file stands in for the device in tests.

use super::DisplayError;
use super::annotate::Canvas;
use super::surface::{Rotation, Surface};
use embedded_graphics::prelude::*;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How the framebuffer stores a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 16 bits: red 5, green 6, blue 5, little-endian.
    Rgb565,
    /// 32 bits: blue, green, red, unused (little-endian XRGB).
    Xrgb8888,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes(self) -> usize {
        match self {
            PixelFormat::Rgb565 => 2,
            PixelFormat::Xrgb8888 => 4,
        }
    }
}

/// The physical layout of a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbGeometry {
    /// Visible pixels per row.
    pub width: u32,
    /// Visible rows.
    pub height: u32,
    /// Bytes from one row to the next (at least `width × bytes per pixel`).
    pub line_length: usize,
    /// Pixel format.
    pub format: PixelFormat,
}

/// A framebuffer device (or a file standing in for one).
pub struct Framebuffer {
    file: File,
    path: PathBuf,
    geometry: FbGeometry,
    rotation: Rotation,
    buffer: Vec<u8>,
}

impl Framebuffer {
    /// Opens a framebuffer device and reads its geometry from the kernel.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, DisplayError> {
        let file = open_device(path)?;
        let geometry = query_geometry(&file, path)?;
        Self::with_geometry(file, path, geometry, rotation)
    }

    /// Uses `file` as a framebuffer of the given geometry.
    pub fn with_geometry(
        file: File,
        path: &Path,
        geometry: FbGeometry,
        rotation: Rotation,
    ) -> Result<Self, DisplayError> {
        if geometry.line_length < geometry.width as usize * geometry.format.bytes() {
            return Err(DisplayError::Device {
                path: path.to_path_buf(),
                reason: format!(
                    "line length {} is shorter than {} pixels",
                    geometry.line_length, geometry.width
                ),
            });
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            geometry,
            rotation,
            buffer: vec![0; geometry.line_length * geometry.height as usize],
        })
    }

    /// The physical geometry.
    pub fn geometry(&self) -> FbGeometry {
        self.geometry
    }

    /// How far the picture is turned on the panel.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// The size of the upright picture to draw (width and height swap for
    /// a panel mounted at 90° or 270°).
    pub fn logical_size(&self) -> Size {
        logical_size(self.geometry, self.rotation)
    }

    /// Converts `canvas` (of [`Self::logical_size`]) and writes it out.
    pub fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        if canvas.size() != self.logical_size() {
            return Err(DisplayError::Device {
                path: self.path.clone(),
                reason: format!(
                    "picture is {}x{}, the screen {}x{}",
                    canvas.size().width,
                    canvas.size().height,
                    self.logical_size().width,
                    self.logical_size().height
                ),
            });
        }
        convert(canvas, self.rotation, self.geometry, &mut self.buffer);
        self.file
            .write_all_at(&self.buffer, 0)
            .map_err(|cause| DisplayError::Write {
                path: self.path.clone(),
                cause,
            })
    }
}

/// Opens a display device for reading and writing.
pub(super) fn open_device(path: &Path) -> Result<File, DisplayError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|cause| DisplayError::Write {
            path: path.to_path_buf(),
            cause,
        })
}

/// Converts the upright `canvas` into a panel buffer of `geometry`
/// (`out` holds `line_length × height` bytes), turned by `rotation`.
/// Padding bytes at the end of each row are left as they are.
pub(super) fn convert(canvas: &Canvas, rotation: Rotation, geometry: FbGeometry, out: &mut [u8]) {
    let FbGeometry {
        width,
        height,
        line_length,
        format,
    } = geometry;
    let (pw, ph) = (width as usize, height as usize);
    let logical_w = canvas.size().width as usize;
    let source: &[u8] = &canvas.0;
    let bytes = format.bytes();
    for py in 0..ph {
        let row = &mut out[py * line_length..py * line_length + pw * bytes];
        for (px, pixel) in row.chunks_exact_mut(bytes).enumerate() {
            let (lx, ly) = match rotation {
                Rotation::R0 => (px, py),
                Rotation::R90 => (py, pw - 1 - px),
                Rotation::R180 => (pw - 1 - px, ph - 1 - py),
                Rotation::R270 => (ph - 1 - py, px),
            };
            let i = (ly * logical_w + lx) * 3;
            let (r, g, b) = (source[i], source[i + 1], source[i + 2]);
            match format {
                PixelFormat::Rgb565 => {
                    let v =
                        (u16::from(r >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(b >> 3);
                    pixel.copy_from_slice(&v.to_le_bytes());
                }
                PixelFormat::Xrgb8888 => pixel.copy_from_slice(&[b, g, r, 0]),
            }
        }
    }
}

/// The upright picture size for a panel of `geometry` turned by `rotation`.
pub(super) fn logical_size(geometry: FbGeometry, rotation: Rotation) -> Size {
    let (w, h) = (geometry.width, geometry.height);
    match rotation {
        Rotation::R0 | Rotation::R180 => Size::new(w, h),
        Rotation::R90 | Rotation::R270 => Size::new(h, w),
    }
}

/// `struct fb_bitfield` of `<linux/fb.h>`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

/// `struct fb_var_screeninfo` of `<linux/fb.h>`.
#[repr(C)]
#[derive(Default)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo` of `<linux/fb.h>`.
#[repr(C)]
#[derive(Default)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    kind: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;

/// The geometry the kernel reports for the framebuffer `file` (at `path`).
fn query_geometry(file: &File, path: &Path) -> Result<FbGeometry, DisplayError> {
    use std::os::fd::AsRawFd;
    let device = |reason| DisplayError::Device {
        path: path.to_path_buf(),
        reason,
    };
    let mut var = FbVarScreeninfo::default();
    let mut fix = FbFixScreeninfo::default();
    let fd = file.as_raw_fd();
    // SAFETY: the kernel fills structs of exactly these layouts
    // (<linux/fb.h>); both outlive the calls.
    let ok = unsafe {
        libc::ioctl(
            fd,
            FBIOGET_VSCREENINFO as _,
            &mut var as *mut FbVarScreeninfo,
        ) == 0
            && libc::ioctl(
                fd,
                FBIOGET_FSCREENINFO as _,
                &mut fix as *mut FbFixScreeninfo,
            ) == 0
    };
    if !ok {
        return Err(device(format!(
            "not a framebuffer ({})",
            std::io::Error::last_os_error()
        )));
    }
    let format = match (var.bits_per_pixel, var.red.offset, var.blue.offset) {
        (16, 11, 0) => PixelFormat::Rgb565,
        (32, 16, 0) => PixelFormat::Xrgb8888,
        (bits, red, blue) => {
            return Err(device(format!(
                "unsupported pixel format: {bits} bits per pixel, red at bit {red}, blue at bit {blue} \
                 (Pleura drives RGB565 and XRGB8888)"
            )));
        }
    };
    Ok(FbGeometry {
        width: var.xres,
        height: var.yres,
        line_length: fix.line_length as usize,
        format,
    })
}

impl Surface for Framebuffer {
    fn size(&self) -> Size {
        self.logical_size()
    }

    fn rotation(&self) -> Rotation {
        Framebuffer::rotation(self)
    }

    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        Framebuffer::present(self, canvas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_is_not_a_framebuffer_is_refused_by_name() {
        let err = Framebuffer::open(Path::new("/dev/null"), Rotation::R0)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("/dev/null") && err.contains("not a framebuffer"),
            "{err}"
        );
    }

    #[test]
    fn a_tap_on_a_turned_panel_lands_where_the_picture_shows_it() {
        // The picture's top-left corner is drawn at the panel's top-right
        // corner when turned a quarter clockwise (see `convert`).
        assert_eq!(Rotation::R90.panel_to_picture(1.0, 0.0), (0.0, 0.0));
        assert_eq!(Rotation::R270.panel_to_picture(0.0, 1.0), (0.0, 0.0));
        assert_eq!(Rotation::R180.panel_to_picture(1.0, 1.0), (0.0, 0.0));
        assert_eq!(Rotation::R0.panel_to_picture(0.25, 0.5), (0.25, 0.5));
        assert_eq!(Rotation::R90.panel_to_picture(0.25, 0.5), (0.5, 0.75));
    }

    #[test]
    fn rotation_names_parse() {
        assert_eq!("270".parse::<Rotation>().unwrap(), Rotation::R270);
        assert!("45".parse::<Rotation>().is_err());
    }
}
