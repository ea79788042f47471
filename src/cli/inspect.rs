//! `pleura devices`, `pleura board` and `pleura exam`: what this unit
//! has, what it is, and what an exam journal holds.

use super::print::say;
use anyhow::{Context, Result, bail};
use pleura::board::BoardProfile;
use pleura::exam::Journal;
use std::path::Path;

/// Lists the V4L2 capture devices with their formats and sizes.
pub(crate) fn devices() -> Result<()> {
    let devices = pleura::source::list_devices();
    if devices.is_empty() {
        say!("no V4L2 capture device found (/dev/video*)");
    }
    for device in devices {
        say!(
            "{}  '{}'  bus {}  driver {}",
            device.path.display(),
            device.identity.card,
            device.identity.bus,
            device.driver
        );
        for (format, sizes) in device.formats {
            say!("    {format}: {}", sizes.join(", "));
        }
    }
    Ok(())
}

/// Shows the board profile in use.
pub(crate) fn board(board: &BoardProfile) -> Result<()> {
    say!("{board:#?}");
    Ok(())
}

/// Shows the exam recovered from a journal.
pub(crate) fn exam(journal: &Path) -> Result<()> {
    if let Err(e) = std::fs::metadata(journal)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        bail!("{}: no such exam journal", journal.display());
    }
    let exam =
        Journal::read(journal)?.with_context(|| format!("{}: holds no exam", journal.display()))?;
    #[derive(serde::Serialize)]
    struct Shown<'a> {
        #[serde(flatten)]
        exam: &'a pleura::exam::Exam,
        zone_names: &'static [&'static str],
        total: u32,
        max_total: u32,
    }
    let shown = Shown {
        exam: &exam,
        zone_names: exam.protocol.zones(),
        total: exam.total(),
        max_total: exam.max_total(),
    };
    say!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}
