//! Reading what a pseudo-terminal showed: rexpect hands over each byte as a char, and the
//! editor and the views write escape sequences between the words a person reads.

/// The UTF-8 text the terminal got.
pub fn utf8(s: &str) -> String {
    String::from_utf8_lossy(&s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>()).into_owned()
}

/// `s` without CSI escape sequences (colours, cursor moves); other escapes lose their ESC.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}
