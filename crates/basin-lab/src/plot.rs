//! Scatter plots of a measure against test error, one colour per group (for example per
//! attack size, on the viridis scale), written as SVG and PNG.
//!
//! Text is rendered with the DejaVu Sans font shipped in `assets/` (Bitstream Vera license,
//! `assets/DejaVuSans-LICENSE.txt`), so plots need no system fonts. Files are written to a
//! temporary name and renamed into place (`basin_data::atomic`), never over a special file.

use std::path::{Path, PathBuf};
use std::sync::Once;

use basin_data::atomic::AtomicPath;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

/// The font used for all text.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the shipped font under the family name plotters uses by default.
fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The shipped font is valid; a failure would leave text unrendered, not crash.
            if plotters::style::register_font("sans-serif", style, FONT).is_err() {
                tracing::warn!("the shipped plot font could not be registered");
            }
        }
    });
}

/// An error writing a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No finite point to plot.
    #[error("plot {0:?}: no finite points")]
    Empty(String),
    /// The drawing or the file failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
enum DrawError {
    /// No finite point to set the axes by.
    #[error("no finite points")]
    NoPoints,
    /// The drawing backend failed.
    #[error("{0}")]
    Backend(String),
}

fn backend(e: impl ToString) -> DrawError {
    DrawError::Backend(e.to_string())
}

/// One group of points, drawn in one colour and named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// The (x, y) points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A plot of point groups: a scatter plot, or with [`ScatterPlot::lines`] a line plot (for
/// quantities against epoch), with optional vertical event marks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScatterPlot {
    /// The caption.
    pub title: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// The groups, coloured in order along the viridis scale.
    pub series: Vec<Series>,
    /// Where the legend goes (choose the corner the points leave empty).
    pub legend: LegendCorner,
    /// Join each group's points in order of x with a line, instead of drawing dots.
    pub lines: bool,
    /// Vertical dashed lines at these x values, with their legend labels (for example the
    /// epoch of zero training error).
    pub marks: Vec<(f64, String)>,
    /// Draw the line y = x (dashed, grey, labelled), for estimates against a reference.
    pub identity: bool,
}

/// A corner of the plotting area for the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendCorner {
    /// Upper left: for points that rise to the right.
    UpperLeft,
    /// Upper right: for points that fall to the right.
    #[default]
    UpperRight,
}

impl ScatterPlot {
    /// The range of the finite points, padded by 5% on each side.
    fn ranges(&self) -> Option<((f64, f64), (f64, f64))> {
        let finite = self
            .series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        let mut any = false;
        for &(x, y) in finite {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            any = true;
        }
        let pad = |lo: f64, hi: f64| {
            let d = if hi > lo {
                0.05 * (hi - lo)
            } else {
                0.5 * lo.abs().max(1.0)
            };
            (lo - d, hi + d)
        };
        for &(x, _) in self.marks.iter().filter(|m| m.0.is_finite()) {
            (x0, x1) = (x0.min(x), x1.max(x));
        }
        any.then(|| (pad(x0, x1), pad(y0, y1)))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let ((x0, x1), (y0, y1)) = self.ranges().ok_or(DrawError::NoPoints)?;
        root.fill(&WHITE).map_err(backend)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(backend)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(BLACK.mix(0.04))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(backend)?;
        let groups = self.series.len().max(2) - 1;
        for (k, s) in self.series.iter().enumerate() {
            let colour = ViridisRGB::get_color(k as f64 / groups as f64 * 0.9);
            let finite = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .copied();
            if self.lines {
                let mut pts: Vec<(f64, f64)> = finite.collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if pts.len() == 1 {
                    // A line of one point draws nothing: mark it.
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                        .map_err(backend)?;
                }
                let style = colour.stroke_width(2);
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(backend)?
                    .label(&s.label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
            } else {
                let style = colour.filled();
                chart
                    .draw_series(finite.map(|p| Circle::new(p, 4, style)))
                    .map_err(backend)?
                    .label(&s.label)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, style));
            }
        }
        let (lo, hi) = (x0.max(y0), x1.min(y1));
        if self.identity && lo < hi {
            let style = BLACK.mix(0.5).stroke_width(1);
            let dashes = (0..40).map(|i| {
                let (a, b) = (i as f64 / 40.0, (i as f64 + 0.5) / 40.0);
                let (p, q) = (lo + a * (hi - lo), lo + b * (hi - lo));
                PathElement::new([(p, p), (q, q)], style)
            });
            chart
                .draw_series(dashes)
                .map_err(backend)?
                .label("y = x")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
        }
        let mark_colours = [RED, BLUE, MAGENTA, BLACK];
        for (k, (x, label)) in self.marks.iter().enumerate() {
            let style = mark_colours[k % mark_colours.len()].stroke_width(1);
            let dashes = (0..40).map(|i| {
                let (a, b) = (i as f64 / 40.0, (i as f64 + 0.5) / 40.0);
                PathElement::new([(*x, y0 + a * (y1 - y0)), (*x, y0 + b * (y1 - y0))], style)
            });
            chart
                .draw_series(dashes)
                .map_err(backend)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(match self.legend {
                LegendCorner::UpperLeft => SeriesLabelPosition::UpperLeft,
                LegendCorner::UpperRight => SeriesLabelPosition::UpperRight,
            })
            .draw()
            .map_err(backend)
    }

