//! Draws the CSV of `scale --csv` as an SVG: req/s (left) and peak resident memory (right)
//! against the number of clients, one line per side, for one transport and one count of libzmq
//! I/O threads.
//!
//! ```text
//! cargo run --release -p zmqloop-peers --example scale_chart -- \
//!     [--csv docs/scale.csv] [--out docs/scale.svg] [--transport inproc] [--io-threads 1]
//! ```
//!
//! When the CSV holds several lines for the same (clients, side), the last one counts. A CSV
//! without the `io_threads` column (an older one) counts as one I/O thread.

use std::collections::BTreeMap;

use plotters::prelude::*;

/// One CSV line: (clients, side) -> (req/s, peak RSS in MB).
type Points = BTreeMap<String, BTreeMap<u64, (f64, f64)>>;

/// Each side's line colour, by the side's name in the CSV (grey for a side not listed).
fn color(side: &str) -> RGBColor {
    match side {
        "blocking" => RGBColor(0x55, 0x55, 0x55),
        "may" => RGBColor(0x1f, 0x77, 0xb4),
        "hub" => RGBColor(0x2c, 0xa0, 0x2c),
        "hubs" => RGBColor(0x94, 0x67, 0xbd),
        "tmq" => RGBColor(0xd6, 0x27, 0x28),
        _ => RGBColor(0xaa, 0xaa, 0xaa),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut csv = "docs/scale.csv".to_string();
    let mut out = "docs/scale.svg".to_string();
    let mut transport = "inproc".to_string();
    let mut io_threads = "1".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--csv" => csv = value,
            "--out" => out = value,
            "--transport" => transport = value,
            "--io-threads" => io_threads = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let points = read(&csv, &transport, &io_threads)?;
    draw(&points, &out, &transport)?;
    println!("wrote {out}");
    Ok(())
}

/// The points of `path` for `transport` and `io_threads`. Columns are found by their names in
/// the CSV's header (the scale example's `CSV_HEADER`), so the two cannot drift apart.
fn read(
    path: &str,
    transport: &str,
    io_threads: &str,
) -> Result<Points, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or(format!("{path} is empty"))?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|&column| column == name)
            .ok_or(format!("{path} has no {name} column"))
    };
    let clients_at = column("clients")?;
    let transport_at = column("transport")?;
    let side_at = column("side")?;
    let rate_at = column("rate")?;
    let peak_at = column("peak_rss_kib")?;
    // Older CSVs have no io_threads column: their lines count as one I/O thread.
    let io_threads_at = column("io_threads").ok();
    let mut points = Points::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |at: usize| {
            fields
                .get(at)
                .copied()
                .ok_or(format!("a short line: {line}"))
        };
        let line_io_threads = io_threads_at.map_or(Ok("1"), field)?;
        if field(transport_at)? != transport || line_io_threads != io_threads {
            continue;
        }
        let clients: u64 = field(clients_at)?.parse()?;
        let rate: f64 = field(rate_at)?.parse()?;
        let peak_mb = field(peak_at)?.parse::<f64>()? / 1024.0;
        points
            .entry(field(side_at)?.to_string())
            .or_default()
            .insert(clients, (rate / 1e3, peak_mb));
    }
    if points.is_empty() {
        return Err(format!("no {transport} lines with {io_threads} I/O threads in {path}").into());
    }
    Ok(points)
}

fn draw(points: &Points, out: &str, transport: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(out, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let max_clients = points
        .values()
        .flat_map(|p| p.keys())
        .copied()
        .max()
        .unwrap_or(1);
    let max_rate = points
        .values()
        .flat_map(|p| p.values())
        .map(|v| v.0)
        .fold(0.0, f64::max);
    let max_rss = points
        .values()
        .flat_map(|p| p.values())
        .map(|v| v.1)
        .fold(0.0, f64::max);
    let panels = [
        (left, "requests per second (thousands)", max_rate, 0),
        (right, "peak resident memory (MB)", max_rss, 1),
    ];
    for (area, title, max, which) in panels {
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{title}, {transport}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d((50u64..max_clients * 2).log_scale(), 0.0..max * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("clients")
            .x_labels(6)
            .y_labels(6)
            .draw()?;
        for (side, by_clients) in points.iter() {
            let color = color(side);
            let series = by_clients
                .iter()
                .map(|(&clients, values)| (clients, if which == 0 { values.0 } else { values.1 }));
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?
                .label(side.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart.draw_series(series.map(|point| Circle::new(point, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
