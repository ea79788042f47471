//! Pixel formats of capture devices, and their conversion to gray.
//!
//! Grabbers deliver what their chip produces: 8-bit gray, packed YUYV,
//! semi-planar NV12, RGB24 or Motion-JPEG. Pleura scores luma only, so
//! every format is reduced to its luma plane, row by row, honouring the
//! stride the driver reports (rows are often padded).
//!
//! Many USB grabbers send MJPEG frames without Huffman tables (the
//! "AVI1" convention: the decoder is expected to use the standard tables
//! of JPEG Annex K). [`jpeg_with_tables`] inserts them when a frame has
//! none, then the frame is decoded by a pure-Rust decoder (`zune-jpeg`,
//! through the `image` crate).
//!
//! Every PNG or JPEG Pleura reads (a grabber's MJPEG frame, an image in a
//! `dir:` folder) is decoded by [`decode_gray_image`], which reads the
//! size the picture declares and refuses one over
//! [`crate::frame::MAX_SIDE`] before allocating anything for its pixels.

use crate::frame::{MAX_SIDE, SizeError, check_declared_size};
use crate::spec::SpecError;
use std::fmt;
use std::io::{BufRead, Seek};

/// A capture pixel format Pleura can turn into gray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 8-bit luma (`GREY`).
    Grey,
    /// Packed 4:2:2, Y0 U Y1 V (`YUYV`).
    Yuyv,
    /// Motion-JPEG, one JPEG image per frame (`MJPG`).
    Mjpeg,
    /// Semi-planar 4:2:0: a luma plane, then interleaved U/V (`NV12`).
    Nv12,
    /// Packed 8-bit R, G, B (`RGB3`).
    Rgb24,
}

impl PixelFormat {
    /// The order Pleura asks for formats in, unless told otherwise: the
    /// cheapest conversion first, lossy MJPEG after the raw formats that
    /// carry full luma.
    pub const PREFERENCE: [PixelFormat; 5] = [
        PixelFormat::Grey,
        PixelFormat::Yuyv,
        PixelFormat::Mjpeg,
        PixelFormat::Nv12,
        PixelFormat::Rgb24,
    ];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Rgb24 => *b"RGB3",
        }
    }

    /// The format of a four-character code, if Pleura reads it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        Self::PREFERENCE.into_iter().find(|f| f.fourcc() == code)
    }

    /// Bytes of one row of the first plane, `width` pixels wide (None for
    /// MJPEG, whose frames have no rows).
    pub fn row_bytes(self, width: usize) -> Option<usize> {
        match self {
            PixelFormat::Grey | PixelFormat::Nv12 => Some(width),
            PixelFormat::Yuyv => Some(2 * width),
            PixelFormat::Rgb24 => Some(3 * width),
            PixelFormat::Mjpeg => None,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.fourcc()).unwrap_or("????"))
    }
}

impl std::str::FromStr for PixelFormat {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let code: Option<[u8; 4]> = match upper.as_str() {
            "RGB24" => Some(*b"RGB3"),
            _ => upper.as_bytes().try_into().ok(),
        };
        code.and_then(Self::from_fourcc).ok_or_else(|| {
            let names = Self::PREFERENCE.map(|format| format.to_string());
            SpecError::UnknownName {
                what: "pixel format",
                found: s.to_string(),
                choices: crate::spec::one_of(&names.each_ref().map(String::as_str)),
            }
        })
    }
}

