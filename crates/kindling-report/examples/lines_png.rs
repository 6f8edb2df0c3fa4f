//! Draws a CSV of `series,x,y` rows (x = 1, 2, ... within each series, a header line first) as
//! a PNG of lines: `lines_png IN.csv OUT.png TITLE X_LABEL Y_LABEL`. The benchmarks use it for
//! their figures (`cargo xtask bench tpe` draws the best-so-far curves).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, title, x_label, y_label] = args.as_slice() else {
        eprintln!("usage: lines_png IN.csv OUT.png TITLE X_LABEL Y_LABEL");
        return ExitCode::FAILURE;
    };
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(name), Some(y)) = (fields.first(), fields.get(2).and_then(|v| v.parse::<f64>().ok())) else {
            eprintln!("{input}:{}: expected series,x,y", n + 1);
            return ExitCode::FAILURE;
        };
        match series.iter_mut().find(|s| s.0 == *name) {
            Some(s) => s.1.push(y),
            None => series.push(((*name).to_owned(), vec![y])),
        }
    }
    match kindling_report::lines_png(title, x_label, y_label, &series)
        .map_err(|e| e.to_string())
        .and_then(|png| std::fs::write(output, png).map_err(|e| format!("{output}: {e}")))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
