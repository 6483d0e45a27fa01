//! `--junit FILE`: the runs of one `faultline test` as a JUnit XML test
//! suite, the format CI systems show natively. A valid run passes, an
//! invalid one fails, an unknown one is an error.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::test::RunOutcome;

/// Writes `outcomes` to `path` as one `<testsuite>`.
pub fn write(path: &Path, outcomes: &[RunOutcome]) -> Result<()> {
    std::fs::write(path, render(outcomes))
        .with_context(|| format!("cannot write the JUnit report {}", path.display()))
}

fn render(outcomes: &[RunOutcome]) -> String {
    let failures = outcomes.iter().filter(|o| o.exit_code == 1).count();
    let errors = outcomes.iter().filter(|o| o.exit_code > 1).count();
    let time: f64 = outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"faultline\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            xml,
            "  <testcase classname=\"faultline.{}\" name=\"seed {}\" time=\"{:.3}\">",
            escape(&o.name),
            o.seed,
            o.duration.as_secs_f64()
        );
        let detail = format!("{}\nstore: {}", o.summary, o.dir.display());
        match o.exit_code {
            0 => {}
            1 => {
                let _ = write!(
                    xml,
                    "\n    <failure message=\"not linearizable\">{}</failure>\n  ",
                    escape(&detail)
                );
            }
            _ => {
                let _ = write!(
                    xml,
                    "\n    <error message=\"unknown or harness error\">{}</error>\n  ",
                    escape(&detail)
                );
            }
        }
        xml.push_str("</testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}

/// Escapes text for XML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn outcome(exit_code: u8, summary: &str) -> RunOutcome {
        RunOutcome {
            dir: PathBuf::from("store/t/1"),
            name: "kv-append-<kill>".into(),
            seed: 7,
            exit_code,
            summary: summary.into(),
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn valid_passes_invalid_fails_unknown_errors() {
        let xml = render(&[
            outcome(0, "VALID"),
            outcome(1, "INVALID: a & b"),
            outcome(2, "UNKNOWN"),
        ]);
        assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""));
        assert!(xml.contains("<failure message=\"not linearizable\">INVALID: a &amp; b"));
        assert!(xml.contains("<error message=\"unknown or harness error\">UNKNOWN"));
        assert!(xml.contains("classname=\"faultline.kv-append-&lt;kill&gt;\""));
    }
}
