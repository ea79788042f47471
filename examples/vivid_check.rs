//! Runs inside the QEMU guest of `scripts/vivid-test`, against the kernel's
//! `vivid` virtual capture driver, and checks Pleura's V4L2 source the way
//! a USB grabber would use it:
//!
//! 1. the device is listed with its formats;
//! 2. YUYV and GREY stream at two resolutions, with the size asked for and
//!    vivid's 75 % colour bars in the picture (eight bars whose luma falls
//!    from white to black, left to right);
//! 3. vivid's "Disconnect" control (a simulated unplug) turns into a
//!    no-signal report, not a crash;
//! 4. after the driver is reloaded (the grabber plugged back in), the same
//!    source delivers frames again;
//! 5. 100 times over, while it streams, the grabber is pulled out (vivid's
//!    device unbound from its driver, as a USB unplug unbinds a grabber)
//!    and plugged back in after a random while: each time the source
//!    reports the loss (the screen's NO SIGNAL) and delivers frames again
//!    (NO SIGNAL cleared) within 2 s of the replug, with as many file
//!    descriptors open as after the first cycle and its memory flat.
//!
//! It prints one `CHECK` line per step and exits non-zero on a failure.
//! Environment: `VIVID_KO` (the module file) and `VIVID_ARGS` (its
//! parameters), for the reload.

use pleura::source::pixels::PixelFormat;
use pleura::source::{FrameSource, SourceError, V4lOptions, V4lSource, list_devices};
use rand::{RngExt, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "shared/process.rs"]
mod process;

/// vivid's "Disconnect" button control (`VIVID_CID_DISCONNECT`).
const VIVID_CID_DISCONNECT: u32 = 0x00f0_f041;
/// `VIDIOC_S_CTRL`: `_IOWR('V', 28, struct v4l2_control)`.
const VIDIOC_S_CTRL: libc::c_ulong = 0xC008_561C;
/// The platform device vivid makes, and its driver's folder in sysfs.
const VIVID_DEVICE: &str = "vivid.0";
const VIVID_DRIVER: &str = "/sys/bus/platform/drivers/vivid";
/// How many times the grabber is pulled out and plugged back in.
const UNPLUGS: usize = 100;
/// The longest a replugged grabber may take to deliver frames again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(2);
/// The most resident memory may grow from the first ten cycles to the last.
const RSS_GROWTH_LIMIT_KIB: i64 = 1024;

fn main() {
    let failures = checks();
    std::process::exit(i32::from(!failures.is_empty()));
}

fn checks() -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |name: &str, result: Result<String, String>| match result {
        Ok(detail) => println!("CHECK ok   {name}: {detail}"),
        Err(why) => {
            println!("CHECK FAIL {name}: {why}");
            failures.push(format!("{name}: {why}"));
        }
    };
    let device = list_devices()
        .into_iter()
        .find(|d| d.identity.card.contains("vivid"));
    let Some(device) = device else {
        check("listing", Err("no vivid capture device listed".into()));
        return failures;
    };
    let formats: Vec<&str> = device.formats.iter().map(|(f, _)| f.as_str()).collect();
    check(
        "listing",
        Ok(format!(
            "{} '{}' bus {}, {} formats",
            device.path.display(),
            device.identity.card,
            device.identity.bus,
            formats.len()
        )),
    );
    let path = device.path.clone();
    for format in [PixelFormat::Yuyv, PixelFormat::Grey] {
        for size in [(640, 360), (1280, 720)] {
            check(
                &format!("stream {format} {}x{}", size.0, size.1),
                stream(&path, format, size),
            );
        }
    }
    check("disconnect and recovery", unplug_and_back(&path));
    check(
        &format!("{UNPLUGS} unplugs while streaming"),
        unplug_cycles(&path),
    );
    failures
}

fn open(path: &Path, format: PixelFormat, size: (u32, u32)) -> Result<V4lSource, String> {
    let options = V4lOptions {
        formats: vec![format],
        size: Some(size),
        fps: None,
    };
    V4lSource::open(path, options).map_err(|e| e.to_string())
}

