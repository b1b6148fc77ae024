//! Slurm's time limits (`--time`) and the lead of the pre-timeout signal.

/// A `--time` value that Slurm would refuse: the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "time limit {0:?}: write minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (as sbatch \
     --time takes it), for example 2:00:00"
)]
pub struct BadTime(pub String);

/// The seconds of a Slurm time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S`.
/// `INFINITE` and `UNLIMITED` are `None`.
pub fn parse_seconds(text: &str) -> Result<Option<u64>, BadTime> {
    let bad = || BadTime(text.to_owned());
    let t = text.trim();
    if t.eq_ignore_ascii_case("infinite") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let number = |s: &str| -> Result<u64, BadTime> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, t),
    };
    let parts = clock
        .split(':')
        .map(number)
        .collect::<Result<Vec<u64>, _>>()?;
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) | (Some(_), [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(_), [h]) => h * 3600,
        (Some(_), [h, m]) => h * 3600 + m * 60,
        _ => return Err(bad()),
    };
    let total = days.unwrap_or(0) * 86_400 + seconds;
    if total == 0 {
        return Err(bad());
    }
    Ok(Some(total))
}

/// The default lead of the pre-timeout signal: a tenth of the limit, between one and ten
/// minutes, and never more than half the limit; five minutes without a limit. Slurm sends
/// the signal up to a minute early (its event resolution), so leads under a minute are not
/// chosen by default.
pub fn default_lead_s(limit_s: Option<u64>) -> u64 {
    match limit_s {
        None => 300,
        Some(limit) => (limit / 10).clamp(60, 600).min(limit / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_sbatch_time_parses() {
        let cases = [
            ("30", 1800),
            ("5:30", 330),
            ("2:00:00", 7200),
            ("1-0", 86_400),
            ("1-2", 93_600),
            ("1-2:03", 93_780),
            ("1-02:03:04", 93_784),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse_seconds(text), Ok(Some(seconds)), "{text}");
        }
        assert_eq!(parse_seconds("INFINITE"), Ok(None));
        assert_eq!(parse_seconds("unlimited"), Ok(None));
        for bad in ["", "0", "1:2:3:4", "a", "-5", "1-", "1-2:3:4:5", "1h"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_lead_is_a_tenth_within_one_to_ten_minutes_and_under_half() {
        assert_eq!(default_lead_s(None), 300);
        assert_eq!(default_lead_s(Some(7200)), 600);
        assert_eq!(default_lead_s(Some(86_400)), 600);
        assert_eq!(default_lead_s(Some(1200)), 120);
        assert_eq!(default_lead_s(Some(300)), 60);
        assert_eq!(default_lead_s(Some(60)), 30);
    }
}
