//! The HTML report: one self-contained file to attach to a CI job or open from disk.
//!
//! Nothing is fetched: styles, script and the validators' images (as data URIs) are inside.
//! Without JavaScript everything is shown; with it, filters by validator and severity hide
//! findings (kept in the address, `#hide=validator:ruff,severity:info`, so that a filtered view
//! can be shared), and each visual difference gets a slider between the expected and the
//! actual image. Unified diffs in messages (behavioral snapshots) are coloured line by line.

use super::{Report, ReportFinding, Status};
use base64::Engine as _;
use protocol::{Artifact, Severity};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Artifacts larger than this are linked by path, not embedded.
const MAX_EMBEDDED: u64 = 8 * 1024 * 1024;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#1f2328;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.2em 0 .4em}
.verdict{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-weight:600}
.passed{background:#1a7f37}.failed{background:#cf222e}.incomplete,.config_error{background:#9a6700}
table{border-collapse:collapse}td,th{border-bottom:1px solid #d0d7de;padding:.25em .8em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.status-passed{color:#1a7f37}.status-failed{color:#cf222e}.status-skipped{color:#656d76}
.status-other{color:#9a6700;font-weight:600}
#filters{margin:.8em 0;padding:.5em .8em;background:#f6f8fa;border-radius:6px}
#filters label{margin-right:1em;white-space:nowrap}
details.file{margin:.4em 0;border:1px solid #d0d7de;border-radius:6px}
details.file>summary{padding:.4em .8em;background:#f6f8fa;cursor:pointer;font-family:ui-monospace,monospace}
.finding{padding:.4em .8em;border-top:1px solid #eaeef2}
.sev{display:inline-block;min-width:4.5em;font-weight:600}
.sev-error{color:#cf222e}.sev-warning{color:#9a6700}.sev-info{color:#656d76}
.pos,.rule{font-family:ui-monospace,monospace;color:#656d76}
pre{background:#f6f8fa;padding:.5em;overflow:auto;margin:.3em 0}
pre .add{color:#1a7f37;background:#dafbe1}pre .del{color:#cf222e;background:#ffebe9}pre .hunk{color:#8250df}
.images{display:flex;gap:1em;flex-wrap:wrap;margin:.4em 0}
.images figure{margin:0}.images img{max-width:360px;border:1px solid #d0d7de}
figcaption{color:#656d76;font-size:.9em}
.compare{position:relative;display:inline-block;margin:.4em 0}
.compare img{display:block;max-width:720px}
.compare .over{position:absolute;top:0;left:0;clip-path:inset(0 0 0 50%)}
.compare input{display:block;width:100%}
[hidden]{display:none!important}
"#;

const SCRIPT: &str = r#"
(function(){
  var filters=document.getElementById('filters');
  if(!filters)return;
  filters.hidden=false;
  function input(key){
    var p=key.split(':');
    return filters.querySelector('input[data-kind="'+p[0]+'"][value="'+p[1]+'"]');
  }
  var hide=/hide=([^&]*)/.exec(location.hash);
  if(hide)decodeURIComponent(hide[1]).split(',').forEach(function(k){var i=input(k);if(i)i.checked=false;});
  function apply(){
    var off=[];
    filters.querySelectorAll('input').forEach(function(i){if(!i.checked)off.push(i.dataset.kind+':'+i.value);});
    document.querySelectorAll('.finding').forEach(function(f){
      f.hidden=off.indexOf('validator:'+f.dataset.validator)>=0||off.indexOf('severity:'+f.dataset.severity)>=0;
    });
    document.querySelectorAll('details.file').forEach(function(d){
      d.hidden=d.querySelectorAll('.finding:not([hidden])').length===0;
    });
    document.getElementById('shown').textContent=document.querySelectorAll('.finding:not([hidden])').length;
    try{history.replaceState(null,'',off.length?'#hide='+encodeURIComponent(off.join(',')):'#');}catch(e){}
  }
  filters.addEventListener('change',apply);
  apply();
})();
document.querySelectorAll('.compare').forEach(function(c){
  c.hidden=false;
  var range=c.querySelector('input'),over=c.querySelector('.over');
  range.addEventListener('input',function(){over.style.clipPath='inset(0 0 0 '+range.value+'%)';});
});
"#;

/// The report as one HTML document.
pub fn render(report: &Report) -> String {
    let status = report.status().as_str();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>orchestrator: {status}</title><style>{STYLE}</style></head><body>\n\
         <h1>orchestrator <span class=\"verdict {status}\">{status}</span></h1>\n<p>{}</p>\n",
        escape(&summary_line(report))
    );
    validators(report, &mut out);
    if !report.warnings.is_empty() {
        out.push_str("<h2>Warnings</h2>\n<ul>\n");
        for w in &report.warnings {
            let _ = writeln!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul>\n");
    }
    findings(report, &mut out);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn summary_line(report: &Report) -> String {
    let count = |s: Severity| report.count(s);
    format!(
        "{} validators, {} errors, {} warnings, {} notes, in {:.2}s",
        report.validators.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        report.elapsed.as_secs_f64()
    )
}

fn validators(report: &Report, out: &mut String) {
    out.push_str(
        "<h2>Validators</h2>\n<table><thead><tr><th>validator</th><th>status</th><th>files</th>\
         <th>cached</th><th>findings</th><th>time</th><th>note</th></tr></thead><tbody>\n",
    );
    for v in &report.validators {
        let (class, status) = match v.status {
            Status::Passed => ("passed", "passed".to_owned()),
            Status::Failed => ("failed", "failed".to_owned()),
            Status::Skipped(skip) => ("skipped", format!("skipped ({})", skip.as_str())),
            other => ("other", other.as_str().replace('_', " ")),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"status-{class}\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}s</td><td>{}</td></tr>",
            escape(&v.name),
            escape(&status),
            v.files,
            v.cached_files,
            v.findings,
            v.duration.as_secs_f64(),
            escape(&v.message)
        );
        if let Some(tail) = v.stderr_tail.as_deref().filter(|_| !v.status.completed()) {
            let _ = writeln!(
                out,
                "<tr><td></td><td colspan=\"6\"><details><summary>stderr (end)</summary><pre>{}</pre></details></td></tr>",
                escape(tail)
            );
        }
    }
    out.push_str("</tbody></table>\n");
}

fn findings(report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "<h2>Findings (<span id=\"shown\">{}</span>)</h2>",
        report.findings.len()
    );
    if report.findings.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    let names: Vec<&str> = report
        .validators
        .iter()
        .filter(|v| v.findings > 0)
        .map(|v| v.name.as_str())
        .collect();
    out.push_str("<div id=\"filters\" hidden>Validators: ");
    for name in names {
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" data-kind=\"validator\" value=\"{0}\" checked> {0}</label>",
            escape(name)
        );
    }
    out.push_str(" Severity: ");
    for s in [Severity::Error, Severity::Warning, Severity::Info] {
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" data-kind=\"severity\" value=\"{0}\" checked> {0}</label>",
            s.as_str()
        );
    }
    out.push_str("</div>\n");
    let mut by_file: BTreeMap<&str, Vec<&ReportFinding>> = BTreeMap::new();
    for f in &report.findings {
        by_file.entry(&f.finding.path).or_default().push(f);
    }
    for (path, findings) in by_file {
        let _ = writeln!(
            out,
            "<details class=\"file\" open><summary>{} ({})</summary>",
            escape(path),
            findings.len()
        );
        for f in findings {
            finding(&report.root, f, out);
        }
        out.push_str("</details>\n");
    }
}

fn finding(root: &Path, f: &ReportFinding, out: &mut String) {
    let g = &f.finding;
    let severity = g.severity.as_str();
    let _ = write!(
        out,
        "<div class=\"finding\" data-validator=\"{}\" data-severity=\"{severity}\">\
         <span class=\"sev sev-{severity}\">{severity}</span> <span class=\"pos\">{}:{}</span> \
         <span class=\"rule\">{} {}</span> ",
        escape(&f.validator),
        g.line,
        g.column,
        escape(&f.validator),
        escape(&g.rule),
    );
    message(&g.message, out);
    if let Some(url) = &g.help_url {
        let _ = write!(out, " <a href=\"{}\">help</a>", escape(url));
    }
    artifacts(root, &g.artifacts, out);
    out.push_str("</div>\n");
}

/// A one-line message inline; a longer one (a unified diff) in a block, its lines coloured.
fn message(text: &str, out: &mut String) {
    let Some((first, rest)) = text.split_once('\n') else {
        out.push_str(&escape(text));
        return;
    };
    let _ = write!(out, "{}<pre>", escape(first));
    for line in rest.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            None
        } else if line.starts_with('+') {
            Some("add")
        } else if line.starts_with('-') {
            Some("del")
        } else if line.starts_with("@@") {
            Some("hunk")
        } else {
            None
        };
        match class {
            Some(class) => {
                let _ = writeln!(out, "<span class=\"{class}\">{}</span>", escape(line));
            }
            None => {
                let _ = writeln!(out, "{}", escape(line));
            }
        }
    }
    out.push_str("</pre>");
}

/// Images side by side, a slider between expected and actual, text artifacts folded.
fn artifacts(root: &Path, artifacts: &[Artifact], out: &mut String) {
    let mut images: Vec<(&str, String)> = Vec::new();
    for a in artifacts {
        let path = root.join(&a.path);
        let embeddable = std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_EMBEDDED);
        let contents = embeddable.then(|| std::fs::read(&path).ok()).flatten();
        match (mime(&a.path), contents) {
            (Some(mime), Some(bytes)) => images.push((
                &a.kind,
                format!(
                    "data:{mime};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ),
            )),
            (None, Some(bytes)) => {
                let _ = write!(
                    out,
                    "<details><summary>{} ({})</summary><pre>{}</pre></details>",
                    escape(&a.kind),
                    escape(&a.path),
                    escape(&String::from_utf8_lossy(&bytes))
                );
            }
            (_, None) => {
                let _ = write!(
                    out,
                    " <span class=\"pos\">{}: {}</span>",
                    escape(&a.kind),
                    escape(&a.path)
                );
            }
        }
    }
    if images.is_empty() {
        return;
    }
    out.push_str("<div class=\"images\">");
    for (kind, uri) in &images {
        let _ = write!(
            out,
            "<figure><img src=\"{uri}\" alt=\"{0}\"><figcaption>{0}</figcaption></figure>",
            escape(kind)
        );
    }
    out.push_str("</div>");
    let find = |kind: &str| images.iter().find(|(k, _)| *k == kind).map(|(_, u)| u);
    if let (Some(expected), Some(actual)) = (find("expected"), find("actual")) {
        let _ = write!(
            out,
            "<div class=\"compare\" hidden><img src=\"{expected}\" alt=\"expected\">\
             <img class=\"over\" src=\"{actual}\" alt=\"actual\">\
             <input type=\"range\" min=\"0\" max=\"100\" value=\"50\" aria-label=\"expected | actual\"></div>"
        );
    }
}

fn mime(path: &str) -> Option<&'static str> {
    let extension = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_diff_lines_are_coloured() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut out = String::new();
        message(
            "snapshot differs:\n@@ -1 +1 @@\n-old\n+new <b>\n same",
            &mut out,
        );
        assert!(out.contains("<span class=\"del\">-old</span>"), "{out}");
        assert!(
            out.contains("<span class=\"add\">+new &lt;b&gt;</span>"),
            "{out}"
        );
        assert!(out.contains("<span class=\"hunk\">"), "{out}");
    }
}