/// Streams a few frames and checks their size and the colour bars.
fn stream(path: &Path, format: PixelFormat, size: (u32, u32)) -> Result<String, String> {
    let mut source = open(path, format, size)?;
    let mut bars = Vec::new();
    for _ in 0..3 {
        let frame = source
            .next_frame()
            .map_err(|e| e.to_string())?
            .ok_or("the stream ended")?;
        if (frame.width, frame.height) != (size.0 as usize, size.1 as usize) {
            return Err(format!("frame of {}x{}", frame.width, frame.height));
        }
        // Sample the middle of each of the 8 bars, low in the picture (the
        // text overlay is at the top).
        let row = frame.height * 2 / 3;
        bars = (0..8)
            .map(|bar| frame.pixels[row * frame.width + (2 * bar + 1) * frame.width / 16])
            .collect();
        let falling = bars.windows(2).all(|pair| pair[0] > pair[1]);
        if !falling || bars[0] < 150 || bars[7] > 40 {
            return Err(format!("not vivid's colour bars: luma {bars:?}"));
        }
    }
    Ok(format!("3 frames, bar luma {bars:?}"))
}

/// Presses vivid's Disconnect button on a separate handle.
fn press_disconnect(path: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[repr(C)]
    struct V4l2Control {
        id: u32,
        value: i32,
    }
    let mut control = V4l2Control {
        id: VIVID_CID_DISCONNECT,
        value: 1,
    };
    // SAFETY: VIDIOC_S_CTRL reads and writes a struct v4l2_control, which
    // outlives the call.
    let status = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            VIDIOC_S_CTRL as _,
            &mut control as *mut V4l2Control,
        )
    };
    if status != 0 {
        return Err(format!(
            "Disconnect control: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn unplug_and_back(path: &Path) -> Result<String, String> {
    let mut source = open(path, PixelFormat::Yuyv, (640, 360))?;
    source.next_frame().map_err(|e| e.to_string())?;
    press_disconnect(path)?;
    let mut lost = None;
    for _ in 0..20 {
        match source.next_frame() {
            Ok(_) => continue, // frames already queued before the unplug
            Err(e) if e.is_signal_loss() => {
                lost = Some(e);
                break;
            }
            Err(e) => return Err(format!("after Disconnect: {e} (not a signal loss)")),
        }
    }
    let lost = lost.ok_or("frames kept coming after Disconnect")?;
    // Plug it back in: reload the driver, as replugging a USB grabber does.
    let module = PathBuf::from(std::env::var("VIVID_KO").map_err(|_| "VIVID_KO unset")?);
    let arguments = std::env::var("VIVID_ARGS").unwrap_or_default();
    run("rmmod", &["vivid"])?;
    let mut insmod = vec![module.to_string_lossy().into_owned()];
    insmod.extend(arguments.split_whitespace().map(String::from));
    run(
        "insmod",
        &insmod.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let started = Instant::now();
    let mut reports = 0;
    while started.elapsed() < Duration::from_secs(30) {
        match source.next_frame() {
            Ok(Some(frame)) => {
                return Ok(format!(
                    "lost with '{lost}', back after {:.1} s and {reports} no-signal reports ({}x{})",
                    started.elapsed().as_secs_f32(),
                    frame.width,
                    frame.height
                ));
            }
            Ok(None) => return Err("the stream ended".into()),
            Err(SourceError::NoSignal { .. }) => reports += 1,
            Err(e) => return Err(format!("while reconnecting: {e}")),
        }
    }
    Err(format!(
        "no frame 30 s after the reload ({reports} no-signal reports)"
    ))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{program} {} failed: {status}", args.join(" ")))
}

/// Pulls the grabber out while it streams and plugs it back in, [`UNPLUGS`]
/// times, with random gaps; see the module's point 5.
fn unplug_cycles(path: &Path) -> Result<String, String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut source = open(path, PixelFormat::Yuyv, (640, 360))?;
    let (mut recoveries, mut fds, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let mut slow = Vec::new();
    for cycle in 0..UNPLUGS {
        let fail = |what: String| format!("cycle {cycle} (seed {seed}): {what}");
        let streaming = Duration::from_millis(rng.random_range(100..1000));
        let started = Instant::now();
        while started.elapsed() < streaming {
            match source.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => return Err(fail("the stream ended".into())),
                Err(e) => return Err(fail(format!("while streaming: {e}"))),
            }
        }
        sysfs(&format!("{VIVID_DRIVER}/unbind"), VIVID_DEVICE).map_err(fail)?;
        let mut lost = false;
        for _ in 0..20 {
            match source.next_frame() {
                Ok(Some(_)) => continue, // frames queued before the unplug
                Ok(None) => return Err(fail("the stream ended".into())),
                Err(e) if e.is_signal_loss() => {
                    lost = true;
                    break;
                }
                Err(e) => return Err(fail(format!("after the unplug: {e} (not a signal loss)"))),
            }
        }
        if !lost {
            return Err(fail("frames kept coming after the unplug".into()));
        }
        // Plugged back in after a random while, by another thread, while
        // this one keeps asking for frames as the pipeline does.
        let gone = Duration::from_millis(rng.random_range(50..1500));
        let replug = std::thread::spawn(move || {
            std::thread::sleep(gone);
            sysfs(&format!("{VIVID_DRIVER}/bind"), VIVID_DEVICE).map(|()| Instant::now())
        });
        let deadline = Instant::now() + gone + Duration::from_secs(15);
        let back = loop {
            match source.next_frame() {
                Ok(Some(_)) => break Instant::now(),
                Ok(None) => return Err(fail("the stream ended".into())),
                Err(e) if e.is_signal_loss() => {}
                Err(e) => return Err(fail(format!("while unplugged: {e}"))),
            }
            if Instant::now() > deadline {
                return Err(fail("no frame 15 s after the replug".into()));
            }
        };
        let plugged = replug
            .join()
            .map_err(|_| fail("the replug thread panicked".into()))?
            .map_err(fail)?;
        let recovery = back.saturating_duration_since(plugged);
        if recovery > RECOVERY_LIMIT {
            slow.push(format!("cycle {cycle}: {:.2} s", recovery.as_secs_f64()));
        }
        recoveries.push(recovery.as_secs_f64());
        fds.push(process::open_fds("self").unwrap_or(0));
        rss.push(process::status("self", ["VmRSS:"]).map_or(0, |[kib]| kib as i64));
    }
    let mut sorted = recoveries.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let longest = sorted[sorted.len() - 1];
    let mean = |v: &[i64]| v.iter().sum::<i64>() / v.len().max(1) as i64;
    let growth = mean(&rss[rss.len() - 10..]) - mean(&rss[..10]);
    let leaked: Vec<String> = fds
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n != fds[0])
        .map(|(cycle, n)| format!("cycle {cycle}: {n}"))
        .collect();
    let summary = format!(
        "{}/{UNPLUGS} back within {:.0} s (median {median:.2} s, longest {longest:.2} s), \
         open fds {} after the first cycle and {} after the last, RSS {} KiB then {} KiB \
         (growth {growth} KiB from the first 10 cycles to the last 10), seed {seed}",
        UNPLUGS - slow.len(),
        RECOVERY_LIMIT.as_secs_f64(),
        fds[0],
        fds[fds.len() - 1],
        rss[0],
        rss[rss.len() - 1]
    );
    if !slow.is_empty() {
        return Err(format!(
            "{summary}; slower than the limit: {}",
            slow.join(", ")
        ));
    }
    if !leaked.is_empty() {
        return Err(format!(
            "{summary}; file descriptors leaked: {}",
            leaked.join(", ")
        ));
    }
    if growth > RSS_GROWTH_LIMIT_KIB {
        return Err(format!("{summary}; memory grew"));
    }
    Ok(summary)
}

/// Writes `value` to the sysfs file `path`.
fn sysfs(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {value} to {path}: {e}"))
}
