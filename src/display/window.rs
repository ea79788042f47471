//! The bedside screen in a desktop window (`--display window`, cargo
//! feature `window`), through `embedded-graphics-simulator` and SDL.
//!
//! SDL windows belong to the thread that made them, while the display runs
//! wherever the pipeline puts it. So the window lives on a thread of its
//! own: [`WindowSurface::present`] copies the picture into one of two
//! buffers (both made when the window opens) that travel back and forth
//! between the threads (no allocation
//! per frame; when the window is still busy with the last picture, the new
//! one is skipped). The window thread turns keys and clicks into
//! [`Input`]s, as a keyboard and a touchscreen would.

use super::DisplayError;
use super::annotate::Canvas;
use super::surface::Surface;
use crate::input::{Input, KeyMap};
use crossbeam_channel::{Receiver, Sender, bounded};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics_simulator::sdl2::Keycode;
use embedded_graphics_simulator::{
    OutputSettingsBuilder, SimulatorDisplay, SimulatorEvent, Window,
};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

/// A desktop window showing the bedside screen.
pub struct WindowSurface {
    size: Size,
    to_window: Sender<Vec<u8>>,
    from_window: Receiver<Vec<u8>>,
    /// Buffers not at the window: both at first, then the ones it gave back.
    spare: Vec<Vec<u8>>,
}

impl WindowSurface {
    /// Opens a window of `size` (it fails when no desktop is reachable).
    pub fn open(size: Size, inputs: Sender<Input>) -> Result<Self, DisplayError> {
        let (to_window, frames) = bounded::<Vec<u8>>(1);
        let (returns, from_window) = bounded::<Vec<u8>>(2);
        let (ready, started) = bounded::<Result<(), String>>(1);
        std::thread::Builder::new()
            .name("window".into())
            .spawn(move || window_thread(size, frames, returns, ready, inputs))
            .map_err(|e| unavailable(e.to_string()))?;
        match started.recv() {
            Ok(Ok(())) => Ok(Self {
                size,
                to_window,
                from_window,
                spare: vec![vec![0; (size.width * size.height * 3) as usize]; 2],
            }),
            Ok(Err(reason)) => Err(unavailable(reason)),
            Err(_) => Err(unavailable("the window thread ended".into())),
        }
    }
}

fn unavailable(reason: String) -> DisplayError {
    DisplayError::Device {
        path: PathBuf::from("window"),
        reason,
    }
}

impl Surface for WindowSurface {
    fn size(&self) -> Size {
        self.size
    }

    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        let Some(mut buffer) = self
            .spare
            .pop()
            .or_else(|| self.from_window.try_recv().ok())
        else {
            return Ok(()); // the window is still showing the last picture
        };
        buffer.copy_from_slice(canvas.0.as_raw());
        self.to_window
            .send(buffer)
            .map_err(|_| unavailable("the window was closed".into()))
    }
}

fn window_thread(
    size: Size,
    frames: Receiver<Vec<u8>>,
    returns: Sender<Vec<u8>>,
    ready: Sender<Result<(), String>>,
    inputs: Sender<Input>,
) {
    let mut display = SimulatorDisplay::<Rgb888>::new(size);
    let settings = OutputSettingsBuilder::new().scale(1).build();
    let mut window = Window::new("Pleura", &settings);
    window.set_max_fps(1000); // the pipeline sets the pace
    // SDL panics when it cannot start (no desktop): report that instead.
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| window.update(&display))).is_ok();
    let _ = ready.send(if opened {
        Ok(())
    } else {
        Err("no desktop to open a window on (SDL could not start)".into())
    });
    if !opened {
        return;
    }
    let keys = KeyMap::default();
    let (width, height) = (size.width as i32, size.height as i32);
    while let Ok(buffer) = frames.recv() {
        let pixels = buffer
            .chunks_exact(3)
            .map(|p| Rgb888::new(p[0], p[1], p[2]));
        let _ = display.fill_contiguous(&Rectangle::new(Point::zero(), size), pixels);
        window.update(&display);
        for event in window.events() {
            let input = match event {
                SimulatorEvent::Quit => return,
                SimulatorEvent::KeyDown {
                    keycode,
                    repeat: false,
                    ..
                } => key_input(&keys, keycode),
                SimulatorEvent::MouseButtonUp { point, .. } => Some(Input::Tap {
                    x: point.x as f32 / width as f32,
                    y: point.y as f32 / height as f32,
                }),
                _ => None,
            };
            if let Some(input) = input {
                let _ = inputs.send(input);
            }
        }
        if returns.send(buffer).is_err() {
            return;
        }
    }
}

/// A key of the window's keyboard as an input: letters and space through
/// the key map, Enter records, arrows step through the zones.
fn key_input(keys: &KeyMap, keycode: Keycode) -> Option<Input> {
    use crate::exam::Command;
    let command = match keycode {
        Keycode::RETURN => Some(Command::Record),
        Keycode::RIGHT | Keycode::DOWN => Some(Command::NextZone),
        Keycode::LEFT | Keycode::UP => Some(Command::PreviousZone),
        other => u8::try_from(other.into_i32())
            .ok()
            .and_then(|c| keys.command(c)),
    };
    command.map(Input::Command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::Command;

    #[test]
    fn window_keys_map_like_a_keyboard() {
        let keys = KeyMap::default();
        assert_eq!(
            key_input(&keys, Keycode::RETURN),
            Some(Input::Command(Command::Record))
        );
        assert_eq!(
            key_input(&keys, Keycode::S),
            Some(Input::Command(Command::Start))
        );
        assert_eq!(
            key_input(&keys, Keycode::RIGHT),
            Some(Input::Command(Command::NextZone))
        );
        assert_eq!(key_input(&keys, Keycode::F1), None);
    }
}
