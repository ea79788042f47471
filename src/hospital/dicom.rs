//! The image objects of an exam, built with dicom-rs: a US Multi-frame
//! clip per recorded zone and a Secondary Capture of the summary screen,
//! with the modules they share (patient, study, series, equipment, SOP
//! common). The structured report is in [`super::report`].
//!
//! Every object is written in Explicit VR Little Endian, the transfer
//! syntax every PACS accepts, uncompressed, with UTF-8 text
//! (`ISO_IR 192`).

use super::{ExamFacts, Station};
use crate::exam::{SeriesKind, ZoneClip};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject};

/// A data set being built.
pub(crate) type Object = InMemDicomObject;

/// US Multi-frame Image Storage.
pub(crate) const US_MULTIFRAME: &str = uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE;
/// Secondary Capture Image Storage.
pub(crate) const SECONDARY_CAPTURE: &str = uids::SECONDARY_CAPTURE_IMAGE_STORAGE;
/// Comprehensive SR Storage.
pub(crate) const COMPREHENSIVE_SR: &str = uids::COMPREHENSIVE_SR_STORAGE;

/// Pleura's implementation class UID (a `2.25` UUID UID, made once).
const IMPLEMENTATION_CLASS_UID: &str = "2.25.307666615209230200036189280922804439007";
/// The implementation version name in the file meta group (at most 16
/// characters).
const IMPLEMENTATION_VERSION: &str = concat!("PLEURA_", env!("CARGO_PKG_VERSION"));

/// Puts a text element (empty text for an empty type 2 element).
pub(crate) fn put_text(object: &mut Object, tag: Tag, vr: VR, text: &str) {
    object.put(DataElement::new(tag, vr, PrimitiveValue::from(text)));
}

/// Puts a sequence of `items` (none: an empty type 2 sequence).
pub(crate) fn put_sequence(object: &mut Object, tag: Tag, items: Vec<Object>) {
    object.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// A one-item sequence's item: an object with these text elements.
pub(crate) fn item(elements: &[(Tag, VR, &str)]) -> Object {
    let mut object = Object::new_empty();
    for &(tag, vr, text) in elements {
        put_text(&mut object, tag, vr, text);
    }
    object
}

/// A DICOM date and time (`YYYYMMDD`, `HHMMSS`) of `seconds` since the
/// Unix epoch, in UTC: the unit keeps UTC, and every object says so
/// (Timezone Offset From UTC).
pub(crate) fn date_time(seconds: u64) -> (String, String) {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!("{:02}{:02}{:02}", rest / 3600, (rest / 60) % 60, rest % 60),
    )
}

