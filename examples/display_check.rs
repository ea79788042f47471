//! Runs inside the QEMU guest of `scripts/vivid-test`, on real kernel
//! drivers, and checks the bedside display's device paths:
//!
//! 1. the framebuffer (`bochs` DRM driver's fbdev emulation, `/dev/fb0`):
//!    the geometry comes from the kernel, and a picture written through
//!    [`Framebuffer`] reads back pixel for pixel in the device's layout;
//! 2. DRM/KMS (`/dev/dri/card0`, the same driver): [`Kms`] finds the
//!    connected display and its mode, and shows pictures;
//! 3. evdev input (`uinput`): a virtual keypad and touchscreen send a
//!    Record button and a tap, which [`spawn_evdev`] turns into inputs.
//!
//! It prints one `CHECK` line per step and exits non-zero on a failure.

use embedded_graphics::prelude::*;
use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, EventType, InputEvent, KeyCode, UinputAbsSetup,
};
use pleura::display::{Canvas, Framebuffer, Kms, PixelFormat, Rotation, Surface};
use pleura::exam::Command;
use pleura::input::{Input, KeyMap, spawn_evdev};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

fn main() {
    let mut failed = false;
    for (name, result) in [
        ("framebuffer /dev/fb0", framebuffer()),
        ("kms /dev/dri/card0", kms()),
        ("evdev buttons and touch", evdev_input()),
    ] {
        match result {
            Ok(detail) => println!("CHECK ok   {name}: {detail}"),
            Err(why) => {
                println!("CHECK FAIL {name}: {why}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}

/// A picture where neighbouring pixels differ.
fn pattern(size: Size) -> Canvas {
    let mut canvas = Canvas::new(size.width, size.height);
    for (i, pixel) in canvas.0.pixels_mut().enumerate() {
        let (x, y) = (i as u32 % size.width, i as u32 / size.width);
        pixel.0 = [(x * 7) as u8, (y * 3) as u8, ((x + y) * 5) as u8];
    }
    canvas
}

fn framebuffer() -> Result<String, String> {
    let mut fb =
        Framebuffer::open(Path::new("/dev/fb0"), Rotation::R0).map_err(|e| e.to_string())?;
    let geometry = fb.geometry();
    let picture = pattern(fb.logical_size());
    fb.present(&picture).map_err(|e| e.to_string())?;
    let mut bytes = vec![0; geometry.line_length * geometry.height as usize];
    std::fs::File::open("/dev/fb0")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading back: {e}"))?;
    let bpp = geometry.format.bytes();
    let mut checked = 0;
    // Rows below the top quarter: the console cursor lives at the top left.
    for y in (geometry.height / 4..geometry.height).step_by(37) {
        for x in (0..geometry.width).step_by(53) {
            let [r, g, b] = picture.0.get_pixel(x, y).0;
            let want: Vec<u8> = match geometry.format {
                PixelFormat::Xrgb8888 => vec![b, g, r],
                PixelFormat::Rgb565 => {
                    let v = ((r as u16 >> 3) << 11) | ((g as u16 >> 2) << 5) | (b as u16 >> 3);
                    v.to_le_bytes().to_vec()
                }
            };
            let at = y as usize * geometry.line_length + x as usize * bpp;
            if bytes[at..at + want.len()] != want[..] {
                return Err(format!(
                    "pixel ({x},{y}) reads {:?}, wrote {want:?}",
                    &bytes[at..at + bpp]
                ));
            }
            checked += 1;
        }
    }
    Ok(format!(
        "{}x{} {:?}, line length {}, {checked} pixels read back",
        geometry.width, geometry.height, geometry.format, geometry.line_length
    ))
}

fn kms() -> Result<String, String> {
    let mut kms =
        Kms::open(Path::new("/dev/dri/card0"), Rotation::R0).map_err(|e| e.to_string())?;
    let size = Surface::size(&kms);
    let picture = pattern(size);
    for _ in 0..3 {
        kms.present(&picture).map_err(|e| e.to_string())?;
    }
    Ok(format!("{}x{}, 3 pictures shown", size.width, size.height))
}

fn evdev_input() -> Result<String, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut keys = AttributeSet::<KeyCode>::new();
    keys.insert(KeyCode::KEY_RECORD);
    keys.insert(KeyCode::BTN_TOUCH);
    let axis = |code| UinputAbsSetup::new(code, AbsInfo::new(0, 0, 4000, 0, 0, 1));
    let mut device: VirtualDevice = VirtualDevice::builder()
        .map_err(io)?
        .name("pleura keypad and touch")
        .with_keys(&keys)
        .map_err(io)?
        .with_absolute_axis(&axis(AbsoluteAxisCode::ABS_X))
        .map_err(io)?
        .with_absolute_axis(&axis(AbsoluteAxisCode::ABS_Y))
        .map_err(io)?
        .build()
        .map_err(io)?;
    let node = device
        .enumerate_dev_nodes_blocking()
        .map_err(io)?
        .filter_map(Result::ok)
        .find(|p| p.to_string_lossy().contains("event"))
        .ok_or("no /dev/input/event node for the virtual device")?;
    let (sender, inputs) = crossbeam_channel::unbounded();
    spawn_evdev(&node, KeyMap::default(), sender).map_err(io)?;
    std::thread::sleep(Duration::from_millis(200));
    let event = |kind: EventType, code: u16, value| InputEvent::new(kind.0, code, value);
    let key = EventType::KEY;
    let abs = EventType::ABSOLUTE;
    device
        .emit(&[event(key, KeyCode::KEY_RECORD.0, 1)])
        .and_then(|()| device.emit(&[event(key, KeyCode::KEY_RECORD.0, 0)]))
        .and_then(|()| {
            device.emit(&[
                event(abs, AbsoluteAxisCode::ABS_X.0, 1000),
                event(abs, AbsoluteAxisCode::ABS_Y.0, 3000),
                event(key, KeyCode::BTN_TOUCH.0, 1),
            ])
        })
        .and_then(|()| device.emit(&[event(key, KeyCode::BTN_TOUCH.0, 0)]))
        .map_err(io)?;
    let first = inputs
        .recv_timeout(Duration::from_secs(3))
        .map_err(|_| "no input from the button")?;
    if first != Input::Command(Command::Record) {
        return Err(format!("the Record button gave {first:?}"));
    }
    let second = inputs
        .recv_timeout(Duration::from_secs(3))
        .map_err(|_| "no input from the tap")?;
    match second {
        Input::Tap { x, y } if (x - 0.25).abs() < 1e-3 && (y - 0.75).abs() < 1e-3 => Ok(format!(
            "{}: Record button, then a tap at ({x:.2}, {y:.2})",
            node.display()
        )),
        other => Err(format!("the tap gave {other:?}")),
    }
}
