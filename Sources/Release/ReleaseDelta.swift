public import Foundation

/// Which bytes a site already holds that a new release's chunks can be rebuilt from, as a pure
/// plan the hub computes once per release: a new chunk of a file is encoded (``ByteDelta``)
/// against the chunks of the previous release that it replaced in that file — the chunk an
/// insertion landed in, and its neighbours when the boundaries resynchronise later.
///
/// A small edit then costs about the changed bytes: the unchanged ends of the chunks around the
/// edit are copied from the site's own chunk files instead of travelling again. The rebuilt
/// chunk is verified against its name and the manifest's size like any other, so a wrong plan
/// (or a lying hub) costs a whole-chunk request, never a wrong install.
public enum ReleaseDelta {
    /// Chunks of the previous release one new chunk may be encoded against (the wire allows 8).
    public static let maxBases = 8
    /// A rebuilt manifest may be at most this large (the whole one travels in one frame: 1 MiB).
    public static let maxManifestBytes = 1 << 20

    /// For each chunk of `new` that `old` does not hold, the chunks of `old` it is encoded against
    /// (at most ``maxBases``), found per file path. Between the nearest chunks both releases share
    /// before and after it lie a run of new chunks and a run of old ones; an edit inside keeps the
    /// old bytes before it at the same distance from the run's start and those after it at the same
    /// distance from the run's end, so a new chunk is encoded against the old chunks at its own
    /// distances from either end.
    public static func bases(new: Manifest, old: Manifest) -> [String: [String]] {
        let oldHeld = Set(old.chunks.map(\.hash))
        let oldFiles = Dictionary(old.files.map { ($0.path, $0.chunks) }, uniquingKeysWith: { a, _ in a })
        var out: [String: [String]] = [:]
        for file in new.files {
            guard let before = oldFiles[file.path] else { continue }
            var firstIndex: [String: Int] = [:]
            for (i, c) in before.enumerated() where firstIndex[c.hash] == nil { firstIndex[c.hash] = i }
            let after = file.chunks
            var i = 0
            var lastAnchor = -1  // index in `before` of the last chunk both hold
            while i < after.count {
                if oldHeld.contains(after[i].hash) {
                    if let k = firstIndex[after[i].hash], k > lastAnchor { lastAnchor = k }
                    i += 1
                    continue
                }
                // A run of new chunks [i, j) between shared chunks, and the old run between the anchors.
                var j = i
                while j < after.count, !oldHeld.contains(after[j].hash) { j += 1 }
                var nextAnchor = before.count
                if j < after.count, let k = firstIndex[after[j].hash], k > lastAnchor { nextAnchor = k }
                let oldRun = Array(before[(lastAnchor + 1)..<max(lastAnchor + 1, nextAnchor)])
                if !oldRun.isEmpty {
                    let oldLength = oldRun.reduce(0) { $0 + $1.size }
                    let newLength = after[i..<j].reduce(0) { $0 + $1.size }
                    var offset = 0
                    for c in after[i..<j] {
                        defer { offset += c.size }
                        guard out[c.hash] == nil else { continue }
                        // The same bytes of the old run, counted from its start and from its end.
                        let fromEnd = newLength - offset - c.size
                        var picked = overlapping(oldRun, offset..<(offset + c.size))
                        let back = (oldLength - fromEnd - c.size)..<(oldLength - fromEnd)
                        for h in overlapping(oldRun, back) where !picked.contains(h) { picked.append(h) }
                        if !picked.isEmpty { out[c.hash] = Array(picked.prefix(maxBases)) }
                    }
                }
                i = j
            }
        }
        return out
    }

    /// The chunks of `run` (laid end to end from 0) that overlap `range`, in order.
    static func overlapping(_ run: [Manifest.ChunkRef], _ range: Range<Int>) -> [String] {
        var out: [String] = []
        var start = 0
        for c in run {
            let end = start + c.size
            if start < range.upperBound && range.lowerBound < end && !out.contains(c.hash) { out.append(c.hash) }
            start = end
            if start >= range.upperBound { break }
        }
        return out
    }

    /// The delta worth sending for `target` against `bases`, or nil when it would not save at
    /// least 256 bytes (then the whole chunk goes).
    public static func worthwhileDelta(_ target: Data, bases: [Data]) -> Data? {
        guard !bases.isEmpty, !target.isEmpty else { return nil }
        let delta = ByteDelta.encode(target, bases: bases)
        return delta.count + 256 < target.count ? delta : nil
    }
}
