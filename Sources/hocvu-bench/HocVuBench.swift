import ArgumentParser
import Foundation
import Logging

/// `hocvu-bench`: the benchmarks, measured against raw baselines in the same run (BENCHMARKS.md).
///
/// A separate executable that is not a product of the package, so the shipped `hocvu` carries no
/// benchmark or test code (it links `TestSupport`; `hocvu` does not). Run it from a checkout:
/// `swift run -c release hocvu-bench merge --changes 1000000`.
@main
struct HocVuBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hocvu-bench",
        abstract: "Measure hocvu against raw baselines in the same run (see BENCHMARKS.md).",
        subcommands: [
            Merge.self, Upserts.self, Ingest.self, IngestPostgres.self, Fleet.self, IdleSite.self, ReleaseEdit.self, Fanout.self, SeedHub.self,
            ServeStatic.self,
        ])
}

extension HocVuBench {
    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply N remote changes (attempts and progress) to a file-backed store vs raw SQLite INSERTs.")

        @Option(help: "Number of remote changes to apply.")
        var changes = 1_000_000

        @Option(help: "Directory for the two benchmark databases (deleted and recreated).")
        var directory = FileManager.default.temporaryDirectory.path

        @Option(help: "Alternating store/raw repetitions; medians are reported.")
        var repetitions = 3

        func validate() throws {
            guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
            guard changes >= 2 else { throw ValidationError("--changes must be at least 2") }
        }

        func run() async throws {
            let result = try MergeBenchmark(changes: changes, directory: directory, repetitions: repetitions).run {
                FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8))
            }
            print("""
                | what | rows | seconds | rows/s |
                | --- | ---: | ---: | ---: |
                | hocvu store: apply signed remote batches | \(result.changes) | \(fmt(result.storeSeconds, 2)) | \(Int(result.storeRate)) |
                | raw SQLite: prepared INSERTs, bare tables, one transaction | \(result.changes) | \(fmt(result.rawSeconds, 2)) | \(Int(result.rawRate)) |

                store / raw = \(fmt(result.ratio * 100, 1)) %  (target ≥ 50 %); medians of \(repetitions) alternating runs
                store runs (s): \(result.storeRuns.map { fmt($0, 2) }.joined(separator: " "))
                raw runs (s):   \(result.rawRuns.map { fmt($0, 2) }.joined(separator: " "))
                store CPU (s, all threads): \(result.storeCPU.map { fmt($0, 2) }.joined(separator: " "))
                one change per statement (s): \(result.perChangeRuns.map { fmt($0, 2) }.joined(separator: " ")); CPU (s): \(result.perChangeCPU.map { fmt($0, 2) }.joined(separator: " "))
                raw CPU (s):                \(result.rawCPU.map { fmt($0, 2) }.joined(separator: " "))
                """)
        }

        private func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
    }
}

extension HocVuBench {
    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sites → hub over CURVE on loopback: ingest vs raw SQLite, bytes per result, latency, no-op round.")

        @Option(help: "Results (quiz attempts, each by a newly registered learner) in all.")
        var results = 100_000

        @Option(help: "Number of sites.")
        var sites = 10

        @Option(help: "Write → hub latency samples.")
        var latencySamples = 200

        @Option(help: "Working directory (a subdirectory is created and removed).")
        var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            let r = try IngestBenchmark(results: results, sites: sites, directory: directory, latencySamples: latencySamples).run {
                FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8))
            }
            func pct(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }
            let ingestRate = Double(r.results) / r.ingestSeconds
            let rawRate = Double(r.results) / r.rawSeconds
            print("""
                | what | value |
                | --- | ---: |
                | results ingested (\(sites) sites, signed, CURVE, tcp loopback) | \(r.results) |
                | ingest: hub holds all, seconds | \(String(format: "%.2f", r.ingestSeconds)) |
                | ingest rate, results/s | \(Int(ingestRate)) |
                | raw SQLite INSERT of the same rows, results/s | \(Int(rawRate)) |
                | ingest / raw | \(String(format: "%.1f %%", ingestRate / rawRate * 100)) |
                | bytes on the wire per result (loopback tx, both directions) | \(String(format: "%.0f", Double(r.wireBytes) / Double(r.results))) |
                | write → visible at hub, p50 / p99 (ms) | \(String(format: "%.1f / %.1f", pct(r.latenciesMs, 0.5), pct(r.latenciesMs, 0.99))) |
                | no-op sync round (HELLO → WELCOME), p50 / p99 (ms) | \(String(format: "%.2f / %.2f", pct(r.noopRoundsMs, 0.5), pct(r.noopRoundsMs, 0.99))) |
                """)
        }
    }
}

