public import Foundation

/// Deterministic stand-in media (incompressible, like video), so the sample release and the
/// benchmarks need no binary files in the repository and every build chunks identically.
public enum SampleMedia {
    public static func bytes(count: Int, seed: UInt64) -> Data {
        var state = seed
        var out = Data(count: count)
        out.withUnsafeMutableBytes { raw in
            let words = count / 8
            let p = raw.baseAddress!
            for i in 0..<words {
                // SplitMix64
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                p.storeBytes(of: z.littleEndian, toByteOffset: i * 8, as: UInt64.self)
            }
            for i in (words * 8)..<count { raw[i] = UInt8(truncatingIfNeeded: seed &+ UInt64(i)) }
        }
        return out
    }

    /// Writes the sample curriculum's generated media file(s) under `directory`.
    public static func writeSample(into directory: String, mebibytes: Int = 6) throws -> String {
        let dir = "\(directory)/media"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/ksn-101-video.bin"
        try bytes(count: mebibytes << 20, seed: 2025).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }
}
