// swift-tools-version: 6.1
import Foundation
import PackageDescription

// InternalImportsByDefault keeps C and GRDB types out of public APIs unless imported `public`.
let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
let log = Target.Dependency.product(name: "Logging", package: "swift-log")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")

let package = Package(
    name: "hocvu",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hocvu", targets: ["hocvu"]),
        .library(name: "Merge", targets: ["Merge"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Store", targets: ["Store"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.25.0"),
    ],
    targets: [
        // Thin system-library modules; no pkgConfig for libzmq (its .pc drags in krb5 flags).
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CSodium", providers: [.apt(["libsodium-dev"])]),
        // The store binds its merge hot path directly (see FastStatement). Its only other importer is
        // hocvu-bench, whose raw-SQLite baseline must not go through the store it is measured against.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // glibc's <malloc.h> (mallopt, malloc_trim): the daemons' heap settings. Nothing to link.
        .systemLibrary(name: "CMalloc"),
        // Swift wrapper over libsodium: hashing, signatures, key pairs. The only importer of CSodium.
        .target(name: "Sodium", dependencies: ["CSodium"], swiftSettings: settings),
        // Pure CRDT rules, clocks, version vectors and the change codec: no C, no I/O.
        .target(name: "Merge", swiftSettings: settings),
        // The domain as pure values and rules, no I/O: signed batches (sealing and verifying),
        // home-feed entries, the curriculum, course completion, local events, identities, the
        // record validation rules (one validator for local writes and remote changes), and the
        // official administrative units (compiled in). Wire and Release build on it, not on Store.
        .target(
            name: "Model", dependencies: ["Merge", "Sodium"],
            exclude: ["AdminUnits/Resources/vn-admin-units-2025.json"], swiftSettings: settings),  // compiled in: AdminUnitsData.swift
        // The node's SQLite database: schema, local events, remote batches, digests; in folders by
        // feature and role (Core, Schema, Curriculum, Replication, Quarantine, Facts, Releases, Hub, Site).
        .target(name: "Store", dependencies: ["Model", "Merge", "Sodium", "CSQLite", grdb], swiftSettings: settings),
        // Signed curriculum releases: chunking, manifests, trust (k of n), the fetch state
        // machine (pure), and the chunk files (I/O, one file). No store: a site's release
        // library (what it shows learners) is in Node.
        .target(name: "Release", dependencies: ["Model", "Merge", "Sodium"], swiftSettings: settings),
        // Daemon configuration files (TOML): parsing and checking with the offending key and line.
        .target(name: "Config", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")], swiftSettings: settings),
        // The versioned wire schema (generated protobuf, committed) and its checked codec.
        .target(
            name: "Wire",
            dependencies: ["Merge", "Model", "Release", "Sodium", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: [], swiftSettings: settings),
        // libzmq sockets, CURVE and the ZAP handler; the only importer of CZeroMQ.
        .target(name: "Transport", dependencies: ["CZeroMQ"], swiftSettings: settings),
        // The hub and site sync engines: session state machines and the loops that run them, in
        // folders by role (Hub/, Site/, Admin/, Shared/); the site's release library (what it
        // shows learners) is here because it reads the store.
        .target(
            name: "Node",
            dependencies: [
                "Model", "Store", "Release", "Wire", "Transport", "Sodium", "Merge", log,
                // Event counters are incremented where the event happens; the executable decides where they go.
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: settings),
        // What the hub's dashboard and a site's portal share: sessions, cookies, forms, strict headers,
        // the sign-in gate, Vietnamese formatting.
        .target(
            name: "WebSupport",
            dependencies: ["Store", "Sodium", log, .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: settings),
        // A site's learner portal and learning-app API (Hummingbird): lessons and media (Range),
        // quizzes graded on the server, operator pages, app tokens, OpenAPI document (docs/portal.md).
        .target(
            name: "Portal",
            dependencies: [
                "Model", "Store", "Merge", "Sodium", "Release", "WebSupport", log,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: settings),
        // The hub's web dashboard (Hummingbird): pages, downloads, accounts, sessions, audit trail.
        // A library so its HTTP tests need no CLI; the hub daemon runs it as one more service.
        .target(
            name: "Dashboard",
            dependencies: [
                "Model", "Store", "Merge", "Sodium", "WebSupport", log,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: settings),
        // The hub's shared store on PostgreSQL (docs/multi-hub.md): the signed batch log, origins'
        // watermarks and chains, enrollments, shared by several hub processes. Behind Node's
        // `SharedHubLog` protocol; the only importer of PostgresNIO.
        .target(
            name: "HubPostgres",
            dependencies: [
                "Model", "Merge", "Node", "Store", log, .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: settings),
        .executableTarget(
            name: "hocvu",
            dependencies: [
                "Model", "Store", "Merge", "Sodium", "Release", "Transport", "Wire", "Node", "Config", "Dashboard", "Portal", "CMalloc", "HubPostgres", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: settings),
        // The benchmarks (BENCHMARKS.md): `swift run -c release hocvu-bench merge …`. Deliberately not a
        // product, so packaging never ships it; the shipped hocvu links neither TestSupport nor CSQLite.
        .executableTarget(
            name: "hocvu-bench",
            dependencies: [
                "Model", "Store", "Merge", "Sodium", "Release", "Transport", "Wire", "Node", "TestSupport", "CSQLite", "HubPostgres", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The raw PostgreSQL baseline (COPY) talks to the server directly, not through HubPostgres.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The dashboard benchmark's baseline: the same HTTP server serving bytes from memory.
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: settings),
        // Shared by tests and benchmarks: seeded generators, sample curriculum, temporary files.
        .target(name: "TestSupport", dependencies: ["Model", "Merge", "Sodium", "Release"], swiftSettings: settings),
        .testTarget(name: "MergeTests", dependencies: ["Merge", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Merge", "Sodium"]),
        .testTarget(name: "StoreTests", dependencies: ["Model", "Store", "Merge", "Sodium", "TestSupport"]),
        .testTarget(name: "ReleaseTests", dependencies: ["Release", "Model", "Merge", "Sodium", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Sodium", "Merge"]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Node", "Model", "Store", "Release", "Wire", "Transport", "Merge", "Sodium", "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Release", "Model", "Merge", "Sodium", "TestSupport"]),
        .testTarget(name: "hocvuTests", dependencies: ["hocvu", "Config"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "WebSupport", "Store", "Model", "Merge", "Sodium", "TestSupport", log]),
        .testTarget(
            name: "PortalTests",
            dependencies: ["Portal", "WebSupport", "Store", "Model", "Merge", "Sodium", "Release", "TestSupport", log]),
        .testTarget(name: "hocvu-benchTests", dependencies: ["hocvu-bench"]),
        // Against a real PostgreSQL cluster (ops/test.sh starts one; skipped without HOCVU_TEST_POSTGRES).
        .testTarget(
            name: "HubPostgresTests",
            dependencies: [
                "HubPostgres", "Node", "Store", "Model", "Merge", "Sodium", "Transport", "TestSupport", log,
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
    ]
)

// The libFuzzer harness exists only when asked for (ops/fuzz.sh sets HOCVU_FUZZ): it has no main of
// its own (libFuzzer provides it), so ordinary builds must not try to link it.
if ProcessInfo.processInfo.environment["HOCVU_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(name: "FuzzDecoders", dependencies: ["Wire", "Merge"], path: "Fuzz/Sources/FuzzDecoders"))
}