extension HocVuBench {
    struct IngestPostgres: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ingest-pg",
            abstract: "Sites → one or two hub engines on a shared PostgreSQL log (docs/multi-hub.md) vs raw COPY of the same rows.")
        @Option(help: "Results (quiz attempts; each learner registers once and makes four) in all.") var results = 100_000
        @Option(help: "Number of sites.") var sites = 10
        @Option(help: "Hub engines sharing the database (1 or 2).") var hubs = 1
        @Option(help: "PostgreSQL: a host, or the directory of its Unix socket (ops/pg-test-cluster.sh prints one).") var host = "/var/run/postgresql"
        @Option(help: "PostgreSQL port.") var port = 5432
        @Option(help: "A PostgreSQL role that may create databases (a database is created and dropped).") var user = "postgres"
        @Option(help: "Working directory (a subdirectory is created and removed).") var directory = FileManager.default.temporaryDirectory.path

        func validate() throws {
            guard (1...2).contains(hubs) else { throw ValidationError("--hubs must be 1 or 2") }
            guard sites >= 1, results >= sites * 4 else { throw ValidationError("--results must be at least 4 per site") }
        }

        func run() async throws {
            let r = try await PostgresIngestBenchmark(
                results: results, sites: sites, hubs: hubs, host: host, port: port, user: user, directory: directory
            ).run { FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8)) }
            let rate = Double(r.results) / r.ingestSeconds
            let copy = Double(r.results) / r.copySeconds
            print("""
                | what | value |
                | --- | ---: |
                | results (\(sites) sites, signed, CURVE, tcp loopback), hub engines | \(r.results), \(hubs) |
                | ingest: the shared log holds all (acknowledged), seconds | \(String(format: "%.2f", r.ingestSeconds)) |
                | ingest rate, results/s | \(Int(rate)) |
                | every hub's view has merged all, seconds | \(String(format: "%.2f", r.viewsSeconds)) |
                | raw PostgreSQL COPY of the same rows, results/s | \(Int(copy)) |
                | ingest / COPY | \(String(format: "%.1f %%", rate / copy * 100)) |
                """)
        }
    }
}

