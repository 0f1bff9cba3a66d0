//! Running drctl on a pseudo-terminal, and reading the screen as a person sees it (escape codes
//! applied by a terminal emulator, `vt100`), not the raw bytes.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// `cmd` on a new pseudo-terminal (stdin, stdout and stderr): the child, what the terminal
/// received so far, and the keyboard.
pub fn spawn(mut cmd: Command) -> (Child, Arc<Mutex<Vec<u8>>>, std::fs::File) {
    // A terminal of a size people use: without one, tables would lay out for zero columns.
    let size = nix::pty::Winsize {
        ws_row: 50,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let child = cmd
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut master = std::fs::File::from(pty.master);
    let keyboard = master.try_clone().unwrap();
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    (child, seen, keyboard)
}

/// The screen's lines after `bytes`, on a terminal `cols` wide (trailing blanks trimmed).
pub fn screen(bytes: &[u8], cols: u16) -> Vec<String> {
    let mut p = vt100::Parser::new(500, cols, 0);
    // A pty turns "\n" into "\r\n"; bytes captured elsewhere may not have.
    p.process(
        &bytes
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect::<Vec<u8>>(),
    );
    p.screen()
        .rows(0, cols)
        .map(|r| r.trim_end().to_string())
        .collect()
}
