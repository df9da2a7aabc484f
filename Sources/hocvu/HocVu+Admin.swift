import ArgumentParser
import Foundation
import Merge
import Model
import Node
import Release
import Sodium
import Store

extension HocVu {
    struct Admin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Curriculum admins: keys, the trust file, and signed releases.",
            subcommands: [Keygen.self, Trust.self, ReleaseCommand.self])
    }
}

extension HocVu.Admin {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an admin's signing key (Ed25519) and transport key (CURVE) and admin.pub.json for the trust file.")
        @Option(help: "Directory for the admin's keys (created 0700; key files 0600). Keep it offline.") var dir: String
        @Option(help: "The admin's name, as the trust file shows it.") var name: String
        @Flag(help: "Replace existing keys.") var force = false

        func run() throws {
            let keys = try KeyFiles.generate(into: dir, force: force)
            let pub = AdminKey(name: name, signingKey: keys.identity.publicKey.hexString, transportKey: keys.transport.publicKey.hexString)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            try enc.encode(pub).write(to: URL(fileURLWithPath: "\(dir)/admin.pub.json"), options: .atomic)
            print(keys.publicText)
            print("\nWrote \(dir)/admin.pub.json; combine admins' files with `hocvu admin trust`.")
        }
    }

    struct Trust: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the trust file (admin public keys and the k-of-n threshold) that the hub and every site pin.")
        @Option(help: "Signatures required (k).") var threshold: Int
        @Option(help: "Where to write the trust file.") var out: String
        @Argument(help: "admin.pub.json files from `hocvu admin keygen`.") var admins: [String]

        func validate() throws {
            guard !admins.isEmpty else { throw ValidationError("give at least one admin.pub.json file") }
            guard (1...admins.count).contains(threshold) else {
                throw ValidationError("--threshold \(threshold) must be between 1 and the number of admin files (\(admins.count))")
            }
        }

        func run() throws {
            var list = [AdminKey]()
            for path in admins {
                guard let data = FileManager.default.contents(atPath: path),
                      let a = try? JSONDecoder().decode(AdminKey.self, from: data)
                else { throw Failure("\(path) is not an admin.pub.json written by `hocvu admin keygen`") }
                list.append(a)
            }
            let policy: TrustPolicy
            // What is left to refuse is in the files (a key listed twice, a malformed key): not a usage error.
            do { policy = try TrustPolicy(threshold: threshold, admins: list) } catch {
                throw Failure("\(error.problem) (in \(admins.joined(separator: ", "))); check the admin.pub.json files")
            }
            try policy.encoded().write(to: URL(fileURLWithPath: out), options: .atomic)
            print("Wrote \(out): \(threshold) of \(list.count) admins must sign a release.")
        }
    }

    struct ReleaseCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release", abstract: "Build, sign, check and publish a curriculum release.",
            subcommands: [Build.self, Sign.self, Verify.self, Publish.self, GenerateMedia.self])
    }
}

func loadTrust(_ path: String) throws -> TrustPolicy {
    if let problem = HocVu.ConfigCommand.Check.readableProblem(path, hint: "write it with `hocvu admin trust`") {
        throw Failure("trust file: \(problem)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw Failure("cannot read the trust file \(path); write it with `hocvu admin trust`")
    }
    do { return try TrustPolicy.load(data, source: path) } catch { throw Failure("\(error)") }
}

extension HocVu.Admin.ReleaseCommand {
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut a curriculum directory (curriculum.json + files) into chunks and write the manifest.")
        @Argument(help: "Source directory holding curriculum.json and the lesson files.") var source: String
        @Option(help: "Release version; must be higher than the one in service.") var version: UInt64
        @Option(help: "Output directory (manifest.json, signatures/, chunks/).") var out: String
        @Option(help: "Days until the release expires (nodes refuse it afterwards).") var validDays = 180

        func run() throws {
            let now = Int64(Date().timeIntervalSince1970)
            let (_, m) = try ReleaseBundle.build(from: source, into: out, version: version, created: now, validForDays: validDays)
            print("Built release \(m.version): \(m.curriculum.courses.count) courses, \(m.files.count) files, \(m.chunks.count) chunks, \(m.totalBytes) bytes")
            print("Next: each admin runs `hocvu admin release sign \(out) --keys DIR`.")
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add this admin's signature to a built release.")
        @Argument(help: "The release directory from `build`.") var release: String
        @Option(help: "The admin's key directory.") var keys: String

        func run() throws {
            let k = try KeyFiles.load(from: keys)
            let s = try ReleaseBundle(directory: release).sign(with: k.identity)
            print("Signed with \(s.key.prefix(16))…; signatures are in \(release)/signatures/ (copy .sig files between admins to collect them).")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a release as a node would: signatures against the trust file, consistency, expiry, every chunk.")
        @Argument(help: "The release directory.") var release: String
        @Option(help: "The trust file.") var trust: String
        @Option(help: "The version in service (a release must be higher).") var current: UInt64 = 0

        func run() throws {
            let bundle = ReleaseBundle(directory: release)
            let signed = try bundle.signed()
            let m: Manifest
            do {
                m = try ReleaseVerifier.verify(signed, trust: try loadTrust(trust), current: current, now: Int64(Date().timeIntervalSince1970))
            } catch { throw Failure("refused: \(error)") }
            let chunks = try bundle.chunkStore()
            for c in m.chunks {
                guard chunks.has(c.hash), Chunker.name(try chunks.read(c.hash)) == c.hash else {
                    throw Failure("refused: chunk \(c.hash.prefix(16))… is missing or damaged; rebuild the release")
                }
            }
            print("Release \(m.version) is valid: \(signed.signatures.count) signature(s), \(m.chunks.count) chunks verified, expires \(Date(timeIntervalSince1970: Double(m.expires))).")
        }
    }

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a signed release to the hub over the authenticated transport.")
        @Argument(help: "The release directory.") var release: String
        @Option(help: "The hub's endpoint, e.g. tcp://hub.example:7400.") var hub: String
        @Option(help: "The hub's transport public key (hex), pinned.") var hubKey: String
        @Option(help: "The admin's key directory (its transport key must be in the hub's trust file).") var keys: String

        func validate() throws { _ = try publicKey(hubKey, option: "--hub-key") }

        func run() throws {
            let k = try KeyFiles.load(from: keys)
            let publisher = ReleasePublisher(
                hubEndpoint: hub, hubTransportKey: try publicKey(hubKey, option: "--hub-key"), transportKeys: k.transport,
                logger: HocVu.makeLogger("hocvu.admin"))
            do {
                let r = try publisher.publish(ReleaseBundle(directory: release))
                print("Release \(r.version) is installed at the hub (\(r.chunksSent) chunks, \(r.bytesSent) bytes sent); sites fetch it now.")
            } catch let f as NodeError {
                throw Failure("\(f)")
            }
        }
    }

    struct GenerateMedia: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sample-media", abstract: "Generate the sample curriculum's media file (deterministic bytes).")
        @Argument(help: "The sample curriculum directory (curriculum/sample).") var directory: String
        @Option(help: "Size in MiB.") var mib = 6

        func run() throws {
            let path = try SampleMedia.writeSample(into: directory, mebibytes: mib)
            print("Wrote \(path) (\(mib) MiB)")
        }
    }
}
