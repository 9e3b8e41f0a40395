//! Human-readable sizes, identical to tracemalloc's `_format_size`.

/// Formats a size like tracemalloc's `_format_size(size, sign)`:
/// `"10 B"`, `"1.5 KiB"`, `"+12.3 MiB"`. Three significant digits below 100
/// of a unit, whole numbers up to 10 * 1024 of a unit, binary units up to
/// TiB; `sign` adds `+` to non-negative values.
pub fn format_size(size: f64, sign: bool) -> String {
    let mut size = size;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if size.abs() < 100.0 && unit != "B" {
            return if sign {
                format!("{size:+.1} {unit}")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        if size.abs() < 10.0 * 1024.0 || unit == "TiB" {
            return if sign {
                format!("{size:+.0} {unit}")
            } else {
                format!("{size:.0} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the TiB branch always returns")
}

/// [`format_size`] of a byte count.
pub fn format_bytes(size: u64) -> String {
    format_size(size as f64, false)
}

/// [`format_size`] of a signed difference, always with a sign.
pub fn format_bytes_diff(diff: i64) -> String {
    format_size(diff as f64, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values and CPython 3.11's `_format_size` output for each, unsigned and
    /// signed, including the rounding corner cases (half-even ties, the 100
    /// and 10 * 1024 boundaries, negative zero).
    #[test]
    fn matches_cpython_format_size() {
        let cases: &[(f64, &str, &str)] = &[
            (0.0, "0 B", "+0 B"),
            (0.5, "0 B", "+0 B"),
            (1.5, "2 B", "+2 B"),
            (2.5, "2 B", "+2 B"),
            (10.0, "10 B", "+10 B"),
            (-5.0, "-5 B", "-5 B"),
            (-0.4, "-0 B", "-0 B"),
            (1023.5, "1024 B", "+1024 B"),
            (10239.5, "10240 B", "+10240 B"),
            (10240.0, "10.0 KiB", "+10.0 KiB"),
            (1536.0 * 10.0, "15.0 KiB", "+15.0 KiB"),
            (102_338.56, "99.9 KiB", "+99.9 KiB"),
            (102_348.8, "100.0 KiB", "+100.0 KiB"),
            (102_400.0, "100 KiB", "+100 KiB"),
            (-102_400.0, "-100 KiB", "-100 KiB"),
            (5_000_000.0, "4883 KiB", "+4883 KiB"),
            (12.3 * 1024.0 * 1024.0, "12.3 MiB", "+12.3 MiB"),
            (1_073_741_824.0, "1024 MiB", "+1024 MiB"),
            (1e15, "909 TiB", "+909 TiB"),
            (1e18, "909495 TiB", "+909495 TiB"),
        ];
        for &(size, unsigned, signed) in cases {
            assert_eq!(format_size(size, false), unsigned, "{size}");
            assert_eq!(format_size(size, true), signed, "{size} signed");
        }
        assert_eq!(format_bytes(66), "66 B");
        assert_eq!(format_bytes_diff(5000), "+5000 B");
    }
}
