import ArgumentParser
import Foundation

extension HocVu {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure hocvu against raw baselines in the same run (see BENCHMARKS.md).",
            subcommands: [Merge.self])
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