extension HocVuBench {
    struct ReleaseEdit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release-edit",
            abstract: "A large release, then bytes inserted mid-file into one lesson's media: wire bytes vs changed bytes vs rsync.")
        @Option(help: "Release size in MiB (8 media files).") var mib = 200
        @Option(help: "Bytes inserted by each successive edit (comma-separated).") var insert = "65536,1048576,8388608"
        @Option(help: "Working directory.") var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            let sizes = insert.split(separator: ",").compactMap { Int($0) }
            let r = try ReleaseEditBenchmark(mebibytes: mib, insertions: sizes, directory: directory).run {
                FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8))
            }
            print("first install: \(r.total) bytes of release, \(r.fullWire) bytes on the loopback wire (\(String(format: "%.3f", Double(r.fullWire) / Double(r.total))) ×)\n")
            print("| bytes inserted | new chunk bytes | hocvu wire bytes (deltas) | wire / inserted | hocvu wire bytes (whole, same run) | whole / inserted | rsync bytes (sent+received) | rsync / inserted | rsync literal data | manifest bytes (whole) | chunks as deltas | delta bytes | hocvu TCP stream bytes (deltas: wire − 52 × packets) |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for x in r.rows {
                let f = { (a: Int) in String(format: "%.2f", Double(a) / Double(x.inserted)) }
                print("| \(x.inserted) | \(x.chunkBytes) | \(x.wireBytes) | \(f(x.wireBytes)) | \(x.wholeWireBytes) | \(f(x.wholeWireBytes)) | \(x.rsyncBytes) | \(f(x.rsyncBytes)) | \(x.rsyncLiteral) | \(x.manifestBytes) | \(x.deltaChunks) | \(x.deltaBytes) | \(x.wireBytes - 52 * x.packets) |")
            }
        }
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One release to many sites at once (real stores, chunk files, CURVE) vs raw CURVE fan-out in the same run.")
        @Option(help: "Release size in MiB.") var mib = 100
        @Option(help: "Number of sites.") var sites = 100
        @Option(help: "Working directory (sites write their chunks here).") var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            let r = try FanoutBenchmark(mebibytes: mib, sites: sites, directory: directory).run {
                FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8))
            }
            let total = Double(r.bytesPerSite * sites)
            print("""
                | what | seconds | MiB/s (all sites) |
                | --- | ---: | ---: |
                | hocvu: \(sites) sites fetch, verify, fsync and install \(mib) MiB | \(String(format: "%.1f", r.seconds)) | \(String(format: "%.0f", total / r.seconds / 1_048_576)) |
                | raw CURVE: one ROUTER → \(sites) DEALERs, same bytes, 1 MiB messages | \(String(format: "%.1f", r.rawSeconds)) | \(String(format: "%.0f", total / r.rawSeconds / 1_048_576)) |

                hocvu / raw throughput = \(String(format: "%.1f %%", r.rawSeconds / r.seconds * 100))
                """)
        }
    }
}

extension HocVuBench {
    struct Fleet: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every commune as a lightweight simulated site (own keys and socket) uploading to a real hub process at once.")
        @Option(help: "Sites (real commune codes, up to 3,321).") var sites = 3_321
        @Option(help: "Results each site uploads.") var results = 100
        @Option(help: "Simulator threads.") var threads = 8
        @Option(help: "Working directory.") var directory = FileManager.default.temporaryDirectory.path
        @Option(help: "The hocvu binary to run as the hub (default: the one built beside hocvu-bench).")
        var hocvu: String?
        @Option(help: "Run the hubs on PostgreSQL: HOST:PORT:USER (HOST may be a socket directory); a database is created and dropped.")
        var postgres: String?
        @Option(help: "Hub processes sharing the PostgreSQL database (with --postgres).") var hubs = 1

        func run() async throws {
            var pg: (host: String, port: Int, user: String)?
            if let postgres {
                let parts = postgres.split(separator: ":").map(String.init)
                guard parts.count == 3, let port = Int(parts[1]) else { throw BenchFailure("--postgres must be HOST:PORT:USER") }
                pg = (parts[0], port, parts[2])
            }
            let hub = hocvu ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu").path
            guard FileManager.default.isExecutableFile(atPath: hub) else {
                throw BenchFailure(
                    "the fleet benchmark runs a real hub process, and there is no hocvu binary at \(hub); "
                        + "build it first (`swift build -c release --product hocvu`) or pass --hocvu PATH")
            }
            var bench = FleetBenchmark(sites: sites, results: results, threads: threads, directory: directory, hocvu: hub)
            bench.postgres = pg
            bench.hubs = hubs
            let r = try bench.run {
                FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8))
            }
            print("""
                | what | value | target |
                | --- | ---: | ---: |
                | hubs, store | \(pg == nil ? "1, SQLite" : "\(hubs), PostgreSQL") | |
                | sites that uploaded and got their ACK | \(r.sites) of \(sites) | all |
                | results at the hub (attempts) | \(r.attemptsAtHub) | \(sites * results) |
                | round: connect + HELLO/WELCOME + upload + ACK, all sites, seconds | \(String(format: "%.1f", r.seconds)) | ≤ 60 |
                | hub process peak RSS (VmHWM), MiB | \(r.hubPeakRSSKiB / 1_024) | ≤ 1,024 |
                """)
        }
    }
}

