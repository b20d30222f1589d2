import Distill
import Foundation

/// Pictures of samples: 2-D scatter plots and image grids as PNG rasters.
package enum Pictures {
    /// A scatter plot of 2-D points (N, 2) in a square of `size` pixels covering
    /// [lo, hi]² (default: the points' range, padded 5%), with a light frame and axes through 0.
    /// Points are small translucent discs coloured by `labels` when given.
    package static func scatter(_ points: Tensor, labels: [Int]? = nil, range: ClosedRange<Double>? = nil, size: Int = 400,
                               color: RGBImage.RGB = RGBImage.RGB.palette[0]) throws -> RGBImage {
        guard points.rank == 2, points.shape[1] == 2 else {
            throw TensorError.invalidShape(operation: "Pictures.scatter", shape: points.shape, expected: "[N, 2]")
        }
        let v = points.scalars.map(Double.init)
        let r = range ?? {
            let finite = v.filter(\.isFinite)
            let (lo, hi) = (finite.min() ?? -1, finite.max() ?? 1)
            let pad = max(hi - lo, 1e-6) * 0.05
            return (lo - pad)...(hi + pad)
        }()
        var img = RGBImage(width: size, height: size)
        let scale = Double(size - 1) / (r.upperBound - r.lowerBound)
        func px(_ x: Double) -> Double { (x - r.lowerBound) * scale }
        func py(_ y: Double) -> Double { Double(size - 1) - (y - r.lowerBound) * scale }
        if r.contains(0) {
            img.line(px(0), 0, px(0), Double(size - 1), .gray)
            img.line(0, py(0), Double(size - 1), py(0), .gray)
        }
        for (a, b) in [((0.0, 0.0), (1.0, 0.0)), ((1, 0), (1, 1)), ((1, 1), (0, 1)), ((0, 1), (0, 0))] as [((Double, Double), (Double, Double))] {
            img.line(a.0 * Double(size - 1), a.1 * Double(size - 1), b.0 * Double(size - 1), b.1 * Double(size - 1), .black)
        }
        let n = points.shape[0]
        let radius = n > 5000 ? 1.0 : 1.6
        for i in 0..<n where v[2 * i].isFinite && v[2 * i + 1].isFinite {
            let c = labels.map { RGBImage.RGB.palette[abs($0[i]) % RGBImage.RGB.palette.count] } ?? color
            img.disc(px(v[2 * i]), py(v[2 * i + 1]), radius: radius, c, alpha: 0.55)
        }
        return img
    }

    /// Images (N, C, H, W) with values in [-1, 1] (C = 1 grey or 3 RGB) tiled in a grid of
    /// `columns`, each pixel enlarged `scale` times, `padding` pixels apart on a light background.
    package static func imageGrid(_ images: Tensor, columns: Int = 10, scale: Int = 4, padding: Int = 2) throws -> RGBImage {
        guard images.rank == 4, images.shape[1] == 1 || images.shape[1] == 3, columns >= 1, scale >= 1, padding >= 0 else {
            throw TensorError.invalidShape(operation: "Pictures.imageGrid", shape: images.shape, expected: "[N, 1 or 3, H, W]")
        }
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let cols = min(columns, max(n, 1)), rows = (n + cols - 1) / cols
        let cell = (w * scale + padding, h * scale + padding)
        var img = RGBImage(width: cols * cell.0 + padding, height: max(rows, 1) * cell.1 + padding, background: RGBImage.RGB(235, 235, 235))
        let v = images.scalars
        func byte(_ x: Float) -> UInt8 { UInt8((max(-1, min(1, x.isFinite ? x : 0)) + 1) * 127.5) }
        for k in 0..<n {
            let (ox, oy) = (padding + (k % cols) * cell.0, padding + (k / cols) * cell.1)
            for y in 0..<h {
                for x in 0..<w {
                    let base = k * c * h * w + y * w + x
                    let color = c == 1 ? RGBImage.RGB(byte(v[base]), byte(v[base]), byte(v[base]))
                                       : RGBImage.RGB(byte(v[base]), byte(v[base + h * w]), byte(v[base + 2 * h * w]))
                    for dy in 0..<scale { for dx in 0..<scale { img.blend(ox + x * scale + dx, oy + y * scale + dy, color) } }
                }
            }
        }
        return img
    }

    /// Panels side by side with a gap.
    package static func row(_ panels: [RGBImage], gap: Int = 8) -> RGBImage {
        let w = panels.reduce(0) { $0 + $1.width } + gap * max(panels.count - 1, 0)
        let h = panels.map(\.height).max() ?? 1
        var out = RGBImage(width: w, height: h)
        var ox = 0
        for p in panels {
            for y in 0..<p.height {
                for x in 0..<p.width {
                    let i = 3 * (y * p.width + x)
                    out.blend(ox + x, y, RGBImage.RGB(p.pixels[i], p.pixels[i + 1], p.pixels[i + 2]))
                }
            }
            ox += p.width + gap
        }
        return out
    }
}

