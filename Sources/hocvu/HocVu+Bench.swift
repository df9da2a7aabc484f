import ArgumentParser
import Foundation

extension HocVu {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure hocvu against raw baselines in the same run (see BENCHMARKS.md).",
            subcommands: [Merge.self, Ingest.self])
    }
}

extension HocVu.Bench {
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
                """)
        }

        private func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
    }
}

extension HocVu.Bench {
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
