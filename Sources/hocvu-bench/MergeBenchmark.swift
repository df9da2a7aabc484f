import Foundation
import Merge
import Model
import Sodium
@_spi(Benchmarks) import Store
import TestSupport

/// Applies N remote changes (half quiz attempts, half lesson progress) from 10 origins to a
/// file-backed store, and the same rows to a bare table through raw prepared INSERTs, in the same run.
struct MergeBenchmark {
    struct Result {
        let changes: Int
        /// Median of the repetitions.
        let storeSeconds: Double
        let rawSeconds: Double
        let storeRuns: [Double]
        let rawRuns: [Double]
        /// Process CPU seconds (every thread) of each run: far less sensitive than wall time to
        /// other processes on the machine, for comparing two builds of the store.
        let storeCPU: [Double]
        let rawCPU: [Double]
        /// The same store, its hot kinds merged one change per statement (the path before the
        /// set-based merge, kept as its reference): wall and CPU seconds per run.
        let perChangeRuns: [Double]
        let perChangeCPU: [Double]
        var storeRate: Double { Double(changes) / storeSeconds }
        var rawRate: Double { Double(changes) / rawSeconds }
        var ratio: Double { storeRate / rawRate }
    }

    let changes: Int
    let directory: String
    let repetitions: Int
    let batchSize = 2_000
    let batchesPerTransaction = 50