/// A line chart as SVG: titled axes with ticks, linear or logarithmic scales, several named
/// series with markers and a legend. Opens in any browser.
package struct LineChart: Sendable {
    package struct Series: Sendable {
        package var name: String
        package var points: [(x: Double, y: Double)]
        package init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    package var title: String
    package var xLabel: String
    package var yLabel: String
    package var logX: Bool
    package var logY: Bool
    package var series: [Series]

    package init(title: String, xLabel: String, yLabel: String, logX: Bool = false, logY: Bool = false, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
        self.logY = logY
        self.series = series
    }

    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The SVG document.
    package func svg(width: Int = 720, height: Int = 440) -> String {
        let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0)
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) && (!logY || $0.y > 0) }
        func tx(_ v: Double) -> Double { logX ? log10(v) : v }
        func ty(_ v: Double) -> Double { logY ? log10(v) : v }
        var (x0, x1) = (all.map { tx($0.x) }.min() ?? 0, all.map { tx($0.x) }.max() ?? 1)
        var (y0, y1) = (all.map { ty($0.y) }.min() ?? 0, all.map { ty($0.y) }.max() ?? 1)
        if x1 - x0 < 1e-12 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let ypad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - ypad, y1 + ypad)
        func sx(_ v: Double) -> Double { left + (tx(v) - x0) / (x1 - x0) * pw }
        func sy(_ v: Double) -> Double { top + ph - (ty(v) - y0) / (y1 - y0) * ph }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left + pw / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(Self.escape(title))</text>\n"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"black\"/>\n"
        // Ticks: decades on log axes, 5 even steps on linear ones.
        func ticks(_ a: Double, _ b: Double, log: Bool) -> [Double] {
            if log {
                let (lo, hi) = (Int(a.rounded(.down)), Int(b.rounded(.up)))
                return (lo...hi).map { pow(10, Double($0)) }.filter { (a...b).contains(log10($0)) }
            }
            return (0...5).map { a + (b - a) * Double($0) / 5 }
        }
        func label(_ v: Double) -> String {
            let a = abs(v)
            return a != 0 && (a >= 1e4 || a < 1e-2) ? String(format: "%.0e", v) : String(format: a >= 100 ? "%.0f" : "%.3g", v)
        }
        for t in ticks(x0, x1, log: logX) {
            let v = logX ? t : t
            let xx = left + ((logX ? log10(v) : v) - x0) / (x1 - x0) * pw
            s += "<line x1=\"\(xx)\" y1=\"\(top + ph)\" x2=\"\(xx)\" y2=\"\(top + ph + 5)\" stroke=\"black\"/>"
            s += "<text x=\"\(xx)\" y=\"\(top + ph + 18)\" text-anchor=\"middle\">\(label(v))</text>\n"
        }
        for t in ticks(y0, y1, log: logY) {
            let yy = top + ph - ((logY ? log10(t) : t) - y0) / (y1 - y0) * ph
            s += "<line x1=\"\(left - 5)\" y1=\"\(yy)\" x2=\"\(left)\" y2=\"\(yy)\" stroke=\"black\"/>"
            s += "<text x=\"\(left - 8)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(Double(height) - 10)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        s += "<text x=\"16\" y=\"\(top + ph / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(top + ph / 2))\">\(Self.escape(yLabel))</text>\n"
        for (k, ser) in series.enumerated() {
            let color = Self.colors[k % Self.colors.count]
            let pts = ser.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) && (!logY || $0.y > 0) }
            if !pts.isEmpty {
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\" points=\""
                s += pts.map { String(format: "%.1f,%.1f", sx($0.x), sy($0.y)) }.joined(separator: " ") + "\"/>\n"
                for p in pts { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", sx(p.x), sy(p.y), color) }
                s += "\n"
            }
            let ly = top + 10 + Double(k) * 16
            s += "<line x1=\"\(left + pw + 12)\" y1=\"\(ly)\" x2=\"\(left + pw + 32)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(left + pw + 38)\" y=\"\(ly + 4)\">\(Self.escape(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Writes the SVG atomically.
    package func write(to path: String) throws { try FileIO.writeAtomically(path, Array(svg().utf8)) }
}
