/// Element types found in `.npy` and safetensors files; all are converted to Float32 on
/// reading (tensors are Float32 everywhere).
enum DType: Equatable {
    case float16, bfloat16, float32, float64
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case bool

    var size: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// Converts `count` elements starting at `offset` of `bytes` into `out`. The caller has
    /// checked that the elements lie inside `bytes`.
    func decode(_ bytes: [UInt8], offset: Int, count: Int, bigEndian: Bool, into out: UnsafeMutablePointer<Float>) {
        precondition(offset >= 0 && count >= 0 && count <= (bytes.count - offset) / size, "DType.decode: elements outside the bytes")
        guard count > 0 else { return }
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + offset
            func word(_ i: Int) -> UInt64 {
                var v: UInt64 = 0
                let p = base + i * size
                for k in 0..<size {
                    let b = UInt64(p.load(fromByteOffset: bigEndian ? k : size - 1 - k, as: UInt8.self))
                    v = v << 8 | b
                }
                return v
            }
            if self == .float32 && !bigEndian {
                UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: count * 4)
                return
            }
            for i in 0..<count {
                let w = word(i)
                switch self {
                case .float16: out[i] = Float(Float16(bitPattern: UInt16(w)))
                case .bfloat16: out[i] = Float(bitPattern: UInt32(w) << 16)
                case .float32: out[i] = Float(bitPattern: UInt32(w))
                case .float64: out[i] = Float(Double(bitPattern: w))
                case .int8: out[i] = Float(Int8(bitPattern: UInt8(w)))
                case .int16: out[i] = Float(Int16(bitPattern: UInt16(w)))
                case .int32: out[i] = Float(Int32(bitPattern: UInt32(w)))
                case .int64: out[i] = Float(Int64(bitPattern: w))
                case .uint8, .uint16, .uint32, .uint64: out[i] = Float(w)
                case .bool: out[i] = w != 0 ? 1 : 0
                }
            }
        }
    }
}
