//! Clips from the hospital's own systems: DICOM files, read with dicom-rs.
//!
//! A US Multi-frame or single-frame image, uncompressed or compressed as
//! JPEG baseline or RLE, gray or colour (RGB, YBR), is played as a clip of
//! gray frames at its Frame Time (or Cine Rate). Everything the file says
//! about its size is checked before its pixel data is read: a side over
//! [`MAX_SIDE`], more than [`MAX_FRAMES`] frames, or pixel data larger than
//! [`MAX_PIXEL_BYTES`] is refused by name, and so is a file that is not
//! DICOM or holds no picture.

use super::{FrameSource, SourceError};
use crate::frame::{GrayFrame, MAX_SIDE};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder, PlanarConfiguration};
use std::path::{Path, PathBuf};

/// The most frames read from one file.
pub(crate) const MAX_FRAMES: u32 = 100_000;
/// The largest pixel data read from one file, as stored: 1 GiB.
pub(crate) const MAX_PIXEL_BYTES: u64 = 1 << 30;
/// The frame rate when the file gives none.
const DEFAULT_FPS: f64 = 25.0;

/// Whether `path` starts like a DICOM Part 10 file (`DICM` after the
/// 128-byte preamble).
pub fn is_dicom(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head[128..] == b"DICM")
}

/// A DICOM file played frame by frame.
pub struct DicomSource {
    path: PathBuf,
    name: String,
    object: DefaultDicomObject,
    frames: u32,
    next: u32,
    fps: f64,
}

impl DicomSource {
    /// Opens `path`, checking what it declares before reading its pixels.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        super::check_kind(path, super::Kind::File, "a DICOM file")?;
        let bad = |reason: String| SourceError::Decode {
            path: path.to_path_buf(),
            reason,
        };
        if !is_dicom(path) {
            return Err(bad(
                "not a DICOM file (no 'DICM' after a 128-byte preamble)".into(),
            ));
        }
        check_declared_lengths(path).map_err(bad)?;
        let header = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| bad(format!("not a DICOM file Pleura reads: {e}")))?;
        let number = |tag, what: &str| -> Result<u32, SourceError> {
            header
                .element(tag)
                .map_err(|_| bad(format!("no {what}: not a picture")))?
                .to_int::<u32>()
                .map_err(|e| bad(format!("{what}: {e}")))
        };
        let rows = number(tags::ROWS, "Rows")?;
        let columns = number(tags::COLUMNS, "Columns")?;
        if rows == 0 || columns == 0 || u64::from(rows.max(columns)) > MAX_SIDE {
            return Err(bad(format!(
                "its picture declares {columns}x{rows} pixels; Pleura reads sides of 1 to {MAX_SIDE}"
            )));
        }
        let frames = match header.element(tags::NUMBER_OF_FRAMES) {
            Ok(element) => element
                .to_int::<u32>()
                .map_err(|e| bad(format!("Number of Frames: {e}")))?,
            Err(_) => 1,
        };
        if !(1..=MAX_FRAMES).contains(&frames) {
            return Err(bad(format!(
                "it declares {frames} frames; Pleura reads 1 to {MAX_FRAMES}"
            )));
        }
        let samples = number(tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?;
        let bits = number(tags::BITS_ALLOCATED, "Bits Allocated")?;
        if !matches!(samples, 1 | 3) || !matches!(bits, 8 | 16) {
            return Err(bad(format!(
                "{samples} samples of {bits} bits a pixel; Pleura reads 1 or 3 samples of 8 or 16 bits"
            )));
        }
        let declared = u64::from(rows)
            * u64::from(columns)
            * u64::from(samples)
            * u64::from(bits / 8)
            * u64::from(frames);
        let size = std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .len();
        if declared > MAX_PIXEL_BYTES || size > MAX_PIXEL_BYTES + (1 << 20) {
            return Err(bad(format!(
                "{frames} frames of {columns}x{rows} are more than the {} MiB of pixels Pleura reads",
                MAX_PIXEL_BYTES >> 20
            )));
        }
        let fps = frame_rate(&header).unwrap_or(DEFAULT_FPS);
        let object = dicom_object::open_file(path)
            .map_err(|e| bad(format!("not a DICOM file Pleura reads: {e}")))?;
        if object.element(tags::PIXEL_DATA).is_err() {
            return Err(bad("it holds no pixel data: not a picture".into()));
        }
        Ok(Self {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            object,
            frames,
            next: 0,
            fps,
        })
    }
}