    /// Writes the plot as SVG (`size` in pixels).
    pub fn write_svg(&self, path: &Path, size: (u32, u32)) -> Result<(), PlotError> {
        self.check()?;
        register_font();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            self.draw(&root).map_err(|m| write_err(path, m))?;
        }
        basin_data::io::write_atomic(path, svg.as_bytes()).map_err(|e| write_err(path, e))
    }

    /// Writes the plot as PNG (`size` in pixels).
    pub fn write_png(&self, path: &Path, size: (u32, u32)) -> Result<(), PlotError> {
        self.check()?;
        register_font();
        let tmp = png_temporary(path)?;
        {
            let root = BitMapBackend::new(tmp.tmp(), size).into_drawing_area();
            self.draw(&root).map_err(|m| write_err(path, m))?;
        }
        tmp.commit().map_err(|e| write_err(path, e))
    }

    fn check(&self) -> Result<(), PlotError> {
        match self.ranges() {
            Some(_) => Ok(()),
            None => Err(PlotError::Empty(self.title.clone())),
        }
    }
}

/// Draws the plots in a grid of `rows` rows, filled row by row, on one drawing area and
/// presents it.
fn draw_panels<DB: DrawingBackend>(
    plots: &[ScatterPlot],
    rows: usize,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawError> {
    root.fill(&WHITE).map_err(backend)?;
    let cols = plots.len().div_ceil(rows.max(1));
    for (plot, area) in plots.iter().zip(root.split_evenly((rows.max(1), cols))) {
        plot.draw(&area)?;
    }
    root.present().map_err(backend)
}

fn check_panels(plots: &[ScatterPlot]) -> Result<(), PlotError> {
    if plots.is_empty() {
        return Err(PlotError::Empty("(no panels)".into()));
    }
    plots.iter().try_for_each(ScatterPlot::check)
}

/// Writes plots as panels in `rows` rows (`size` in pixels for the whole figure) as SVG, as
/// the paper's figure 3 shows log P(f) and sharpness against test error side by side.
pub fn write_svg_panels(
    plots: &[ScatterPlot],
    rows: usize,
    path: &Path,
    size: (u32, u32),
) -> Result<(), PlotError> {
    check_panels(plots)?;
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_panels(plots, rows, &root).map_err(|m| write_err(path, m))?;
    }
    basin_data::io::write_atomic(path, svg.as_bytes()).map_err(|e| write_err(path, e))
}

/// Writes plots as panels in `rows` rows as PNG (see [`write_svg_panels`]).
pub fn write_png_panels(
    plots: &[ScatterPlot],
    rows: usize,
    path: &Path,
    size: (u32, u32),
) -> Result<(), PlotError> {
    check_panels(plots)?;
    register_font();
    let tmp = png_temporary(path)?;
    {
        let root = BitMapBackend::new(tmp.tmp(), size).into_drawing_area();
        draw_panels(plots, rows, &root).map_err(|m| write_err(path, m))?;
    }
    tmp.commit().map_err(|e| write_err(path, e))
}

/// The temporary of a PNG: `.<name>.tmp<pid>.png` (the encoder picks the format from the
/// extension), removed on error, on drop and on interruption.
fn png_temporary(path: &Path) -> Result<AtomicPath, PlotError> {
    AtomicPath::new(path, true).map_err(|e| write_err(path, e))
}

fn write_err(path: &Path, message: impl ToString) -> PlotError {
    PlotError::Write {
        path: path.to_owned(),
        message: message.to_string(),
    }
}
