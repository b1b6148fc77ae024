//! Plots: files appear, are well-formed, and hold what was plotted.

use basin_lab::plot::{LegendCorner, ScatterPlot, Series};

fn figure() -> ScatterPlot {
    ScatterPlot {
        title: "log10 P(f) against test error".into(),
        x_label: "test error".into(),
        y_label: "log10 P(f)".into(),
        series: [0, 250, 500]
            .iter()
            .map(|&a| Series {
                label: format!("attack {a}"),
                points: (0..5)
                    .map(|k| {
                        let e = 0.1 + a as f64 / 1000.0 + 0.01 * k as f64;
                        (e, -300.0 - 800.0 * e)
                    })
                    .collect(),
            })
            .collect(),
        legend: LegendCorner::UpperRight,
        ..ScatterPlot::default()
    }
}

#[test]
fn svg_and_png_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (svg, png) = (dir.path().join("f.svg"), dir.path().join("f.png"));
    let plot = figure();
    plot.write_svg(&svg, (800, 600)).unwrap();
    plot.write_png(&png, (800, 600)).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    for needle in ["log10 P(f)", "test error", "attack 0", "attack 500"] {
        assert!(text.contains(needle), "{needle}");
    }
    assert_eq!(
        text.matches("<circle").count(),
        15 + 3,
        "15 points and 3 legend marks"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 800);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no partial files left"
    );
}

#[test]
fn nothing_finite_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let plot = ScatterPlot {
        series: vec![Series {
            label: "a".into(),
            points: vec![(f64::NAN, 1.0)],
        }],
        ..figure()
    };
    let err = plot
        .write_svg(&dir.path().join("x.svg"), (400, 300))
        .unwrap_err();
    assert!(err.to_string().contains("no finite points"), "{err}");
}

/// A line plot draws one polyline per series (in order of x) and one dashed mark per event,
/// each named in the legend; panels fill a grid row by row.
#[test]
fn line_plots_with_marks_and_grids() {
    let dir = tempfile::tempdir().unwrap();
    let plot = ScatterPlot {
        title: "sharpness against epoch".into(),
        x_label: "epoch".into(),
        y_label: "sharpness".into(),
        series: vec![Series {
            label: "network 0".into(),
            points: vec![(2.0, 1.0), (0.0, 3.0), (1.0, 2.0)],
        }],
        lines: true,
        marks: vec![(1.5, "zero training error".into()), (5.0, "scaling".into())],
        ..ScatterPlot::default()
    };
    let svg = dir.path().join("l.svg");
    plot.write_svg(&svg, (600, 400)).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("<circle").count(), 0, "no dots on a line plot");
    for needle in ["network 0", "zero training error", "scaling"] {
        assert!(text.contains(needle), "{needle}");
    }
    assert!(
        text.matches("<polyline").count() > 2 * 40,
        "line and dashes"
    );
    let grid = dir.path().join("g.png");
    let panels = vec![plot.clone(), plot.clone(), plot.clone(), plot];
    basin_lab::plot::write_png_panels(&panels, 2, &grid, (800, 600)).unwrap();
    let bytes = std::fs::read(&grid).unwrap();
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 600);
}

/// A PNG or SVG target that is a FIFO is refused, left a FIFO, and no temporary stays.
#[cfg(unix)]
#[test]
fn a_special_file_is_never_replaced_by_a_plot() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let plot = figure();
    for name in ["fig.png", "fig.svg"] {
        let fifo = dir.path().join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = if name.ends_with("png") {
            plot.write_png(&fifo, (200, 150))
        } else {
            plot.write_svg(&fifo, (200, 150))
        }
        .unwrap_err()
        .to_string();
        assert!(err.contains("FIFO"), "{err}");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary left"
    );
}

/// The temporary of a PNG carries the writer's PID, so a stale one of a dead writer is
/// recognised and swept by the next write of the same file.
#[cfg(unix)]
#[test]
fn a_stale_png_temporary_of_a_dead_writer_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.path().join(format!(".fig3.png.tmp{dead}.png"));
    std::fs::write(&stale, b"half a png").unwrap();
    figure()
        .write_png(&dir.path().join("fig3.png"), (200, 150))
        .unwrap();
    assert!(!stale.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