extension HocVuBench {
    struct IdleSite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idle-site",
            abstract: "A real site daemon connected to a real hub with nothing to do: its memory, CPU and wake-ups over time.",
            discussion: """
                Each binary (--hocvu, and every --baseline) runs its own hub and site side by side in the same \
                minutes, so the machine's load weighs on all alike. The site is configured like config/site.toml \
                (status file, metrics endpoint, trust file, pinned hub identity).
                """)
        @Option(help: "Minutes to run.") var minutes = 10.0
        @Option(help: "Seconds between samples of /proc.") var sample = 5.0
        @Option(help: "Seconds after start before CPU and wake-ups are counted.") var warmup = 60.0
        @Option(help: "The hocvu binary (default: the one built beside hocvu-bench).") var hocvu: String?
        @Option(help: "Another hocvu binary run alongside, e.g. the one before a change (repeatable).") var baseline: [String] = []
        @Option(help: "Working directory.") var directory = FileManager.default.temporaryDirectory.path
        @Option(help: "Also write every sample to this CSV file.") var csv: String?

        func validate() throws {
            guard minutes > 0, sample > 0, warmup >= 0 else { throw ValidationError("--minutes and --sample must be positive") }
            guard warmup < minutes * 60 else { throw ValidationError("--warmup must be shorter than the run") }
        }

        func run() async throws {
            let built = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu").path
            let binaries = [IdleSiteBenchmark.Binary(label: "new", path: hocvu ?? built)]
                + baseline.enumerated().map { IdleSiteBenchmark.Binary(label: baseline.count == 1 ? "baseline" : "baseline\($0.offset + 1)", path: $0.element) }
            for b in binaries where !FileManager.default.isExecutableFile(atPath: b.path) {
                throw BenchFailure("no hocvu binary at \(b.path); build it (`swift build -c release --product hocvu --static-swift-stdlib`) or pass --hocvu PATH")
            }
            let reports = try IdleSiteBenchmark(
                binaries: binaries, seconds: minutes * 60, sampleSeconds: sample, warmupSeconds: warmup, directory: directory
            ).run { FileHandle.standardError.write(Data(("bench: " + $0 + "\n").utf8)) }
            func mib(_ kib: Int) -> String { String(format: "%.1f", Double(kib) / 1_024) }
            print("| binary | connected | RSS at 1 min, MiB | RSS at end, MiB | peak (VmHWM), MiB | anon / file at end, MiB | threads | CPU, % of a core | wake-ups/s |")
            print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
            for r in reports {
                let end = r.last
                print(
                    "| \(r.binary.label) (\(r.binary.path)) | \(r.connected ? "yes" : "**no**") | \(mib(r.at(60).rssKiB)) | \(mib(end.rssKiB)) | "
                        + "\(mib(end.hwmKiB)) | \(mib(end.anonKiB)) / \(mib(end.fileKiB)) | \(end.threads) | "
                        + "\(String(format: "%.3f", r.cpuPercent(after: warmup))) | \(String(format: "%.1f", r.wakeupsPerSecond(after: warmup))) |")
            }
            print("\nCPU and wake-ups (context switches of all the site's threads) from \(Int(warmup)) s to \(Int(minutes * 60)) s.")
            if let csv {
                var text = "binary,seconds,rss_kib,hwm_kib,anon_kib,file_kib,threads,cpu_ticks,switches\n"
                for r in reports {
                    for s in r.samples {
                        text += "\(r.binary.label),\(String(format: "%.1f", s.at)),\(s.rssKiB),\(s.hwmKiB),\(s.anonKiB),\(s.fileKiB),\(s.threads),\(s.cpuTicks),\(s.switches)\n"
                    }
                }
                try text.write(toFile: csv, atomically: true, encoding: .utf8)
            }
        }
    }
}

/// A benchmark that could not run or whose work went wrong (refused batches, missing rows): printed
/// as `Error: …` and exit status 1, like `hocvu`'s runtime failures.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The engines' logger in a benchmark: warnings and worse on stderr (a stopped loop, a refusal
/// still show; routine connection logs do not).
func benchLogger() -> Logger {
    var logger = Logger(label: "hocvu.bench") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    return logger
}
