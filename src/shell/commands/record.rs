//! `record start FILE` / `record stop`: an asciicast recording of the prompt's screen from now
//! on (what commands print, the lines typed, markers at steps, pauses and faults). The copy is
//! taken where all output goes (`shell::screen`); the file is `shell::cast`'s.

use crate::error::Error;
use crate::shell::cast::Cast;
use crate::shell::output::Output;
use crate::shell::screen;
use crate::shell::spec::{Kind::*, Param, Spec};
use std::path::Path;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "record start",
            params: &[Param { name: "file", kind: Pos, help: "the asciicast file to write, e.g. talk.cast" }],
            summary: "record the screen to an asciicast v2 file (asciinema plays it), markers at steps and faults",
            example: "record start talk.cast",
            run: |_, a| {
                Box::pin(async move {
                    let file = a.req("file")?;
                    let cast = Cast::create(Path::new(file), &format!("dsh: {file}"))?;
                    screen::start(Box::new(cast))?;
                    Ok(Output::new("record start").field("file", file).text(format!("recording to {file}")))
                })
            },
        },
        Spec {
            name: "record stop",
            params: &[],
            summary: "stop recording and close the file",
            example: "record stop",
            run: |_, _| {
                Box::pin(async move {
                    let said = screen::stop().ok_or_else(|| Error::usage("nothing is being recorded"))??;
                    Ok(Output::new("record stop").text(said))
                })
            },
        },
    ]
}
