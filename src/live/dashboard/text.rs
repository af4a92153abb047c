//! Words and numbers as the dashboard prints them, cut to a width. Pure functions of their
//! arguments: no clock, no terminal.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `s` in at most `width` columns; a cut shows as `…`, so a reader knows something is missing.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` over at most `lines` lines of `width` columns, broken between words; what still does not
/// fit is cut with `…` on the last line.
pub fn wrap(s: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut words = s.split(' ');
    while let Some(word) = words.next() {
        let full = out.len() == lines.max(1);
        match out.last_mut() {
            Some(line) if line.width() + 1 + word.width() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            Some(line) if full => {
                let rest: Vec<&str> = std::iter::once(word).chain(words).collect();
                *line = fit(&format!("{line} {}", rest.join(" ")), width);
                break;
            }
            _ => out.push(fit(word, width)),
        }
    }
    out
}

/// The first of `choices` that fits `width`, else the last one cut to it.
pub fn first_fit(choices: &[String], width: usize) -> String {
    match choices.iter().find(|c| c.width() <= width) {
        Some(c) => c.clone(),
        None => fit(choices.last().map_or("", |s| s.as_str()), width),
    }
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1,234/s`, `12.5/s` (a rate under 100 keeps a decimal).
pub fn rate(per_sec: f64) -> String {
    if per_sec < 100.0 && per_sec.fract() != 0.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{}/s", count(per_sec.round() as u64))
    }
}

/// `0.42 ms`, `12.3 ms`, `1.25 s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// `45s`, `3m07s`, `1h02m`.
pub fn elapsed(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// `14:03:07`, in the machine's time zone, as `events` prints times.
pub fn clock(at_ms: u64) -> String {
    let secs = (at_ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into the struct we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// A bar of `width` cells, `fraction` of it filled: `██████░░░░`.
pub fn bar(fraction: f64, width: usize) -> String {
    let full = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// Squeezes `values` (oldest first) into at most `width` columns, each the largest of the
/// seconds it covers, so a peak is never averaged away.
pub fn squeeze(values: &[u64], width: usize) -> Vec<u64> {
    if values.len() <= width || width == 0 {
        return values.to_vec();
    }
    (0..width)
        .map(|i| {
            let (from, to) =
                (i * values.len() / width, ((i + 1) * values.len() / width).max(i * values.len() / width + 1));
            values[from..to].iter().copied().max().unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_show_and_numbers_read() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("★ leader", 3), "★ …");
        assert_eq!(first_fit(&["long form".into(), "short".into()], 6), "short");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(rate(12.34), "12.3/s");
        assert_eq!(rate(2345.4), "2,345/s");
        assert_eq!(ms(0.421), "0.42 ms");
        assert_eq!(ms(1250.0), "1.25 s");
        assert_eq!(elapsed(187_000), "3m07s");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(squeeze(&[1, 5, 2, 2, 9, 0], 3), vec![5, 2, 9]);
    }

    #[test]
    fn wrapping_breaks_between_words_and_cuts_what_is_left() {
        assert_eq!(wrap("✗ k3 is NOT linearizable", 12, 3), ["✗ k3 is NOT", "linearizable"]);
        assert_eq!(wrap("one two three four", 9, 1), ["one two …"]);
        assert_eq!(wrap("averyveryverylongword", 6, 2), ["avery…"]);
        assert_eq!(wrap("a b", 0, 0), [""]);
    }
}
