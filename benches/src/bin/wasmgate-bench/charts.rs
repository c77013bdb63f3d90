//! SVG charts (plotters' SVG backend: text is left to the viewer's fonts, so no fontconfig or
//! font files are needed to draw them): request handling, proxy throughput, latency and memory
//! by connections, SSE time to first token and memory by streams.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::model::{Results, Variant};
use crate::systems::SystemId;

type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Writes every chart into `out`.
pub fn write(out: &Path, r: &Results) -> Result<()> {
    let proxy = |f: &dyn Fn(&crate::model::Point) -> f64| -> Series {
        r.ids()
            .into_iter()
            .map(|id| {
                let pts = r
                    .points
                    .iter()
                    .filter(|p| p.variant == Variant::Proxy && p.system == id)
                    .map(|p| (f64::from(p.conns), f(p)))
                    .collect();
                (id.id().to_string(), pts)
            })
            .collect()
    };
    let mem = |p: &crate::model::Point| p.rss_peak_kb as f64 / 1024.0;
    let gateways_only = |s: Series| s.into_iter().filter(|(n, _)| n != SystemId::Direct.id()).collect();
    lines(
        &out.join("throughput.svg"),
        "Proxy throughput (100 ms upstream)",
        "connections",
        "req/s",
        proxy(&|p| p.wrk.rps),
        false,
    )?;
    lines(
        &out.join("latency.svg"),
        "Proxy latency p99 (100 ms upstream)",
        "connections",
        "p99 ms (log)",
        proxy(&|p| p.wrk.p99_ms),
        true,
    )?;
    lines(&out.join("memory.svg"), "Proxy peak RSS", "connections", "MB", gateways_only(proxy(&mem)), false)?;
    let sse = |f: &dyn Fn(&crate::model::SsePoint) -> Option<f64>| -> Series {
        r.ids()
            .into_iter()
            .map(|id| {
                let pts = r
                    .sse
                    .iter()
                    .filter(|p| p.system == id && p.stats.completed > 0)
                    .filter_map(|p| f(p).map(|v| (f64::from(p.streams), v)))
                    .collect();
                (id.id().to_string(), pts)
            })
            .collect()
    };
    lines(
        &out.join("sse.svg"),
        "SSE time to first token, p50",
        "concurrent streams",
        "ms (log)",
        sse(&|p| Some(p.stats.ttft_p50_ms)),
        true,
    )?;
    lines(
        &out.join("sse_memory.svg"),
        "SSE memory per stream",
        "concurrent streams",
        "KB per stream",
        sse(&|p| p.kb_per_stream()),
        false,
    )?;
    handling_bars(&out.join("handling.svg"), r)?;
    Ok(())
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// One line per series; x on a log scale; y linear or log.
fn lines(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: Series, y_log: bool) -> Result<()> {
    let series: Series = series
        .into_iter()
        .map(|(n, pts)| (n, pts.into_iter().filter(|(x, y)| *x > 0.0 && (*y > 0.0 || !y_log)).collect::<Vec<_>>()))
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let (x_lo, x_hi) = all().fold((f64::MAX, 0f64), |(lo, hi), (x, _)| (lo.min(*x), hi.max(*x)));
    let (y_lo, y_hi) = all().fold((f64::MAX, 0f64), |(lo, hi), (_, y)| (lo.min(*y), hi.max(*y)));
    if series.is_empty() {
        return Ok(());
    }
    let (x_lo, x_hi) = (x_lo * 0.8, x_hi * 1.25);
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(45).y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(err)?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    if y_log {
        draw!(builder.build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo * 0.7..y_hi * 1.5).log_scale()).map_err(err)?);
    } else {
        draw!(builder.build_cartesian_2d((x_lo..x_hi).log_scale(), 0f64..y_hi * 1.1).map_err(err)?);
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Scenarios 1 and 2 at the smallest connection count: req/s per system, health and chat bars.
fn handling_bars(path: &Path, r: &Results) -> Result<()> {
    let Some(&c) = r.plan.handling_conns.first() else { return Ok(()) };
    let ids: Vec<SystemId> = r.ids().into_iter().filter(|s| s.in_handling_scenarios()).collect();
    let bars = [
        (Variant::Health, "GET /health"),
        (Variant::ChatForward, "chat → 0 ms mock"),
        (Variant::ChatLocal, "chat in-process"),
    ];
    let y_hi =
        r.points.iter().filter(|p| p.conns == c && p.variant != Variant::Proxy).map(|p| p.wrk.rps).fold(0f64, f64::max);
    if ids.is_empty() || y_hi <= 0.0 {
        return Ok(());
    }
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels: Vec<&str> = ids.iter().map(|s| s.id()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Request handling, {c} connections"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..ids.len() as f64 - 0.5, 0f64..y_hi * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(ids.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).map(|s| s.to_string()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("req/s")
        .draw()
        .map_err(err)?;
    let width = 0.8 / bars.len() as f64;
    for (b, (variant, name)) in bars.iter().enumerate() {
        let color = Palette99::pick(b).to_rgba();
        let rects: Vec<Rectangle<(f64, f64)>> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let p = r.point(*variant, *id, c)?;
                let x0 = i as f64 - 0.4 + width * b as f64;
                Some(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, p.wrk.rps)], color.filled()))
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
