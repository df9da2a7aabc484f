import Foundation

/// A bounded in-memory set of verified chunk bytes, least recently served evicted first.
struct VerifiedChunks {
    let capacityBytes: Int
    private var entries: [String: (data: Data, used: UInt64)] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    var count: Int { entries.count }

    mutating func get(_ hash: String) -> Data? {
        guard let e = entries[hash] else { return nil }
        clock += 1
        entries[hash] = (e.data, clock)
        return e.data
    }

    mutating func put(_ hash: String, _ data: Data) {
        guard data.count <= capacityBytes, entries[hash] == nil else { return }
        while bytes + data.count > capacityBytes, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            bytes -= oldest.value.data.count
            entries[oldest.key] = nil
        }
        clock += 1
        entries[hash] = (data, clock)
        bytes += data.count
    }
}
