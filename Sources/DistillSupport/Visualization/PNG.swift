import Distill
import CZlib

/// An 8-bit RGB raster to draw on and save as PNG.
package struct RGBImage: Sendable {
    package let width: Int
    package let height: Int
    /// Row-major RGB bytes.
    package var pixels: [UInt8]

    /// A blank image of one colour.
    package init(width: Int, height: Int, background: RGB = .white) {
        self.width = max(width, 1)
        self.height = max(height, 1)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        for i in 0..<(self.width * self.height) {
            pixels[3 * i] = background.r
            pixels[3 * i + 1] = background.g
            pixels[3 * i + 2] = background.b
        }
    }

    /// A colour.
    package struct RGB: Sendable, Equatable {
        package var r: UInt8, g: UInt8, b: UInt8
        package init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
        package static let white = RGB(255, 255, 255), black = RGB(0, 0, 0), gray = RGB(200, 200, 200)
        /// A qualitative palette for series and classes.
        package static let palette: [RGB] = [RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40),
                                            RGB(148, 103, 189), RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127),
                                            RGB(188, 189, 34), RGB(23, 190, 207)]
    }

    /// Blends `color` over the pixel at (x, y) with opacity `alpha` (outside: ignored).
    package mutating func blend(_ x: Int, _ y: Int, _ color: RGB, alpha: Double = 1) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x), a = max(0, min(1, alpha))
        for (k, c) in [color.r, color.g, color.b].enumerated() {
            pixels[i + k] = UInt8((Double(pixels[i + k]) * (1 - a) + Double(c) * a).rounded())
        }
    }

    /// A filled disc of radius `r` pixels centred at (cx, cy).
    package mutating func disc(_ cx: Double, _ cy: Double, radius r: Double, _ color: RGB, alpha: Double = 1) {
        for y in Int((cy - r).rounded(.down))...Int((cy + r).rounded(.up)) {
            for x in Int((cx - r).rounded(.down))...Int((cx + r).rounded(.up)) {
                let d = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)).squareRoot()
                if d <= r + 0.5 { blend(x, y, color, alpha: alpha * min(1, r + 0.5 - d)) }
            }
        }
    }

    /// A straight line (by steps of at most half a pixel).
    package mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ color: RGB, alpha: Double = 1) {
        let n = max(1, Int((max(abs(x1 - x0), abs(y1 - y0)) * 2).rounded(.up)))
        for i in 0...n {
            let t = Double(i) / Double(n)
            blend(Int((x0 + (x1 - x0) * t).rounded()), Int((y0 + (y1 - y0) * t).rounded()), color, alpha: alpha)
        }
    }

    /// Writes the image as a PNG file, atomically.
    package func writePNG(to path: String) throws {
        try FileIO.writeAtomically(path, pngBytes())
    }

    /// The image as PNG bytes.
    package func pngBytes() throws -> [UInt8] {
        try PNG.encode(width: width, height: height, rgb: pixels)
    }
}

/// A minimal PNG encoder (8-bit RGB, no interlacing), over zlib: signature, IHDR, one IDAT
/// holding the zlib-deflated scanlines (each prefixed by filter type 0), IEND; chunk CRCs by
/// zlib's crc32 (ISO 3309, as the PNG specification requires).
package enum PNG {
    package static func encode(width: Int, height: Int, rgb: [UInt8]) throws -> [UInt8] {
        precondition(rgb.count == width * height * 3, "PNG.encode: pixel count")
        var raw = [UInt8]()
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: rgb[(y * width * 3)..<((y + 1) * width * 3)])
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ data: [UInt8]) {
            let body = Array(type.utf8) + data
            let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
            out += be32(UInt32(data.count)) + body + be32(crc)
        }
        chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0])   // 8-bit, RGB
        chunk("IDAT", try Gzip.compress(raw, level: 6, container: .zlib))
        chunk("IEND", [])
        return out
    }
}