/// What is wrong with a captured frame or a picture.
#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    /// A layout of width or height 0.
    #[error("empty frame size")]
    Empty,
    /// Fewer bytes than the layout needs.
    #[error("{bytes} bytes, {expected} expected")]
    Short {
        /// Bytes the frame has.
        bytes: usize,
        /// Bytes the layout needs.
        expected: usize,
    },
    /// No JPEG start-of-image marker.
    #[error("not a JPEG (no start-of-image marker)")]
    NotJpeg,
    /// No JPEG end-of-image marker: the frame was cut short.
    #[error("JPEG cut short (no end-of-image marker)")]
    JpegCutShort,
    /// A JPEG whose segments do not start with a marker.
    #[error("bad JPEG marker at byte {at}")]
    JpegMarker {
        /// The byte offset.
        at: usize,
    },
    /// A picture larger than Pleura reads.
    #[error("{what} {size}")]
    Size {
        /// The picture (`JPEG`, `image`, the driver's answer).
        what: &'static str,
        /// The size it declares.
        size: SizeError,
    },
    /// A picture of another size than the one negotiated.
    #[error("{what} of {}x{}, {}x{} expected", found.0, found.1, expected.0, expected.1)]
    WrongSize {
        /// The picture.
        what: &'static str,
        /// Its size.
        found: (u32, u32),
        /// The size expected.
        expected: (usize, usize),
    },
    /// The decoder refused the picture.
    #[error("bad {what}: {cause}")]
    Decode {
        /// The picture.
        what: &'static str,
        /// The decoder's reason.
        cause: image::ImageError,
    },
}

/// The layout of one captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// Pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from one row of the first plane to the next.
    pub stride: usize,
}

impl FrameLayout {
    /// The layout of the format, size and stride a driver answered, each
    /// frame of which will be allocated: refused when a side is over
    /// [`MAX_SIDE`] ([`check_declared_size`]). The stride is at least one
    /// row.
    pub fn negotiated(
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: u32,
    ) -> Result<Self, PixelError> {
        check_declared_size(width.into(), height.into()).map_err(|size| PixelError::Size {
            what: "the format the driver answered",
            size,
        })?;
        let (width, height) = (width as usize, height as usize);
        let row_bytes = format.row_bytes(width).unwrap_or(0);
        Ok(Self {
            format,
            width,
            height,
            stride: (stride as usize).max(row_bytes),
        })
    }

    /// The fewest bytes a frame of this layout can have (0 for MJPEG).
    pub fn min_bytes(&self) -> usize {
        let Some(row) = self.format.row_bytes(self.width) else {
            return 0;
        };
        if self.height == 0 {
            return 0;
        }
        // NV12's chroma plane follows the luma plane; only luma is read.
        self.stride * (self.height - 1) + row
    }
}

/// Turns one captured frame into gray pixels, writing them into `gray`
/// (cleared first). The error says what is wrong with the frame.
pub fn to_gray(buffer: &[u8], layout: FrameLayout, gray: &mut Vec<u8>) -> Result<(), PixelError> {
    let FrameLayout {
        format,
        width,
        height,
        stride,
    } = layout;
    gray.clear();
    if width == 0 || height == 0 {
        return Err(PixelError::Empty);
    }
    if format == PixelFormat::Mjpeg {
        return decode_mjpeg(buffer, width, height, gray);
    }
    if buffer.len() < layout.min_bytes() {
        return Err(PixelError::Short {
            bytes: buffer.len(),
            expected: layout.min_bytes(),
        });
    }
    let row_bytes = format.row_bytes(width).unwrap_or(width);
    for row in 0..height {
        let line = &buffer[row * stride..][..row_bytes];
        match format {
            PixelFormat::Grey | PixelFormat::Nv12 => gray.extend_from_slice(line),
            PixelFormat::Yuyv => gray.extend(line.iter().step_by(2)),
            PixelFormat::Rgb24 => gray.extend(line.chunks_exact(3).map(|p| luma(p[0], p[1], p[2]))),
            PixelFormat::Mjpeg => {}
        }
    }
    Ok(())
}

/// BT.601 luma of an RGB pixel, in integers (gray stays gray exactly).
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