    func run(log: (String) -> Void) throws -> Result {
        let start = NodeStore.systemNow()
        var rng = SeededGenerator(seed: 42)
        let quizzes = SampleCurriculum.make().courses.flatMap(\.quizzes)
        let lessons = SampleCurriculum.make().courses.flatMap(\.lessons).map(\.id)

        // Rows: progress for learner × lesson pairs, attempts with time-ordered ids.
        log("generating \(changes) changes in signed batches from 10 origins…")
        var attempts = [AttemptRecord]()
        var progress = [ProgressRecord]()
        let learners = max(1, changes / 2 / lessons.count)
        for l in 0..<learners {
            let id = Identity.learnerID(nationalID: String(format: "%012d", l))
            for lesson in lessons where progress.count < changes / 2 {
                progress.append(ProgressRecord(learnerID: id, lessonID: lesson, percent: 100, completedAt: start - 1_000))
            }
        }
        while attempts.count < changes - progress.count {
            let i = attempts.count
            let quiz = quizzes[i % quizzes.count]
            let learner = progress[i % progress.count].learnerID
            let finished = start - Int64(changes - i)
            attempts.append(AttemptRecord(
                attemptID: RecordID.uuidV7(milliseconds: UInt64(finished), using: &rng), learnerID: learner,
                quizID: quiz.id, answers: quiz.questions.map { _ in Int.random(in: 0...3, using: &rng) },
                score: Int.random(in: 0...quiz.maxScore, using: &rng), maxScore: quiz.maxScore,
                startedAt: finished - 60_000, finishedAt: finished))
        }
        let records: [RecordChange] = zip(attempts, progress).flatMap { [.attempt($0), .progress($1)] }
            + attempts.dropFirst(progress.count).map { .attempt($0) }
        let signers = (0..<10).map { _ in SigningKeyPair.generate() }
        var batches = [Batch]()
        var previous = [Data](repeating: Batch.zeroID, count: signers.count)
        var nextSeq = [UInt64](repeating: 1, count: signers.count)
        var offset = 0
        var k = 0
        let hlc = HLCTimestamp(milliseconds: UInt64(start - 5_000), counter: 0)
        while offset < records.count {
            let o = k % signers.count
            let slice = records[offset..<min(offset + batchSize, records.count)].map { Change(hlc: hlc, record: $0) }
            let origin = Origin(node: NodeID(bytes: signers[o].publicKey)!, epoch: 1)
            let b = Batch.seal(changes: slice, origin: origin, firstSeq: nextSeq[o], previousID: previous[o], signer: signers[o])
            batches.append(b)
            previous[o] = b.id
            nextSeq[o] += UInt64(slice.count)
            offset += slice.count
            k += 1
        }

        // Store and raw runs alternate so that a noisy neighbour hurts both alike; medians are reported.
        var storeRuns = [Double](), rawRuns = [Double](), storeCPU = [Double](), rawCPU = [Double]()
        var perChangeRuns = [Double](), perChangeCPU = [Double]()
        for r in 0..<repetitions {
            log("run \(r + 1) of \(repetitions): store…")
            var c0 = Self.processCPUSeconds()
            storeRuns.append(try runStore(batches: batches, expected: records.count, path: .set))
            storeCPU.append(Self.processCPUSeconds() - c0)
            log("run \(r + 1) of \(repetitions): store, one change per statement…")
            c0 = Self.processCPUSeconds()
            perChangeRuns.append(try runStore(batches: batches, expected: records.count, path: .perChange))
            perChangeCPU.append(Self.processCPUSeconds() - c0)
            log("run \(r + 1) of \(repetitions): raw baseline…")
            c0 = Self.processCPUSeconds()
            rawRuns.append(try runRaw(attempts: attempts, progress: progress))
            rawCPU.append(Self.processCPUSeconds() - c0)
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        return Result(
            changes: records.count, storeSeconds: median(storeRuns), rawSeconds: median(rawRuns), storeRuns: storeRuns,
            rawRuns: rawRuns, storeCPU: storeCPU, rawCPU: rawCPU, perChangeRuns: perChangeRuns, perChangeCPU: perChangeCPU)
    }

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The store: verify, decode, validate, merge, log the batch, advance watermarks.
    private func runStore(batches: [Batch], expected: Int, path: NodeStore.MergePath) throws -> Double {
        let storePath = "\(directory)/bench-store.sqlite"
        try removeDatabase(storePath)
        let store = try NodeStore(path: storePath, identity: .generate())
        try store.installCurriculum(SampleCurriculum.make())
        let t0 = ContinuousClock.now
        var merged = 0
        var i = 0
        while i < batches.count {
            let report = try store.apply(Array(batches[i..<min(i + batchesPerTransaction, batches.count)]), path: path)
            guard report.refused.isEmpty, report.quarantinedChanges == 0 else {
                throw BenchFailure("benchmark batches were refused or quarantined: \(report)")
            }
            merged += report.mergedChanges
            i += batchesPerTransaction
        }
        let storeSeconds = (ContinuousClock.now - t0).seconds
        guard merged == expected else { throw BenchFailure("merged \(merged) of \(expected)") }
        return storeSeconds
    }

    /// The raw baseline: the same rows, bare tables, prepared INSERTs, one transaction.
    private func runRaw(attempts: [AttemptRecord], progress: [ProgressRecord]) throws -> Double {
        let rawPath = "\(directory)/bench-raw.sqlite"
        try removeDatabase(rawPath)
        let raw = try RawSQLite(path: rawPath)
        defer { raw.close() }
        try raw.createAttemptTable()
        try raw.exec("""
            CREATE TABLE progress (learner_id TEXT, lesson_id TEXT, percent INTEGER, completed_at INTEGER,
              PRIMARY KEY (learner_id, lesson_id)) WITHOUT ROWID;
            """)
        let t1 = ContinuousClock.now
        try raw.exec("BEGIN")
        try raw.insertAttempts(attempts)
        try raw.insertAll("INSERT INTO progress VALUES (?, ?, ?, ?)", rows: progress.count) { s, i in
            let p = progress[i]
            RawSQLite.bind(s, 1, p.learnerID); RawSQLite.bind(s, 2, p.lessonID)
            RawSQLite.bind(s, 3, Int64(p.percent)); RawSQLite.bind(s, 4, p.completedAt)
        }
        try raw.exec("COMMIT")
        return (ContinuousClock.now - t1).seconds
    }

    private func removeDatabase(_ path: String) throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