/// The transfer syntaxes Pleura reads: implicit and explicit VR little
/// endian, JPEG baseline, RLE.
const READ_SYNTAXES: [&str; 4] = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.5",
];
/// The most elements walked in one file.
const MAX_ELEMENTS: usize = 1_000_000;

/// Walks every element header of the file, the way the parser will meet
/// them, and refuses one whose declared length runs past the end of the
/// file: the parser allocates a value's declared length before reading it,
/// so a 500-byte file declaring a 3 GB element would otherwise ask for
/// 3 GB. Sequences and items are walked into; pixel data fragments and
/// other values are skipped. Also refuses transfer syntaxes Pleura does
/// not read (big endian, deflated, other codecs).
fn check_declared_lengths(path: &Path) -> Result<(), String> {
    use dicom_core::dictionary::{DataDictionary, VirtualVr};
    use dicom_core::{Tag, VR};
    use std::io::{BufReader, Read, Seek};
    const UNDEFINED: u32 = u32::MAX;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut reader = BufReader::new(file);
    reader
        .seek(std::io::SeekFrom::Start(132))
        .map_err(|e| e.to_string())?;
    let mut at = 132u64;
    /// Reads `n` bytes (at most 64 KiB: headers and the syntax UID).
    fn read(reader: &mut impl Read, n: usize, at: &mut u64) -> Result<Vec<u8>, String> {
        let mut bytes = vec![0u8; n.min(1 << 16)];
        reader
            .read_exact(&mut bytes)
            .map_err(|_| format!("cut short at byte {at}"))?;
        *at += n as u64;
        Ok(bytes)
    }
    fn skip(reader: &mut BufReader<std::fs::File>, n: u32, at: &mut u64) -> Result<(), String> {
        reader
            .seek_relative(i64::from(n))
            .map_err(|e| e.to_string())?;
        *at += u64::from(n);
        Ok(())
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut syntax = String::new();
    let mut explicit = true;
    let mut in_meta = true;
    // Where the file meta group ends, by its group length (0002,0000):
    // dicom-object reads the meta group by that length, this walk by its
    // elements, and a file on which the two disagree is refused.
    let mut meta_end: Option<u64> = None;
    let mut meta_start = 0u64;
    // Undefined-length sequences and items open, and the depth at which
    // the open pixel data's fragments are.
    let mut depth = 0usize;
    let mut fragments_at: Option<usize> = None;
    for _ in 0..MAX_ELEMENTS {
        if at + 8 > size {
            return Ok(());
        }
        let tag_at = at;
        let tag = read(&mut reader, 4, &mut at)?;
        let (group, element) = (u16_at(&tag, 0), u16_at(&tag, 2));
        let meta_over = meta_end.is_some_and(|end| tag_at >= end);
        if in_meta && (group != 0x0002 || meta_over) {
            if let Some(end) = meta_end.filter(|&end| end != tag_at) {
                return Err(format!(
                    "the file meta group declares {} bytes, but its elements take {}",
                    end - meta_start,
                    tag_at - meta_start
                ));
            }
            in_meta = false;
            let syntax = syntax.trim_end_matches(['\0', ' ']);
            if !READ_SYNTAXES.contains(&syntax) {
                return Err(format!("transfer syntax {syntax} is not read"));
            }
            explicit = syntax != READ_SYNTAXES[0];
        }
        let past_end = |length: u32, at: u64| u64::from(length) > size - at;
        if group == 0xFFFE {
            let length = u32_at(&read(&mut reader, 4, &mut at)?, 0);
            match element {
                0xE000 if length == UNDEFINED => depth += 1,
                0xE000 if past_end(length, at) => {
                    return Err(format!("an item of {length} bytes runs past the end"));
                }
                // A fragment of encapsulated pixel data: bytes, skipped.
                0xE000 if fragments_at == Some(depth) => skip(&mut reader, length, &mut at)?,
                0xE000 => {}
                0xE00D | 0xE0DD => {
                    if fragments_at == Some(depth) {
                        fragments_at = None;
                    }
                    depth = depth.saturating_sub(1);
                }
                // The parser reads any other (FFFE,xxxx) as an element
                // with a value of its 32-bit length.
                _ => {
                    return Err(format!(
                        "(FFFE,{element:04X}) is neither an item nor a delimiter"
                    ));
                }
            }
            continue;
        }
        let (vr, length) = if explicit || in_meta {
            let head = read(&mut reader, 4, &mut at)?;
            // As the parser reads it: an unknown VR is UN, and only these
            // VRs have a 16-bit length (PS3.5 7.1.2).
            let vr = VR::from_binary([head[0], head[1]]).unwrap_or(VR::UN);
            let long = !matches!(
                vr,
                VR::AE
                    | VR::AS
                    | VR::AT
                    | VR::CS
                    | VR::DA
                    | VR::DS
                    | VR::DT
                    | VR::FL
                    | VR::FD
                    | VR::IS
                    | VR::LO
                    | VR::LT
                    | VR::PN
                    | VR::SH
                    | VR::SL
                    | VR::SS
                    | VR::ST
                    | VR::TM
                    | VR::UI
                    | VR::UL
                    | VR::US
            );
            let length = if long {
                u32_at(&read(&mut reader, 4, &mut at)?, 0)
            } else {
                u32::from(u16_at(&head, 2))
            };
            (Some(vr), length)
        } else {
            let length = u32_at(&read(&mut reader, 4, &mut at)?, 0);
            let vr = dicom_dictionary_std::StandardDataDictionary
                .by_tag(Tag(group, element))
                .and_then(|entry| match entry.vr {
                    VirtualVr::Exact(vr) => Some(vr),
                    _ => None,
                });
            (vr, length)
        };
        if length == UNDEFINED {
            depth += 1;
            if (group, element) == (0x7FE0, 0x0010) {
                fragments_at = Some(depth);
            }
            continue;
        }
        if past_end(length, at) {
            return Err(format!(
                "element ({group:04X},{element:04X}) declares {length} bytes, past the end of the \
                 file"
            ));
        }
        if vr == Some(VR::SQ) {
            continue; // its items are walked
        }
        // The parser reads binary numbers whole: a length that is not a
        // multiple of the number's size would leave it reading elsewhere
        // than this walk.
        let number = match vr {
            Some(VR::FD | VR::OD | VR::SV | VR::UV | VR::OV) => 8,
            Some(VR::FL | VR::OF | VR::OL | VR::SL | VR::UL | VR::AT) => 4,
            Some(VR::SS | VR::US | VR::OW) => 2,
            _ => 1,
        };
        if length % number != 0 {
            return Err(format!(
                "element ({group:04X},{element:04X}) holds {length} bytes, not a whole number of \
                 {number}-byte values"
            ));
        }
        if (group, element) == (0x0002, 0x0000) && length == 4 && meta_end.is_none() {
            let value = u32_at(&read(&mut reader, 4, &mut at)?, 0);
            meta_start = at;
            meta_end = Some(at + u64::from(value));
            continue;
        }
        if (group, element) == (0x0002, 0x0010) {
            if length > 64 {
                return Err(format!("a transfer syntax UID of {length} bytes"));
            }
            syntax =
                String::from_utf8_lossy(&read(&mut reader, length as usize, &mut at)?).into_owned();
            continue;
        }
        skip(&mut reader, length, &mut at)?;
    }
    Err(format!("more than {MAX_ELEMENTS} elements"))
}

/// The frame rate a file declares: 1000 / Frame Time, else Cine Rate,
/// else Recommended Display Frame Rate.
fn frame_rate(object: &DefaultDicomObject) -> Option<f64> {
    let value = |tag| {
        object
            .element(tag)
            .ok()
            .and_then(|e| e.to_float64().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    value(tags::FRAME_TIME)
        .map(|ms| 1000.0 / ms)
        .or_else(|| value(tags::CINE_RATE))
        .or_else(|| value(tags::RECOMMENDED_DISPLAY_FRAME_RATE))
        .filter(|fps| (0.1..=1000.0).contains(fps))
}

impl FrameSource for DicomSource {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        if self.next >= self.frames {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        let bad = |reason: String| SourceError::Decode {
            path: self.path.clone(),
            reason: format!("frame {index}: {reason}"),
        };
        let decoded = self
            .object
            .decode_pixel_data_frame(index)
            .map_err(|e| bad(e.to_string()))?;
        let (width, height) = (decoded.columns() as usize, decoded.rows() as usize);
        let data = decoded.frame_data(0).map_err(|e| bad(e.to_string()))?;
        let gray = to_gray(
            data,
            width * height,
            decoded.samples_per_pixel(),
            decoded.bits_allocated(),
            decoded.photometric_interpretation(),
            decoded.planar_configuration(),
        )
        .map_err(bad)?;
        GrayFrame::new(width, height, gray, u64::from(index))
            .map(Some)
            .ok_or_else(|| bad("a short frame".into()))
    }

    fn clip_name(&self) -> &str {
        &self.name
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(self.fps)
    }
}

/// One frame's samples as 8-bit gray: gray as it is (MONOCHROME1
/// inverted, 16 bits scaled down), RGB by the Rec. 601 luma, YBR by its Y.
fn to_gray(
    data: &[u8],
    pixels: usize,
    samples: u16,
    bits: u16,
    photometric: &PhotometricInterpretation,
    planar: PlanarConfiguration,
) -> Result<Vec<u8>, String> {
    let need = pixels * usize::from(samples) * usize::from(bits / 8);
    if data.len() < need {
        return Err(format!("{} bytes where {need} were declared", data.len()));
    }
    let mut gray: Vec<u8> = match (samples, bits) {
        (1, 8) => data[..pixels].to_vec(),
        (1, 16) => {
            let values: Vec<u16> = data[..2 * pixels]
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            let max = values.iter().copied().max().unwrap_or(0).max(1);
            values
                .iter()
                .map(|&v| (u32::from(v) * 255 / u32::from(max)) as u8)
                .collect()
        }
        (3, 8) => {
            let sample = |i: usize, c: usize| match planar {
                PlanarConfiguration::Standard => data[3 * i + c],
                PlanarConfiguration::PixelFirst => data[c * pixels + i],
            };
            match photometric {
                PhotometricInterpretation::YbrFull => (0..pixels).map(|i| sample(i, 0)).collect(),
                PhotometricInterpretation::Rgb => (0..pixels)
                    .map(|i| {
                        let (r, g, b) = (
                            u32::from(sample(i, 0)),
                            u32::from(sample(i, 1)),
                            u32::from(sample(i, 2)),
                        );
                        ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
                    })
                    .collect(),
                other => return Err(format!("photometric interpretation {other} is not read")),
            }
        }
        _ => return Err(format!("{samples} samples of {bits} bits are not read")),
    };
    match photometric {
        PhotometricInterpretation::Monochrome1 => gray.iter_mut().for_each(|v| *v = 255 - *v),
        PhotometricInterpretation::Monochrome2
        | PhotometricInterpretation::Rgb
        | PhotometricInterpretation::YbrFull => {}
        other if samples == 1 => {
            return Err(format!("photometric interpretation {other} is not read"));
        }
        _ => {}
    }
    Ok(gray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_becomes_gray_by_luma_and_monochrome1_is_inverted() {
        let rgb = [255, 0, 0, 0, 0, 255];
        let gray = to_gray(
            &rgb,
            2,
            3,
            8,
            &PhotometricInterpretation::Rgb,
            PlanarConfiguration::Standard,
        )
        .unwrap();
        assert_eq!(gray, [76, 29]);
        let planar = [255, 0, 0, 0, 0, 255];
        let gray = to_gray(
            &planar,
            2,
            3,
            8,
            &PhotometricInterpretation::Rgb,
            PlanarConfiguration::PixelFirst,
        )
        .unwrap();
        assert_eq!(gray, [76, 29]);
        let inverted = to_gray(
            &[0, 200],
            2,
            1,
            8,
            &PhotometricInterpretation::Monochrome1,
            PlanarConfiguration::Standard,
        )
        .unwrap();
        assert_eq!(inverted, [255, 55]);
        assert!(
            to_gray(
                &[1],
                2,
                1,
                8,
                &PhotometricInterpretation::Monochrome2,
                PlanarConfiguration::Standard
            )
            .is_err()
        );
    }
}