fn decode_mjpeg(
    buffer: &[u8],
    width: usize,
    height: usize,
    gray: &mut Vec<u8>,
) -> Result<(), PixelError> {
    if !buffer.starts_with(&[0xFF, 0xD8]) {
        return Err(PixelError::NotJpeg);
    }
    // A frame cut short on the USB bus has no end-of-image marker (drivers
    // may pad a whole frame with zeros after it). Decoders would fill the
    // missing part with gray; the frame is refused instead.
    let end = buffer.iter().rposition(|&b| b != 0).unwrap_or(0);
    if end < 1 || buffer[end - 1..=end] != [0xFF, 0xD9] {
        return Err(PixelError::JpegCutShort);
    }
    let jpeg = jpeg_with_tables(&buffer[..=end])?;
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(&*jpeg), image::ImageFormat::Jpeg);
    let image = decode_gray_image(reader, "JPEG", Some((width, height)))?;
    gray.extend_from_slice(image.as_raw());
    Ok(())
}

/// Most bytes an image decoder may hold at once: a picture at the limit,
/// [`MAX_SIDE`] square, in the widest pixel PNG has (16-bit RGBA, 8 bytes).
const MAX_DECODE_BYTES: u64 = MAX_SIDE * MAX_SIDE * 8;

/// Decodes the PNG or JPEG `reader` holds into gray. The size the picture
/// declares is checked first, before any pixel is allocated: against
/// [`MAX_SIDE`] ([`check_declared_size`]), and against `expected` when
/// given (a grabber's negotiated size). `what` names the picture in the
/// error ("JPEG", "image"), which says the declared size and the rule, or
/// what the decoder found wrong.
pub fn decode_gray_image<R: BufRead + Seek>(
    mut reader: image::ImageReader<R>,
    what: &'static str,
    expected: Option<(usize, usize)>,
) -> Result<image::GrayImage, PixelError> {
    let bad = |cause| PixelError::Decode { what, cause };
    // The decoder's own side limits are left off while the header is read,
    // so that a refusal can name the declared size; its memory limit bounds
    // what it buffers before the pixels (text, colour profiles).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    check_declared_size(w.into(), h.into()).map_err(|size| PixelError::Size { what, size })?;
    if let Some(expected) = expected
        && (w as usize, h as usize) != expected
    {
        return Err(PixelError::WrongSize {
            what,
            found: (w, h),
            expected,
        });
    }
    let side = MAX_SIDE as u32;
    (limits.max_image_width, limits.max_image_height) = (Some(side), Some(side));
    image::ImageDecoder::set_limits(&mut decoder, limits).map_err(bad)?;
    Ok(image::DynamicImage::from_decoder(decoder)
        .map_err(bad)?
        .into_luma8())
}

/// The JPEG with the standard Huffman tables inserted after its start
/// marker when it carries none (borrowed unchanged when it does).
pub fn jpeg_with_tables(jpeg: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, PixelError> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(PixelError::NotJpeg);
    }
    // Walk the marker segments up to the start of scan.
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return Err(PixelError::JpegMarker { at });
        }
        let marker = jpeg[at + 1];
        match marker {
            0xC4 => return Ok(std::borrow::Cow::Borrowed(jpeg)),
            0xDA => break,
            0xFF => at += 1, // fill byte
            _ => {
                let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
                at += 2 + length;
            }
        }
    }
    let mut with = Vec::with_capacity(jpeg.len() + 432);
    with.extend_from_slice(&jpeg[..2]);
    with.extend_from_slice(&standard_huffman_tables());
    with.extend_from_slice(&jpeg[2..]);
    Ok(std::borrow::Cow::Owned(with))
}

