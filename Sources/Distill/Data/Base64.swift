/// Base64 (RFC 4648) decoding for the package's embedded resources, skipping whitespace.
enum Base64 {
    /// The bytes of `text`; nil when it holds a character outside the base64 alphabet or
    /// its length (without whitespace) is not a whole number of 4-character groups.
    static func decode(_ text: String) -> [UInt8]? {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = Int8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 4 * 3)
        var group: UInt32 = 0, filled = 0, padding = 0
        for c in text.utf8 {
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { continue }
            if c == UInt8(ascii: "=") {
                padding += 1
                group <<= 6
                filled += 1
            } else {
                guard padding == 0, table[Int(c)] >= 0 else { return nil }
                group = group << 6 | UInt32(table[Int(c)])
                filled += 1
            }
            if filled == 4 {
                guard padding <= 2 else { return nil }
                let bytes = [UInt8(group >> 16 & 0xFF), UInt8(group >> 8 & 0xFF), UInt8(group & 0xFF)]
                out.append(contentsOf: bytes[0..<(3 - padding)])
                group = 0
                filled = 0
                if padding > 0 { padding = 3 }   // nothing may follow a padded group
            }
        }
        guard filled == 0 else { return nil }
        return out
    }

    /// `bytes` as base64 text on one line.
    static func encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var group = UInt32(bytes[i]) << 16
            if n > 1 { group |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { group |= UInt32(bytes[i + 2]) }
            for k in 0..<4 {
                out.append(k <= n ? alphabet[Int(group >> UInt32(18 - 6 * k) & 63)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
