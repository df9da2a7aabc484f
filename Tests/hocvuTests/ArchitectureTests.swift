import Foundation
import Testing

/// The module rules of docs/architecture.md, checked from Package.swift and the sources: a layer
/// that quietly starts importing what it must not fails CI here, not in a review months later.
@Suite("Architecture: the import rules hold")
struct ArchitectureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Each target's `import`s (any access level), from its Swift files.
    static func imports(of target: String) throws -> [String: Set<String>] {
        let dir = root.appendingPathComponent("Sources/\(target)")
        var out = [String: Set<String>]()
        guard let files = FileManager.default.enumerator(atPath: dir.path) else { return out }
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                      words[..<i].allSatisfy({ ["public", "internal", "package", "private", "fileprivate", "@testable", "@preconcurrency"].contains($0) || $0.hasPrefix("@_") })
                else { continue }
                out[words[i + 1], default: []].insert(file)
            }
        }
        return out
    }

    /// Each target's declared dependencies (target and product names), parsed from Package.swift.
    static func declaredDependencies() throws -> [String: Set<String>] {
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var out = [String: Set<String>]()
        var rest = Substring(manifest)
        let starts = [".target(", ".executableTarget(", ".testTarget(", ".systemLibrary("]
        while let start = starts.compactMap({ rest.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            rest = rest[start.upperBound...]
            guard let nameStart = rest.range(of: "name: \""), let nameEnd = rest[nameStart.upperBound...].firstIndex(of: "\"") else { break }
            let name = String(rest[nameStart.upperBound..<nameEnd])
            var deps = Set<String>()
            // The target's own argument list ends at the parenthesis that closes `.target(`.
            var depth = 1, i = rest.startIndex
            while i < rest.endIndex, depth > 0 {
                if rest[i] == "(" { depth += 1 } else if rest[i] == ")" { depth -= 1 }
                i = rest.index(after: i)
            }
            let body = rest[..<i]
            if let d = body.range(of: "dependencies: [") {
                var level = 1, j = d.upperBound
                while j < body.endIndex, level > 0 {
                    if body[j] == "[" { level += 1 } else if body[j] == "]" { level -= 1 }
                    j = body.index(after: j)
                }
                let list = body[d.upperBound..<j]
                // Quoted target names, and product names (`.product(name: "X", …)`), and the
                // manifest's shorthands for products (`log`, `grdb`).
                for m in list.matches(of: /"([^"]+)"/) where !list[..<m.range.lowerBound].hasSuffix("package: ") {
                    deps.insert(String(m.1))
                }
                if list.contains(/\blog\b/) { deps.insert("Logging") }
                if list.contains(/\bgrdb\b/) { deps.insert("GRDB") }
            }
            out[name] = deps
            rest = rest[i...]
        }
        return out
    }

    @Test("Merge and Model import no I/O: no database, no sockets, no C module, no logging")
    func pureModules() throws {
        for (target, allowed) in [("Merge", Set(["Foundation", "Synchronization"])), ("Model", Set(["Foundation", "Synchronization", "Merge", "Sodium"]))] {
            let found = try Self.imports(of: target)
            #expect(!found.isEmpty, "Sources/\(target) has Swift files")
            for (module, files) in found where !allowed.contains(module) {
                Issue.record("\(target) imports \(module) (in \(files.sorted().joined(separator: ", "))): it must stay pure")
            }
            #expect(try Self.declaredDependencies()[target, default: []].isSubset(of: allowed), "Package.swift: \(target)'s dependencies")
        }
        for file in try Self.swiftFiles(in: "Model") + Self.swiftFiles(in: "Merge") {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for io in ["FileManager", "FileHandle", "fopen(", "open(", "Process(", "Date()"] where text.contains(io) {
                Issue.record("\(file) uses \(io): pure modules take time and files from their callers")
            }
        }
    }

    @Test("Store imports no transport; Wire and Release import no store; Dashboard and Portal no SQL and no sync")
    func layers() throws {
        let forbidden: [(String, Set<String>)] = [
            ("Store", ["Transport", "CZeroMQ", "Wire", "Node", "Release", "HubPostgres", "PostgresNIO"]),
            // The engine knows the shared log only as its protocol (SharedHubLog): no driver.
            ("Node", ["HubPostgres", "PostgresNIO", "GRDB", "CSQLite"]),
            ("Wire", ["Store", "GRDB", "CSQLite", "Transport", "Node"]),
            ("Release", ["Store", "GRDB", "CSQLite", "Transport", "Node", "Wire"]),
            ("Transport", ["Store", "GRDB", "CSQLite", "Wire", "Node"]),
            // The dashboard reads through Store's API only (the same report as the CLI), never SQL
            // of its own, and knows nothing of sync.
            ("Dashboard", ["GRDB", "CSQLite", "Transport", "CZeroMQ", "Wire", "Node", "Release", "Config"]),
            // The portal records through NodeStore.record (like an import) and reads through Store's
            // API; release files come from the chunk store. No SQL, no sync engine.
            ("Portal", ["GRDB", "CSQLite", "Transport", "CZeroMQ", "Wire", "Node", "Config"]),
            ("WebSupport", ["GRDB", "CSQLite", "Transport", "CZeroMQ", "Wire", "Node", "Release", "Config"]),
        ]
        let declared = try Self.declaredDependencies()
        for (target, modules) in forbidden {
            for (module, files) in try Self.imports(of: target) where modules.contains(module) {
                Issue.record("\(target) imports \(module) in \(files.sorted().joined(separator: ", "))")
            }
            let bad = declared[target, default: []].intersection(modules)
            #expect(bad.isEmpty, "Package.swift: \(target) depends on \(bad.sorted())")
        }
    }

    @Test("each C module is imported by its one wrapper; the shipped binary links no test or benchmark code")
    func cModulesAndShippedBinary() throws {
        // PostgresNIO is no C module, but it gets the same rule: one module (HubPostgres) speaks to PostgreSQL.
        let wrapper = ["CZeroMQ": "Transport", "CSodium": "Sodium", "CSQLite": "Store", "PostgresNIO": "HubPostgres"]
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)
        for target in sources where !target.hasPrefix("C") {
            for (module, files) in try Self.imports(of: target) {
                if let owner = wrapper[module], owner != target, !Self.benchmarkTargets.contains(target) {
                    Issue.record("\(target) imports \(module) (\(files.sorted().joined(separator: ", "))); only \(owner) may")
                }
            }
        }
        let hocvu = try Self.declaredDependencies()["hocvu", default: []]
        #expect(!hocvu.contains("TestSupport") && !hocvu.contains("CSQLite"), "hocvu depends on \(hocvu.sorted())")
        #expect(!(try Self.imports(of: "hocvu")).keys.contains("TestSupport"))
    }

    @Test("only the executables create loggers; libraries take one")
    func loggers() throws {
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)
        for target in sources where target != "hocvu" && !Self.benchmarkTargets.contains(target) {
            for file in try Self.swiftFiles(in: target) {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                if text.contains("Logger(label:") { Issue.record("\(file) creates a Logger: take one from the caller") }
            }
        }
    }

    /// Benchmark executables (not shipped) may reach below the wrappers for raw baselines.
    static let benchmarkTargets: Set<String> = ["hocvu-bench"]

    static func swiftFiles(in target: String) throws -> [String] {
        let dir = root.appendingPathComponent("Sources/\(target)").path
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        return e.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.map { "\(dir)/\($0)" }
    }
}