/// The modules every object of the exam shares: SOP Common, Patient,
/// General Study, General Series (of `kind`, modality `modality`) and
/// General Equipment. `number` is the instance number in its series.
pub(crate) fn common(
    exam: &ExamFacts,
    station: &Station,
    sop_class: &str,
    kind: SeriesKind,
    modality: &str,
    series_description: &str,
    number: u32,
) -> Object {
    let identity = &exam.identity;
    let mut object = Object::new_empty();
    let (study_date, study_time) = date_time(exam.started_at);
    let (content_date, content_time) = date_time(exam.finished_at);
    let number_text = number.to_string();
    let series_number = kind.number().to_string();
    let instance_uid = identity.instance_uid(kind, number);
    let series_uid = identity.series_uid(kind);
    let (name, id, birth, sex) = match &identity.patient {
        Some(p) => (
            p.name.as_str(),
            p.id.as_str(),
            p.birth_date.as_deref().unwrap_or(""),
            p.sex.as_deref().unwrap_or(""),
        ),
        // An anonymous exam is its own patient until the hospital merges
        // it: its ID is its accession number.
        None => ("ANONYMOUS", identity.accession.as_str(), "", ""),
    };
    for (tag, vr, text) in [
        // SOP Common
        (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        (tags::SOP_CLASS_UID, VR::UI, sop_class),
        (tags::SOP_INSTANCE_UID, VR::UI, instance_uid.as_str()),
        (tags::INSTANCE_CREATION_DATE, VR::DA, content_date.as_str()),
        (tags::INSTANCE_CREATION_TIME, VR::TM, content_time.as_str()),
        (tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, "+0000"),
        // Patient
        (tags::PATIENT_NAME, VR::PN, name),
        (tags::PATIENT_ID, VR::LO, id),
        (tags::PATIENT_BIRTH_DATE, VR::DA, birth),
        (tags::PATIENT_SEX, VR::CS, sex),
        // General Study
        (
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            identity.study_uid.as_str(),
        ),
        (tags::STUDY_DATE, VR::DA, study_date.as_str()),
        (tags::STUDY_TIME, VR::TM, study_time.as_str()),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        (tags::STUDY_ID, VR::SH, identity.accession.as_str()),
        (tags::ACCESSION_NUMBER, VR::SH, identity.accession.as_str()),
        (tags::STUDY_DESCRIPTION, VR::LO, "Lung ultrasound"),
        // General Series
        (tags::MODALITY, VR::CS, modality),
        (tags::SERIES_INSTANCE_UID, VR::UI, series_uid.as_str()),
        (tags::SERIES_NUMBER, VR::IS, series_number.as_str()),
        (tags::SERIES_DATE, VR::DA, study_date.as_str()),
        (tags::SERIES_TIME, VR::TM, study_time.as_str()),
        (tags::SERIES_DESCRIPTION, VR::LO, series_description),
        // General Equipment
        (tags::MANUFACTURER, VR::LO, "Pleura"),
        (
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            station.board.as_str(),
        ),
        (tags::STATION_NAME, VR::SH, station.ae_title.as_str()),
        (tags::SOFTWARE_VERSIONS, VR::LO, station.software.as_str()),
        // The instance, its content and its time
        (tags::INSTANCE_NUMBER, VR::IS, number_text.as_str()),
        (tags::CONTENT_DATE, VR::DA, content_date.as_str()),
        (tags::CONTENT_TIME, VR::TM, content_time.as_str()),
    ] {
        put_text(&mut object, tag, vr, text);
    }
    if let Some(institution) = &station.institution {
        put_text(&mut object, tags::INSTITUTION_NAME, VR::LO, institution);
    }
    object
}

/// The Image Pixel module of 8-bit pictures: `samples` 1 (gray,
/// MONOCHROME2) or 3 (RGB, interleaved).
fn put_pixels(object: &mut Object, width: usize, height: usize, samples: u16, pixels: Vec<u8>) {
    let photometric = if samples == 1 { "MONOCHROME2" } else { "RGB" };
    put_text(
        object,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        photometric,
    );
    for (tag, value) in [
        (tags::SAMPLES_PER_PIXEL, samples),
        (tags::ROWS, height as u16),
        (tags::COLUMNS, width as u16),
        (tags::BITS_ALLOCATED, 8),
        (tags::BITS_STORED, 8),
        (tags::HIGH_BIT, 7),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    if samples > 1 {
        object.put(DataElement::new(
            tags::PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    // An odd length is padded by the writer.
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    ));
}

/// The US Multi-frame clip of zone `zone` (index into the protocol), the
/// `number`th clip of the exam.
pub(crate) fn zone_clip(
    exam: &ExamFacts,
    station: &Station,
    zone: usize,
    number: u32,
    clip: &ZoneClip,
) -> Object {
    let zone_name = exam.zone_name(zone);
    let mut object = common(
        exam,
        station,
        US_MULTIFRAME,
        SeriesKind::Clips,
        "US",
        "Lung ultrasound zones",
        number,
    );
    let frames = clip.frames().to_string();
    let frame_time = format!("{:.3}", clip.frame_time.as_secs_f64() * 1000.0);
    let comment = format!("Zone {zone_name} ({} protocol)", exam.protocol.name());
    for (tag, vr, text) in [
        // US Image: an original 2D (B-mode, 0001) chest image.
        (tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\CHEST\\0001"),
        (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"),
        (tags::PATIENT_ORIENTATION, VR::CS, ""),
        (tags::IMAGE_COMMENTS, VR::LT, comment.as_str()),
        (tags::IMAGE_LATERALITY, VR::CS, exam.laterality(zone)),
        // Multi-frame and Cine
        (tags::NUMBER_OF_FRAMES, VR::IS, frames.as_str()),
        (tags::FRAME_TIME, VR::DS, frame_time.as_str()),
        (tags::BODY_PART_EXAMINED, VR::CS, "CHEST"),
    ] {
        put_text(&mut object, tag, vr, text);
    }
    object.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::from(tags::FRAME_TIME),
    ));
    put_pixels(&mut object, clip.width, clip.height, 1, clip.pixels.clone());
    object
}

/// The Secondary Capture of the summary screen, `rgb` of `width` by
/// `height` pixels.
pub(crate) fn summary_capture(
    exam: &ExamFacts,
    station: &Station,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
) -> Object {
    let mut object = common(
        exam,
        station,
        SECONDARY_CAPTURE,
        SeriesKind::Summary,
        "OT",
        "Lung ultrasound summary screen",
        1,
    );
    for (tag, vr, text) in [
        // SC Equipment: captured on a workstation.
        (tags::CONVERSION_TYPE, VR::CS, "WSD"),
        (tags::BODY_PART_EXAMINED, VR::CS, "CHEST"),
        (tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"),
        (tags::PATIENT_ORIENTATION, VR::CS, ""),
        (tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
        (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"),
        (
            tags::IMAGE_COMMENTS,
            VR::LT,
            "The bedside summary screen as the clinician saw it",
        ),
    ] {
        put_text(&mut object, tag, vr, text);
    }
    put_pixels(&mut object, width, height, 3, rgb);
    object
}

/// Wraps a data set in a Part 10 file: its file meta group, in Explicit VR
/// Little Endian, naming this station as the source.
pub(crate) fn into_file(
    object: Object,
    station: &Station,
) -> Result<FileDicomObject<Object>, dicom_object::WithMetaError> {
    object.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION)
            .source_application_entity_title(station.ae_title.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date_time(0), ("19700101".into(), "000000".into()));
        assert_eq!(
            date_time(1_764_700_000),
            ("20251202".into(), "182640".into())
        );
        assert_eq!(date_time(951_782_400), ("20000229".into(), "000000".into()));
    }
}
