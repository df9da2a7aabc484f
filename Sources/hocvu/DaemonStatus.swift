import Foundation

/// What a running daemon reports each second: written to its status file, read back by `hocvu status`,
/// turned into gauges for Prometheus and into systemd's one-line `STATUS=`.
///
/// The file is one flat JSON object (docs/operations.md, "Status and troubleshooting"): `role`,
/// `updated_at` (epoch milliseconds), `pid`, then the role's own keys. Every role key is optional
/// when read, so a file from an older or newer daemon, or a partial one, still reads.
struct DaemonStatus: Codable, Sendable, Equatable {
    enum Report: Sendable, Equatable {
        case hub(HubStatusReport)
        case site(SiteStatusReport)
    }

    /// When the daemon wrote it, in milliseconds since the epoch.
    var updatedAt: Int64
    /// The process that wrote it (gone: the daemon was killed or crashed).
    var pid: Int32?
    var report: Report

    var role: String {
        switch report {
        case .hub: "hub"
        case .site: "site"
        }
    }

    init(updatedAt: Int64, pid: Int32?, report: Report) {
        self.updatedAt = updatedAt
        self.pid = pid
        self.report = report
    }

    private enum CodingKeys: String, CodingKey {
        case role
        case updatedAt = "updated_at"
        case pid
    }

    struct UnknownRole: Error, CustomStringConvertible {
        let role: String
        var description: String { "unknown role \"\(role)\"" }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        updatedAt = try c.decodeIfPresent(Int64.self, forKey: .updatedAt) ?? 0
        pid = try c.decodeIfPresent(Int32.self, forKey: .pid)
        switch try c.decode(String.self, forKey: .role) {
        case "hub": report = .hub(try HubStatusReport(from: decoder))
        case "site": report = .site(try SiteStatusReport(from: decoder))
        case let other: throw UnknownRole(role: other)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encodeIfPresent(pid, forKey: .pid)
        switch report {
        case .hub(let r): try r.encode(to: encoder)
        case .site(let r): try r.encode(to: encoder)
        }
    }

    /// The status file's bytes: sorted keys, so a diff between two readings is readable.
    func encoded(pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return try encoder.encode(self)
    }

    static func decode(_ data: Data) throws -> DaemonStatus { try JSONDecoder().decode(DaemonStatus.self, from: data) }
}

/// The hub's facts (`role = "hub"`). Counters are totals since the hub started.
struct HubStatusReport: Codable, Sendable, Equatable {
    var diskFull: Bool?
    /// Which path is full and the space left, while the disk is full.
    var diskFullDetail: String?
    var sitesConnected: Int?
    var sitesEnrolled: Int?
    /// Enrolled sites not heard from for 24 h.
    var staleSites: Int?
    var changesMerged: Int?
    /// Changes merged per second over the last minute.
    var ingestChangesPerSecond: Double?
    /// The release version the hub serves (0: none).
    var release: UInt64?
    var chunksServed: Int?
    var chunkBytesServed: Int?
    var transfersDeferred: Int?
    var messagesDropped: Int?
    /// Alerts raised (equivocation, broken chains), in all.
    var alerts: Int?
    /// Everything refused from a peer, per reason; exact and never reset.
    var refusals: [String: Int]?
    /// The same per site: commune code ("-" for a peer that is not an enrolled site) → reason → count.
    var refusalsBySite: [String: [String: Int]]?
    /// On a shared PostgreSQL database (docs/multi-hub.md): "ok" or "unreachable", why, and how many
    /// changes other hubs appended that this hub's view has not applied yet.
    var sharedDatabase: String?
    var sharedDatabaseDetail: String?
    var viewLagChanges: Int?

    enum CodingKeys: String, CodingKey {
        case sharedDatabase = "shared_database", sharedDatabaseDetail = "shared_database_detail", viewLagChanges = "view_lag_changes"
        case diskFull = "disk_full", diskFullDetail = "disk_full_detail"
        case sitesConnected = "sites_connected", sitesEnrolled = "sites_enrolled", staleSites = "stale_sites"
        case changesMerged = "changes_merged", ingestChangesPerSecond = "ingest_changes_per_second"
        case release
        case chunksServed = "chunks_served", chunkBytesServed = "chunk_bytes_served", transfersDeferred = "transfers_deferred"
        case messagesDropped = "messages_dropped", alerts
        case refusals, refusalsBySite = "refusals_by_site"
    }

    /// systemd's one-line `STATUS=`.
    var summary: String {
        "\(sitesConnected ?? 0) sites connected, \(staleSites ?? 0) stale, \(Int(ingestChangesPerSecond ?? 0)) changes/s"
            + (diskFull == true ? ", DISK FULL" : "")
            + (sharedDatabase == "unreachable" ? ", DATABASE UNREACHABLE" : "")
    }
}

/// A site's facts (`role = "site"`). Counters are totals since the site started.
struct SiteStatusReport: Codable, Sendable, Equatable {
    var connected: Bool?
    /// When the hub last answered, in milliseconds since the epoch.
    var lastHeardFromHub: Int64?
    var unacknowledgedMessages: Int?
    var unacknowledgedBatches: Int?
    var pendingChanges: Int?
    var quarantinedRecords: Int?
    var uploadsSent: Int?
    var chunksRemaining: Int?
    var chunksFetched: Int?
    var chunkBytesFetched: Int?
    /// This PC's clock minus the hub's, in milliseconds.
    var clockOffsetMilliseconds: Int64?
    var clockDisagreement: String?
    var installedRelease: UInt64?
    var fetchingRelease: UInt64?
    var releaseRefusal: String?
    /// Why the hub refused this site for good (revoked), if it did.
    var refusedByHub: String?
    var homeFeedCursor: UInt64?
    var diskFull: Bool?
    var diskFullDetail: String?
    /// Messages from the hub dropped, per reason.
    var refusals: [String: Int]?

    enum CodingKeys: String, CodingKey {
        case connected, lastHeardFromHub = "last_heard_from_hub"
        case unacknowledgedMessages = "unacknowledged_messages", unacknowledgedBatches = "unacknowledged_batches"
        case pendingChanges = "pending_changes", quarantinedRecords = "quarantined_records"
        case uploadsSent = "uploads_sent", chunksRemaining = "chunks_remaining", chunksFetched = "chunks_fetched"
        case chunkBytesFetched = "chunk_bytes_fetched"
        case clockOffsetMilliseconds = "clock_offset_ms", clockDisagreement = "clock_disagreement"
        case installedRelease = "installed_release", fetchingRelease = "fetching_release", releaseRefusal = "release_refusal"
        case refusedByHub = "refused_by_hub", homeFeedCursor = "home_feed_cursor"
        case diskFull = "disk_full", diskFullDetail = "disk_full_detail"
        case refusals
    }

    /// systemd's one-line `STATUS=`.
    var summary: String {
        (connected == true ? "connected" : "not connected") + ", \(unacknowledgedBatches ?? 0) batches unacknowledged"
            + (fetchingRelease.map { ", fetching release \($0) (\(chunksRemaining ?? 0) chunks left)" } ?? "")
    }
}

extension DaemonStatus.Report {
    var summary: String {
        switch self {
        case .hub(let r): r.summary
        case .site(let r): r.summary
        }
    }
}