/// One DHT segment holding the four tables of JPEG Annex K.3 (luma and
/// chroma, DC and AC), as MJPEG decoders assume.
fn standard_huffman_tables() -> Vec<u8> {
    const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    const AC_LUMA_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    const AC_CHROMA_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
        0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
        0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
        0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_LUMA_BITS, &DC_VALUES),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
        (0x01, &DC_CHROMA_BITS, &DC_VALUES),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    let length: usize = 2 + tables
        .iter()
        .map(|(_, _, values)| 17 + values.len())
        .sum::<usize>();
    let mut segment = vec![0xFF, 0xC4];
    segment.extend_from_slice(&(length as u16).to_be_bytes());
    for (class_and_id, bits, values) in tables {
        segment.push(class_and_id);
        segment.extend_from_slice(bits);
        segment.extend_from_slice(values);
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64×48 gray reference: a diagonal ramp with a bright square.
    fn reference() -> (usize, usize, Vec<u8>) {
        let (w, h) = (64, 48);
        let pixels = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (20..36).contains(&x) && (10..26).contains(&y) {
                    240
                } else {
                    ((x * 3 + y * 2) % 200) as u8
                }
            })
            .collect();
        (w, h, pixels)
    }

    fn gray_of(buffer: &[u8], format: PixelFormat, w: usize, h: usize, stride: usize) -> Vec<u8> {
        let mut gray = Vec::new();
        let layout = FrameLayout {
            format,
            width: w,
            height: h,
            stride,
        };
        to_gray(buffer, layout, &mut gray).unwrap();
        gray
    }

    /// Lays `rows` out with `pad` bytes after each row.
    fn padded(rows: impl Iterator<Item = Vec<u8>>, pad: usize) -> Vec<u8> {
        rows.flat_map(|mut row| {
            row.extend(std::iter::repeat_n(0xEE, pad));
            row
        })
        .collect()
    }

    #[test]
    fn grey_with_padded_rows_is_the_reference() {
        let (w, h, reference) = reference();
        let buffer = padded(reference.chunks(w).map(<[u8]>::to_vec), 16);
        assert_eq!(gray_of(&buffer, PixelFormat::Grey, w, h, w + 16), reference);
    }

    #[test]
    fn yuyv_with_padded_rows_keeps_the_luma() {
        let (w, h, reference) = reference();
        let rows = reference
            .chunks(w)
            .map(|row| row.iter().flat_map(|&y| [y, 90]).collect());
        let buffer = padded(rows, 8);
        assert_eq!(
            gray_of(&buffer, PixelFormat::Yuyv, w, h, 2 * w + 8),
            reference
        );
    }

    #[test]
    fn nv12_reads_the_luma_plane_and_ignores_chroma() {
        let (w, h, reference) = reference();
        let mut buffer = padded(reference.chunks(w).map(<[u8]>::to_vec), 32);
        buffer.extend(std::iter::repeat_n(200, (w + 32) * h / 2)); // the U/V plane
        assert_eq!(gray_of(&buffer, PixelFormat::Nv12, w, h, w + 32), reference);
    }

    #[test]
    fn rgb24_gray_pixels_stay_exact_and_colours_take_bt601_luma() {
        let (w, h, reference) = reference();
        let rows = reference
            .chunks(w)
            .map(|row| row.iter().flat_map(|&v| [v, v, v]).collect());
        assert_eq!(
            gray_of(&padded(rows, 4), PixelFormat::Rgb24, w, h, 3 * w + 4),
            reference
        );
        assert_eq!(luma(255, 0, 0), 77);
        assert_eq!(luma(0, 255, 0), 149);
        assert_eq!(luma(0, 0, 255), 29);
    }

    fn encode_jpeg(w: usize, h: usize, pixels: &[u8]) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode(pixels, w as u32, h as u32, image::ExtendedColorType::L8)
            .unwrap();
        jpeg
    }

    /// The JPEG with every DHT segment cut out, as many grabbers send it.
    fn without_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut at = 2;
        while jpeg[at + 1] != 0xDA {
            let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            if jpeg[at + 1] != 0xC4 {
                out.extend_from_slice(&jpeg[at..at + 2 + length]);
            }
            at += 2 + length;
        }
        out.extend_from_slice(&jpeg[at..]);
        out
    }

    #[test]
    fn mjpeg_decodes_close_to_the_reference() {
        let (w, h, reference) = reference();
        let gray = gray_of(&encode_jpeg(w, h, &reference), PixelFormat::Mjpeg, w, h, 0);
        let error: f64 = gray
            .iter()
            .zip(&reference)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / reference.len() as f64;
        assert!(error < 3.0, "mean error {error} grey levels");
    }

    #[test]
    fn mjpeg_without_huffman_tables_gets_the_standard_ones() {
        let (w, h, reference) = reference();
        let jpeg = encode_jpeg(w, h, &reference);
        let stripped = without_tables(&jpeg);
        assert!(
            stripped.len() < jpeg.len(),
            "the test JPEG had tables to strip"
        );
        assert!(
            image::load_from_memory(&stripped).is_err(),
            "a decoder needs the tables"
        );
        assert_eq!(
            gray_of(&stripped, PixelFormat::Mjpeg, w, h, 0),
            gray_of(&jpeg, PixelFormat::Mjpeg, w, h, 0)
        );
    }

    #[test]
    fn bad_frames_are_refused_with_a_reason() {
        let mut gray = Vec::new();
        let layout = |format| FrameLayout {
            format,
            width: 64,
            height: 48,
            stride: 64,
        };
        let error = |buffer: &[u8], layout, gray: &mut Vec<u8>| {
            to_gray(buffer, layout, gray).unwrap_err().to_string()
        };
        let short = error(&[0; 100], layout(PixelFormat::Grey), &mut gray);
        assert!(short.contains("100 bytes"), "{short}");
        let junk = error(&[0; 100], layout(PixelFormat::Mjpeg), &mut gray);
        assert!(junk.contains("not a JPEG"), "{junk}");
        let (w, h, reference) = reference();
        let mut cut = encode_jpeg(w, h, &reference);
        cut.truncate(cut.len() / 2);
        let err = error(&cut, layout(PixelFormat::Mjpeg), &mut gray);
        assert!(err.contains("cut short"), "{err}");
        let mut padded_frame = encode_jpeg(w, h, &reference);
        padded_frame.extend([0; 300]); // zero padding after the end marker is fine
        assert!(to_gray(&padded_frame, layout(PixelFormat::Mjpeg), &mut gray).is_ok());
        let other_size = encode_jpeg(w, h, &reference);
        let err = error(
            &other_size,
            FrameLayout {
                format: PixelFormat::Mjpeg,
                width: 32,
                height: 48,
                stride: 0,
            },
            &mut gray,
        );
        assert!(err.contains("64x48"), "{err}");
    }

    #[test]
    fn a_driver_answer_over_the_size_limit_is_refused_naming_its_size() {
        let layout = FrameLayout::negotiated(PixelFormat::Yuyv, 4096, 2160, 0).unwrap();
        assert_eq!(
            (layout.width, layout.height, layout.stride),
            (4096, 2160, 8192)
        );
        for (w, h) in [(20000, 20000), (4097, 480), (640, 65535)] {
            let err = FrameLayout::negotiated(PixelFormat::Grey, w, h, w)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("{w}x{h}")) && err.contains("4096x4096"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_standard_tables_hold_as_many_codes_as_their_lengths_count() {
        let segment = standard_huffman_tables();
        assert_eq!(
            usize::from(u16::from_be_bytes([segment[2], segment[3]])) + 2,
            segment.len()
        );
        let mut at = 4;
        while at < segment.len() {
            let counts: usize = segment[at + 1..at + 17]
                .iter()
                .map(|&c| usize::from(c))
                .sum();
            at += 17 + counts;
        }
        assert_eq!(at, segment.len());
    }

    #[test]
    fn formats_parse_from_their_codes() {
        assert_eq!("yuyv".parse::<PixelFormat>().unwrap(), PixelFormat::Yuyv);
        assert_eq!("MJPG".parse::<PixelFormat>().unwrap(), PixelFormat::Mjpeg);
        assert_eq!(PixelFormat::from_fourcc(*b"NV12"), Some(PixelFormat::Nv12));
        assert!("H264".parse::<PixelFormat>().is_err());
        assert_eq!(PixelFormat::Rgb24.to_string(), "RGB3");
    }
}
