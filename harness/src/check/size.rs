//! Parsing byte sizes such as `2GiB` or `500MB` from the command line.

/// Unit names (lowercase) and their sizes in bytes; bare letters are binary.
const UNITS: &[(&str, u64)] = &[
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
    ("b", 1),
];

/// Parses a byte size: a number (fractions allowed) and an optional unit,
/// binary (`KiB`, `MiB`, `GiB`, `TiB`, or the bare `K`, `M`, `G`, `T`) or
/// decimal (`KB`, `MB`, `GB`, `TB`), case-insensitive. No unit means bytes.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (expected e.g. 512MiB or 2GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, m)| m)
            .ok_or_else(|| {
                format!("unknown size unit `{unit}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")
            })?
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn binary_decimal_and_bare_units() {
        assert_eq!(parse_byte_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_byte_size("2 gib"), Ok(2 << 30));
        assert_eq!(parse_byte_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_byte_size("1.5K"), Ok(1536));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert!(parse_byte_size("lots").unwrap_err().contains("not a size"));
        assert!(
            parse_byte_size("2 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_byte_size("").is_err());
        assert!(
            parse_byte_size("99999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
